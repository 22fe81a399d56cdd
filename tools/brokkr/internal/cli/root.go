// Package cli is the brokkr command line: cobra commands over the broker
// client generated from api-spec/openapi.yaml.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
	"github.com/brokkr-go/brokkr/tools/brokkr/internal/config"
)

// Exit codes (docs/cli.md, "Exit codes").
const (
	ExitOK = 0
	// ExitError is any error: bad flags, configuration, an unreadable
	// bundle, a broker rejection (the original's single failure code).
	ExitError = 1
	// ExitFailed: --wait saw at least one agent report FAILURE.
	ExitFailed = 2
	// ExitTimeout: --wait gave up before every agent reported.
	ExitTimeout = 3
)

// Version is the client's version; main sets it from the build.
var Version = ""

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// App holds what every command shares: streams, environment and the global
// flags.
type App struct {
	In          io.Reader
	Out, Err    io.Writer
	Getenv      func(string) string
	IsTerminal  func(io.Writer) bool
	Now         func() time.Time
	PollMinimum time.Duration // tests shorten the pacing of --wait/--watch

	brokerURL, pak, configPath, contextName string
	debug                                   bool
}

// Main runs the command line and returns the process exit code.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	app := &App{In: in, Out: out, Err: errOut, Getenv: os.Getenv, IsTerminal: isTerminal, Now: time.Now}
	return app.Run(args)
}

// Run executes args and maps the outcome to an exit code; errors print as
// "error: <message>" on stderr, as the original client does.
func (a *App) Run(args []string) int {
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.IsTerminal == nil {
		a.IsTerminal = func(io.Writer) bool { return false }
	}
	if a.PollMinimum == 0 {
		a.PollMinimum = time.Second
	}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.In)
	root.SetOut(a.Out)
	root.SetErr(a.Err)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(a.Err, "error: %v\n", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitError
}

func (a *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "brokkr",
		Short: "brokkr is the command line of the Brokkr control plane",
		Long: `brokkr talks to a Brokkr broker: it applies folders of manifests to stacks and waits
until every targeted cluster applied them, and reads and changes agents, stacks,
templates, work orders, webhooks, events and audit logs.

Connection settings: --broker-url / BROKKR_BROKER_URL / broker_url and
--pak / BROKKR_PAK / pak, from the config file ~/.brokkr/config (--config), in that
order of precedence. See docs/cli.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.brokerURL, "broker-url", "", "broker URL, with or without /api/v1 (env BROKKR_BROKER_URL)")
	pf.StringVar(&a.pak, "pak", "", "PAK to authenticate with (env BROKKR_PAK); prefer the environment or `brokkr login`, flags show up in process lists")
	pf.StringVar(&a.configPath, "config", "", "config file (default ~/.brokkr/config)")
	pf.StringVar(&a.contextName, "context", "", "context of the config file to use (default: its current_context)")
	pf.BoolVar(&a.debug, "debug", false, "print every request and response status on stderr (the PAK is redacted)")
	root.AddCommand(
		a.applyCommand(), a.registerCommand(), a.deregisterCommand(), a.registrationsCommand(),
		a.loginCommand(), a.configCommand(), a.getCommand(), a.describeCommand(), a.createCommand(),
		a.deleteCommand(), a.labelCommand(), a.annotateCommand(), a.targetCommand(), a.untargetCommand(),
		a.rotatePAKCommand(), a.templateCommand(), a.workOrderCommand(), a.diagnoseCommand(),
		a.eventsCommand(), a.rolloutCommand(), a.rollbackCommand(), a.versionCommand(),
	)
	return root
}

func (a *App) getenv(k string) string {
	if a.Getenv == nil {
		return ""
	}
	return a.Getenv(k)
}

func (a *App) configFile() (string, error) {
	if a.configPath != "" {
		return a.configPath, nil
	}
	return config.DefaultPath()
}

// loadConfig reads the config file (--config or the default path) and
// returns its path too, for messages and for saving it back.
func (a *App) loadConfig() (string, *config.File, error) {
	path, err := a.configFile()
	if err != nil {
		return "", nil, err
	}
	f, err := config.Load(path)
	return path, f, err
}

func (a *App) settings() (config.Settings, error) {
	_, f, err := a.loadConfig()
	if err != nil {
		return config.Settings{}, err
	}
	return config.Resolve(config.Sources{
		FlagURL: a.brokerURL, FlagPAK: a.pak,
		EnvURL: a.getenv("BROKKR_BROKER_URL"), EnvPAK: a.getenv("BROKKR_PAK"),
		Context: a.contextName,
	}, f)
}

// client builds the generated client from the resolved settings.
func (a *App) client() (*apiclient.Client, error) {
	s, err := a.settings()
	if err != nil {
		return nil, err
	}
	if s.BrokerURL == "" {
		return nil, errors.New("no broker URL: pass --broker-url, set BROKKR_BROKER_URL, or run `brokkr login`")
	}
	if s.PAK == "" {
		return nil, errors.New("no PAK: set BROKKR_PAK, pass --pak, or run `brokkr login`")
	}
	o := apiclient.Options{BrokerURL: s.BrokerURL, PAK: s.PAK, UserAgent: "brokkr-cli/" + clientVersion()}
	if a.debug {
		o.Debug = a.Err
	}
	return apiclient.New(o)
}

func clientVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// withClient is a command body that talks to the broker: it gets the
// configured client (or the error saying why there is none) and the
// command's context.
func (a *App) withClient(run func(ctx context.Context, c *apiclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return run(cmd.Context(), c, args)
	}
}
