// Command api is Brokkr's public HTTP service: the whole /api/v1 surface.
//
//	api [serve]                 run the server (default)
//	api migrate up|down|version manage the database schema
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	opts := config.LoadOptions{}
	cfg, err := config.Load(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return lifecycle.ExitConfig
	}
	log, level := logging.New("api", cfg.Log, os.Stderr)
	slog.SetDefault(log)

	switch cmd {
	case "serve":
		return serve(cfg, opts, log, level)
	case "migrate":
		return migrate(cfg, args, log)
	case "-h", "--help", "help":
		fmt.Println("usage: api [serve] | api migrate up|down|version")
		return lifecycle.ExitOK
	}
	fmt.Fprintf(os.Stderr, "unknown command %q (want serve or migrate)\n", cmd)
	return lifecycle.ExitConfig
}

func migrate(cfg config.Settings, args []string, log *slog.Logger) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: api migrate up|down|version")
		return lifecycle.ExitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Options{URL: cfg.Database.URL, Schema: cfg.Database.Schema, MaxOpenConns: 2})
	if err != nil {
		log.Error("database unavailable", "error", err)
		return lifecycle.ExitUnavailable
	}
	defer db.Close()
	m := postgres.NewMigrator(db, cfg.Database.Schema)
	switch args[0] {
	case "up":
		err = m.Up(ctx)
	case "down":
		err = m.Down(ctx)
	case "version":
		var v uint
		var dirty bool
		if v, dirty, err = m.Version(ctx); err == nil {
			fmt.Printf("version %d (dirty: %t)\n", v, dirty)
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown migrate command %q\n", args[0])
		return lifecycle.ExitConfig
	}
	if err != nil {
		log.Error("migration failed", "error", err)
		return lifecycle.ExitFailure
	}
	return lifecycle.ExitOK
}

func serve(cfg config.Settings, opts config.LoadOptions, log *slog.Logger, level *slog.LevelVar) int {
	ctx, signalCode := lifecycle.SignalContext(context.Background())
	shutdownTelemetry, err := telemetry.Setup(ctx, cfg.Telemetry.ForBroker(), "brokkr-api")
	if err != nil {
		log.Error("telemetry setup failed", "error", err)
		return lifecycle.ExitConfig
	}
	defer func() { _ = shutdownTelemetry(context.Background()) }()

	store := config.NewStore(cfg, opts, log)
	store.Subscribe(logging.Follow(level))
	a, cleanup, err := buildApp(ctx, cfg, store, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return lifecycle.CodeFor(err)
	}
	defer cleanup()
	go store.Follow(ctx)
	log.Info("api listening", "addr", cfg.HTTP.Addr)
	err = httpserver.Run(ctx, a.server, time.Duration(cfg.HTTP.ShutdownTimeoutSeconds)*time.Second)
	return lifecycle.Exit(signalCode(), err)
}
