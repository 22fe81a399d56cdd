// Command loadgen is the fleet simulator (tools/loadgen): N agents speaking
// the broker's protocol against api replicas on loopback.
//
//	loadgen -spawn -bin .brokkr/bin -replicas 1 -agents 1000 -duration 30s -change-every 5s
//	loadgen -url http://127.0.0.1:3000 -admin-pak "$BROKKR_ADMIN_PAK" -agents 200 -duration 20s
//
// With -spawn it creates a fresh database, starts auth and the api replicas
// from -bin on free loopback ports, and removes everything afterwards.
// Every run stops by itself; only loopback addresses are accepted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/brokkr-go/brokkr/tools/loadgen"
)

func main() { os.Exit(run()) }

func run() int {
	var cfg loadgen.Config
	var urls, bin, pgURL, redisURL string
	var spawn bool
	var replicas int
	var limit time.Duration
	var env string
	flag.StringVar(&urls, "url", "", "comma-separated api base URLs (loopback only); agents are spread round-robin")
	flag.StringVar(&cfg.AdminPAK, "admin-pak", os.Getenv("BROKKR_ADMIN_PAK"), "admin PAK (default $BROKKR_ADMIN_PAK)")
	flag.BoolVar(&spawn, "spawn", false, "start auth and the api replicas from -bin on a fresh database")
	flag.StringVar(&bin, "bin", ".brokkr/bin", "directory with the api and auth binaries (make build)")
	flag.IntVar(&replicas, "replicas", 1, "api replicas to spawn")
	flag.StringVar(&pgURL, "pg", envOr("BROKKR_TEST_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL admin URL for -spawn")
	flag.StringVar(&redisURL, "redis", envOr("BROKKR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL for -spawn")
	flag.StringVar(&env, "env", "", "comma-separated extra BROKKR__… settings for spawned processes")
	flag.IntVar(&cfg.Agents, "agents", 200, "simulated agents")
	flag.DurationVar(&cfg.PollInterval, "poll-interval", 0, "poll target state this often (0: long-poll)")
	flag.DurationVar(&cfg.Wait, "wait", 30*time.Second, "long-poll ?wait=")
	flag.DurationVar(&cfg.Duration, "duration", 20*time.Second, "fleet phase length (0: skip)")
	flag.DurationVar(&cfg.ChangeEvery, "change-every", 5*time.Second, "deploy a new object this often (0: never)")
	flag.Float64Var(&cfg.LabelChurn, "label-churn", 0, "label changes per second on a stack no agent uses")
	flag.Float64Var(&cfg.Restarts, "restarts", 0, "agent restarts per second (ETag forgotten)")
	flag.DurationVar(&cfg.Heartbeat, "heartbeat", 30*time.Second, "heartbeat interval (0: none)")
	flag.BoolVar(&cfg.Ack, "ack", true, "report SUCCESS and health for each new object")
	flag.DurationVar(&cfg.Throughput, "throughput", 0, "closed-loop 304/200 phase per case, with the bare net/http baseline (0: skip)")
	flag.IntVar(&cfg.Clients, "clients", 64, "closed-loop clients")
	flag.DurationVar(&limit, "limit", 15*time.Minute, "hard limit for the whole run")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cfg.Log = os.Stderr

	if spawn {
		var extra []string
		if env != "" {
			extra = strings.Split(env, ",")
		}
		cl, err := loadgen.Spawn(ctx, loadgen.SpawnConfig{BinDir: bin, Replicas: replicas, AdminDBURL: pgURL, RedisURL: redisURL, Env: extra})
		if err != nil {
			fmt.Fprintln(os.Stderr, "spawn:", err)
			return 1
		}
		defer cl.Close()
		cfg.URLs, cfg.AdminPAK, cfg.PIDs, cfg.DBURL, cfg.DBName = cl.APIURLs, cl.AdminPAK, cl.PIDs(), cl.DBURL, cl.DBName
	} else {
		cfg.URLs = strings.Split(urls, ",")
	}
	r, err := loadgen.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := r.Setup(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep, err := r.Run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rep.Print(os.Stdout)
	if n5xx, n503 := rep.Server5xx(); n5xx > n503 {
		return 3
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
