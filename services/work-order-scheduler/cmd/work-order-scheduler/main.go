// Command work-order-scheduler runs Brokkr's work-order timers on asynq:
// it releases RETRY_PENDING orders when their backoff ends (a task per
// retry, enqueued by api, plus a sweep), expires claims that outlived
// claim_timeout_seconds, fires cron schedules and runs housekeeping
// (diagnostic expiry, audit-log retention). Run any number of replicas.
//
//	work-order-scheduler [serve]
//
// It serves /healthz, /readyz and /metrics on scheduler.addr. SIGHUP (or a
// change of the file named by BROKKR_CONFIG_FILE) reloads the hot settings.
//
// Exit codes (DECISIONS 22): 0 clean stop, 1 failure, 64 bad configuration,
// 69 database or Redis unreachable at start-up, 130/143 after SIGINT/SIGTERM
// once running tasks have drained.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], nil, os.Stdout, os.Stderr))
}

const usage = "usage: work-order-scheduler [serve]\n"

// run is main without the process: environ nil means the process
// environment. It returns the exit code.
func run(ctx context.Context, args []string, environ func() []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, usage)
			return lifecycle.ExitOK
		case "serve":
			args = args[1:]
		}
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n%s", args[0], usage)
		return lifecycle.ExitConfig
	}
	opts := config.LoadOptions{Environ: environ}
	cfg, err := config.Load(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return lifecycle.ExitConfig
	}
	log, level := logging.New("work-order-scheduler", cfg.Log, stdout)
	slog.SetDefault(log)
	return serve(ctx, cfg, opts, log, level)
}

func serve(parent context.Context, cfg config.Settings, opts config.LoadOptions, log *slog.Logger, level *slog.LevelVar) int {
	ctx, signalCode := lifecycle.SignalContext(parent)
	shutdownTelemetry, err := telemetry.Setup(ctx, cfg.Telemetry.ForBroker(), "brokkr-work-order-scheduler")
	if err != nil {
		log.Error("telemetry setup failed", "error", err)
		return lifecycle.ExitConfig
	}
	defer func() { _ = shutdownTelemetry(context.Background()) }()

	live := config.NewStore(cfg, opts, log)
	live.Subscribe(logging.Follow(level))
	a, cleanup, err := buildApp(ctx, cfg, live, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return lifecycle.Exit(signalCode(), err)
	}
	defer cleanup()
	go live.Follow(ctx)

	if err := a.scheduler.Start(ctx); err != nil {
		log.Error("scheduler start failed", "error", err)
		return lifecycle.Exit(signalCode(), lifecycle.WithCode(lifecycle.ExitUnavailable, err))
	}
	log.Info("work-order-scheduler running", "addr", cfg.Scheduler.Addr)
	err = httpserver.Run(ctx, a.server, shutdownTimeout(cfg))
	// Stop enqueuing, then drain running tasks; unfinished ones go back to
	// the queue.
	a.scheduler.Shutdown()
	if err != nil {
		log.Error("server stopped", "error", err)
	}
	log.Info("work-order-scheduler stopped")
	return lifecycle.Exit(signalCode(), err)
}
