// Command webhook-dispatch delivers Brokkr's webhooks. It relays committed
// outbox events (woken right after commit by api's Redis signal, and by a
// periodic sweep that needs no signal), fans each event out to the
// matching subscriptions as delivery rows, and makes broker-mode delivery
// attempts as asynq tasks, with retries, exponential backoff and jitter,
// per-host concurrency limits and an SSRF guard. Agent-mode deliveries wait
// in PostgreSQL for the agents. Run any number of replicas.
//
//	webhook-dispatch [serve]
//
// It serves /healthz, /readyz and /metrics on webhook_dispatch.addr. SIGHUP
// (or a change of the file named by BROKKR_CONFIG_FILE) reloads the hot
// settings (broker.webhook_delivery_interval_seconds, _batch_size,
// _cleanup_retention_days, log.level).
//
// Exit codes (docs/configuration.md#exit-codes): 0 clean stop, 1 failure, 64
// bad configuration, 69 database or Redis unreachable at start-up, 130/143
// after SIGINT/SIGTERM once in-flight attempts have drained.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/daemon"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], nil, os.Stdout, os.Stderr))
}

// run is main without the process: environ nil means the process
// environment. It returns the exit code.
func run(ctx context.Context, args []string, environ func() []string, stdout, stderr io.Writer) int {
	return daemon.Run(ctx, "webhook-dispatch", args, environ, stdout, stderr, buildApp, serve)
}

// serve runs the delivery worker and the ops listener until ctx ends; the
// worker drains in-flight attempts before it returns.
func serve(p *daemon.Process, a *app) error {
	worker := make(chan error, 1)
	go func() { worker <- a.service.Run(p.Ctx) }()
	p.Log.Info("webhook-dispatch running", "addr", p.Config.WebhookDispatch.Addr, "queue", a.queue)
	err := httpserver.Run(p.Ctx, a.server, time.Duration(p.Config.HTTP.ShutdownTimeoutSeconds)*time.Second)
	if err != nil {
		p.Log.Error("ops server stopped", "error", err)
	}
	if werr := <-worker; werr != nil {
		p.Log.Error("webhook worker stopped", "error", werr)
		err = errors.Join(err, werr)
	}
	return err
}
