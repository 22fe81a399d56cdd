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
// Exit codes (docs/configuration.md#exit-codes): 0 clean stop, 1 failure, 64
// bad configuration, 69 database or Redis unreachable at start-up, 130/143
// after SIGINT/SIGTERM once running tasks have drained.
package main

import (
	"context"
	"io"
	"os"

	"github.com/brokkr-go/brokkr/pkg/platform/daemon"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], nil, os.Stdout, os.Stderr))
}

// run is main without the process: environ nil means the process
// environment. It returns the exit code.
func run(ctx context.Context, args []string, environ func() []string, stdout, stderr io.Writer) int {
	p, code := daemon.Start(ctx, "work-order-scheduler", args, environ, stdout, stderr)
	if p == nil {
		return code
	}
	cfg, log := p.Config, p.Log
	a, cleanup, err := buildApp(p.Ctx, cfg, p.Live, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return p.Exit(err)
	}
	defer cleanup()

	if err := a.scheduler.Start(p.Ctx); err != nil {
		log.Error("scheduler start failed", "error", err)
		return p.Exit(lifecycle.WithCode(lifecycle.ExitUnavailable, err))
	}
	log.Info("work-order-scheduler running", "addr", cfg.Scheduler.Addr)
	err = httpserver.Run(p.Ctx, a.server, shutdownTimeout(cfg))
	// Stop enqueuing, then drain running tasks; unfinished ones go back to
	// the queue.
	a.scheduler.Shutdown()
	if err != nil {
		log.Error("server stopped", "error", err)
	}
	log.Info("work-order-scheduler stopped")
	return p.Exit(err)
}
