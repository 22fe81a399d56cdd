package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Cluster is auth plus one or more api replicas started by Spawn on
// loopback ports and a fresh database, all sharing one Redis.
type Cluster struct {
	APIURLs  []string
	AdminPAK string
	// DBURL is the cluster's database; DBName names it in pg_stat_activity.
	DBURL  string
	DBName string
	Procs  []*Proc
	admin  string
}

// Proc is one started process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len() < 4<<20 {
		p.out.Write(b)
	}
	return len(b), nil
}

// Output is what the process printed (first 4 MiB).
func (p *Proc) Output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// SpawnConfig configures Spawn.
type SpawnConfig struct {
	// BinDir holds the api and auth binaries (make build: .brokkr/bin).
	BinDir string
	// Replicas is the number of api processes (≥1).
	Replicas int
	// AdminDBURL is a PostgreSQL URL allowed to CREATE DATABASE.
	AdminDBURL string
	RedisURL   string
	// Env is extra BROKKR__… settings for every process.
	Env []string
}

// Spawn creates a database and starts auth and the api replicas on free
// loopback ports. Close stops them and drops the database.
func Spawn(ctx context.Context, cfg SpawnConfig) (*Cluster, error) {
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	c := &Cluster{}
	conn, err := pgx.Connect(ctx, cfg.AdminDBURL)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	c.DBName = "brokkr_loadgen_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+c.DBName); err != nil {
		return nil, err
	}
	c.admin = cfg.AdminDBURL
	pc, _ := pgx.ParseConfig(cfg.AdminDBURL)
	c.DBURL = fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", pc.User, pc.Host, pc.Port, c.DBName)
	ports, err := testsupport.FreePorts(1 + cfg.Replicas)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "brokkr-loadgen")
	if err != nil {
		return nil, err
	}
	pakFile := filepath.Join(tmp, "admin.pak")
	authPort := ports[0]
	env := append(os.Environ(),
		"BROKKR__DATABASE__URL="+c.DBURL,
		"BROKKR__DATABASE__MIGRATE_ON_START=true",
		"BROKKR__REDIS__URL="+cfg.RedisURL,
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=info",
		"BROKKR_CONFIG_WATCHER_ENABLED=false",
		fmt.Sprintf("BROKKR__AUTH__ADDR=127.0.0.1:%d", authPort),
		fmt.Sprintf("BROKKR__AUTH__URL=http://127.0.0.1:%d", authPort),
		"BROKKR__BROKER__ADMIN_PAK_FILE="+pakFile,
		// A schema per cluster keeps its change notifications apart from
		// every other user of the shared Redis.
		"BROKKR__DATABASE__SCHEMA="+c.DBName,
	)
	env = append(env, cfg.Env...)
	auth, err := c.start(ctx, cfg.BinDir, "auth", env)
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := waitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d", authPort), auth); err != nil {
		c.Close()
		return nil, err
	}
	for r := 0; r < cfg.Replicas; r++ {
		port := ports[1+r]
		penv := append(append([]string{}, env...), fmt.Sprintf("BROKKR__HTTP__ADDR=127.0.0.1:%d", port))
		api, err := c.start(ctx, cfg.BinDir, "api", penv)
		if err != nil {
			c.Close()
			return nil, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitReady(ctx, url, api); err != nil {
			c.Close()
			return nil, err
		}
		c.APIURLs = append(c.APIURLs, url)
	}
	pak, err := os.ReadFile(pakFile)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("admin PAK file: %w", err)
	}
	c.AdminPAK = strings.TrimSpace(string(pak))
	_ = os.RemoveAll(tmp)
	return c, nil
}

func (c *Cluster) start(ctx context.Context, dir, name string, env []string) (*Proc, error) {
	p := &Proc{Name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(dir, name), "serve")
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	c.Procs = append(c.Procs, p)
	return p, nil
}

// PIDs lists the started processes by name (api replicas as api, api-2, …).
func (c *Cluster) PIDs() map[string]int {
	out := map[string]int{}
	n := 0
	for _, p := range c.Procs {
		name := p.Name
		if name == "api" {
			n++
			if n > 1 {
				name = fmt.Sprintf("api-%d", n)
			}
		}
		out[name] = p.PID()
	}
	return out
}

// Close stops every process (SIGTERM, then SIGKILL after 10 s) and drops
// the database.
func (c *Cluster) Close() {
	for i := len(c.Procs) - 1; i >= 0; i-- {
		p := c.Procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if c.DBName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.admin); err == nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+c.DBName+" WITH (FORCE)")
		_ = conn.Close(ctx)
	}
}

func waitReady(ctx context.Context, url string, p *Proc) error {
	err := testsupport.PollReady(ctx, url+"/readyz", 60*time.Second, p.done)
	if errors.Is(err, testsupport.ErrExited) {
		return fmt.Errorf("%s exited early:\n%s", p.Name, p.Output())
	}
	if err != nil {
		return fmt.Errorf("%s: %w:\n%s", p.Name, err, p.Output())
	}
	return nil
}
