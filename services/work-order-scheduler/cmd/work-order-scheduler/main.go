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
	return daemon.Run(ctx, "work-order-scheduler", args, environ, stdout, stderr, buildApp, serve)
}

// serve starts the scheduler and runs the ops listener until ctx ends.
func serve(p *daemon.Process, a *app) error {
	if err := a.scheduler.Start(p.Ctx); err != nil {
		p.Log.Error("scheduler start failed", "error", err)
		return lifecycle.WithCode(lifecycle.ExitUnavailable, err)
	}
	p.Log.Info("work-order-scheduler running", "addr", p.Config.Scheduler.Addr)
	err := httpserver.Run(p.Ctx, a.server, shutdownTimeout(p.Config))
	// Stop enqueuing, then drain running tasks; unfinished ones go back to
	// the queue.
	a.scheduler.Shutdown()
	if err != nil {
		p.Log.Error("server stopped", "error", err)
	}
	return err
}
