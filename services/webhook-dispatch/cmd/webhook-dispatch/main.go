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
// Exit codes (DECISIONS 22): 0 clean stop, 1 failure, 64 bad configuration,
// 69 database or Redis unreachable at start-up, 130/143 after SIGINT/SIGTERM
// once in-flight attempts have drained.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], nil, os.Stdout, os.Stderr))
}

const usage = "usage: webhook-dispatch [serve]\n"

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
	log, level := logging.New("webhook-dispatch", cfg.Log, stdout)
	slog.SetDefault(log)
	return serve(ctx, cfg, opts, log, level)
}

func serve(parent context.Context, cfg config.Settings, opts config.LoadOptions, log *slog.Logger, level *slog.LevelVar) int {
	ctx, signalCode := lifecycle.SignalContext(parent)
	shutdownTelemetry, err := telemetry.Setup(ctx, cfg.Telemetry.ForBroker(), "brokkr-webhook-dispatch")
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

	worker := make(chan error, 1)
	go func() { worker <- a.service.Run(ctx) }()
	log.Info("webhook-dispatch running", "addr", cfg.WebhookDispatch.Addr, "queue", a.queue)
	err = httpserver.Run(ctx, a.server, time.Duration(cfg.HTTP.ShutdownTimeoutSeconds)*time.Second)
	if err != nil {
		log.Error("ops server stopped", "error", err)
	}
	// The worker stops with ctx: it drains in-flight attempts first.
	if werr := <-worker; werr != nil {
		log.Error("webhook worker stopped", "error", werr)
		err = errors.Join(err, werr)
	}
	log.Info("webhook-dispatch stopped")
	return lifecycle.Exit(signalCode(), err)
}
