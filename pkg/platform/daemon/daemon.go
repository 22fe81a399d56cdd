// Package daemon is the start-up every long-running Brokkr worker shares:
// the `[serve]` command line, configuration (exit 64 when it is bad),
// logging, telemetry, signal handling, and live settings that follow the
// config file and SIGHUP. A service builds its own graph on top and hands
// its final error to Exit.
package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

// Process is a started worker.
type Process struct {
	// Ctx ends on SIGINT/SIGTERM.
	Ctx context.Context
	// Config is the settings loaded at start; Live follows reloads.
	Config config.Settings
	Live   *config.Store
	Log    *slog.Logger

	signalCode        func() int
	shutdownTelemetry func(context.Context) error
}

// Start parses args (nothing, or `serve`; `-h` prints the usage), loads the
// configuration through environ (nil: the process environment), and sets up
// logging on stderr (stdout is left to one-time output such as the
// bootstrap admin PAK), telemetry and signals for the service called name.
// When the process should stop at once it returns nil and the exit code.
func Start(parent context.Context, name string, args []string, environ func() []string, stdout, stderr io.Writer) (*Process, int) {
	usage := "usage: " + name + " [serve]\n"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil, lifecycle.ExitOK
		case "serve":
			args = args[1:]
		}
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n%s", args[0], usage)
		return nil, lifecycle.ExitConfig
	}
	opts := config.LoadOptions{Environ: environ}
	cfg, err := config.Load(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, lifecycle.ExitConfig
	}
	log, level := logging.New(name, cfg.Log, stderr)
	slog.SetDefault(log)

	ctx, signalCode := lifecycle.SignalContext(parent)
	shutdown, err := telemetry.Setup(ctx, cfg.Telemetry.ForBroker(), "brokkr-"+name)
	if err != nil {
		log.Error("telemetry setup failed", "error", err)
		return nil, lifecycle.ExitConfig
	}
	live := config.NewStore(cfg, opts, log)
	live.Subscribe(logging.Follow(level))
	go live.Follow(ctx)
	return &Process{Ctx: ctx, Config: cfg, Live: live, Log: log, signalCode: signalCode, shutdownTelemetry: shutdown}, 0
}

// Exit flushes telemetry and returns the exit code for err: the signal's
// code after a drained SIGINT/SIGTERM, else the code err carries
// (docs/configuration.md#exit-codes).
func (p *Process) Exit(err error) int {
	_ = p.shutdownTelemetry(context.Background())
	return lifecycle.Exit(p.signalCode(), err)
}

// Run is a worker's whole life: Start, build its graph with build (the
// service's Wire injector), serve until the context ends, and Exit with
// serve's error. A start-up failure is logged and exits with the code it
// carries (69 for an unreachable database or Redis).
func Run[A any](parent context.Context, name string, args []string, environ func() []string, stdout, stderr io.Writer,
	build func(context.Context, config.Settings, *config.Store, *slog.Logger) (A, func(), error),
	serve func(p *Process, app A) error) int {
	p, code := Start(parent, name, args, environ, stdout, stderr)
	if p == nil {
		return code
	}
	app, cleanup, err := build(p.Ctx, p.Config, p.Live, p.Log)
	if err != nil {
		p.Log.Error("start-up failed", "error", err)
		return p.Exit(err)
	}
	defer cleanup()
	err = serve(p, app)
	p.Log.Info(name + " stopped")
	return p.Exit(err)
}
