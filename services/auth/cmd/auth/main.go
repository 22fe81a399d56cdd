// Command auth is Brokkr's internal authentication service: it owns PAKs
// (issue, verify, rotate), bootstraps the admin PAK on first start and
// throttles clients that keep failing (docs/compatibility.md#identities).
//
//	auth [serve]                                          run the internal HTTP API
//	auth create agent --name N --cluster-name C           register an agent, print its PAK
//	auth create generator --name N [--description D]      register a generator, print its PAK
//	auth rotate admin                                     new admin PAK
//	auth rotate agent <uuid> | --uuid <uuid>              new agent PAK
//	auth rotate generator <uuid> | --uuid <uuid>          new generator PAK
//
// Exit codes: 0 success, 1 failure, 64 bad configuration or usage, 69 the
// database unreachable at start-up (docs/configuration.md#exit-codes).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], nil, os.Stdout, os.Stderr))
}

const usage = `usage:
  auth [serve]
  auth create agent --name <name> --cluster-name <cluster>
  auth create generator --name <name> [--description <description>]
  auth rotate admin
  auth rotate agent <uuid> | --uuid <uuid>
  auth rotate generator <uuid> | --uuid <uuid>
`

// errUsage marks a command-line mistake (exit 64, with the usage text).
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...))
}

// run is main without the process: environ nil means the process
// environment. It returns the exit code.
func run(ctx context.Context, args []string, environ func() []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return lifecycle.ExitOK
	case "serve", "create", "rotate":
	default:
		fmt.Fprintf(stderr, "unknown command %q\n%s", cmd, usage)
		return lifecycle.ExitConfig
	}

	opts := config.LoadOptions{Environ: environ}
	cfg, err := config.Load(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return lifecycle.ExitConfig
	}
	if cmd == "serve" {
		if len(args) > 0 {
			fmt.Fprintf(stderr, "serve takes no arguments\n%s", usage)
			return lifecycle.ExitConfig
		}
		// Logs go to stderr like every service's; stdout carries only
		// the one-time "Admin PAK: ..." line of a first start (none when
		// broker.admin_pak_secret stores it in a Kubernetes Secret).
		log, _ := logging.New("auth", cfg.Log, stderr)
		slog.SetDefault(log)
		return serve(ctx, cfg, log, stdout)
	}
	// CLI: stdout carries only the documented lines; logs go to stderr.
	log, _ := logging.New("auth", cfg.Log, stderr)
	err = runCLI(ctx, cmd, args, cfg, log, stdout)
	if err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(stderr, "%v\n%s", err, usage)
		} else {
			fmt.Fprintf(stderr, "Error: %s\n", cliMessage(err))
		}
	}
	return lifecycle.CodeFor(err)
}

func serve(parent context.Context, cfg config.Settings, log *slog.Logger, stdout io.Writer) int {
	ctx, signalCode := lifecycle.SignalContext(parent)
	shutdownTelemetry, err := telemetry.Setup(ctx, cfg.Telemetry.ForBroker(), "brokkr-auth")
	if err != nil {
		log.Error("telemetry setup failed", "error", err)
		return lifecycle.ExitConfig
	}
	defer func() { _ = shutdownTelemetry(context.Background()) }()

	srv, cleanup, err := buildServer(ctx, cfg, log, stdout)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return lifecycle.CodeFor(err)
	}
	defer cleanup()
	if _, err := srv.admin.Bootstrap(ctx); err != nil {
		log.Error("admin bootstrap failed", "error", err)
		return lifecycle.Exit(signalCode(), err)
	}
	log.Info("auth listening", "addr", cfg.Auth.Addr)
	err = httpserver.Run(ctx, srv.http, srv.shutdownTimeout)
	if err != nil {
		log.Error("server stopped", "error", err)
	}
	return lifecycle.Exit(signalCode(), err)
}

// system is the principal of the CLI: an operator on the broker host.
var system = identity.Principal{Role: identity.RoleSystem}

func runCLI(ctx context.Context, cmd string, args []string, cfg config.Settings, log *slog.Logger, stdout io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s needs a subject", cmd)
	}
	subject, args := args[0], args[1:]
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	// Parse before connecting, so a usage mistake needs no database.
	var do func(c *cli) error
	switch cmd + " " + subject {
	case "create agent":
		fs := newFlagSet("create agent")
		name := fs.String("name", "", "agent name (required)")
		cluster := fs.String("cluster-name", "", "cluster name (required)")
		fs.StringVar(cluster, "cluster_name", "", "alias of --cluster-name")
		var genFlags stringList
		fs.Var(&genFlags, "generator-ids", "generators to register the agent with besides the system generator (comma-separated UUIDs; repeatable)")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		if !isSet(fs, "name") || !(isSet(fs, "cluster-name") || isSet(fs, "cluster_name")) {
			return usageErr("create agent needs --name and --cluster-name")
		}
		gens, err := generator.ParseIDs(genFlags)
		if err != nil {
			return usageErr("--generator-ids: %v", err)
		}
		do = func(c *cli) error {
			a, p, err := c.agents.Create(ctx, system, agents.CreateInput{Name: *name, ClusterName: *cluster, GeneratorIDs: gens})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Agent created successfully:\nID: %s\nName: %s\nCluster: %s\nInitial PAK: %s\nRegistered with: %s\n",
				a.ID, a.Name, a.ClusterName, p.Reveal(), generator.RegisteredWith(gens))
			return nil
		}
	case "create generator":
		fs := newFlagSet("create generator")
		name := fs.String("name", "", "generator name (required)")
		desc := fs.String("description", "", "description")
		if err := parse(fs, args, 0); err != nil {
			return err
		}
		if !isSet(fs, "name") {
			return usageErr("create generator needs --name")
		}
		in := generators.CreateInput{Name: *name}
		if isSet(fs, "description") {
			in.Description = desc
		}
		do = func(c *cli) error {
			g, p, err := c.generators.Create(ctx, system, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Generator created successfully:\nID: %s\nName: %s\nInitial PAK: %s\n", g.ID, g.Name, p.Reveal())
			return nil
		}
	case "rotate admin":
		if err := parse(newFlagSet("rotate admin"), args, 0); err != nil {
			return err
		}
		do = func(c *cli) error {
			p, err := c.admin.RotateAdmin(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "New PAK: %s\n", p.Reveal())
			return nil
		}
	case "rotate agent", "rotate generator":
		fs := newFlagSet(cmd + " " + subject)
		idFlag := fs.String("uuid", "", "id of the "+subject)
		if err := parse(fs, args, 1); err != nil {
			return err
		}
		raw := *idFlag
		if rest := fs.Args(); len(rest) == 1 {
			if raw != "" {
				return usageErr("give the %s id once", subject)
			}
			raw = rest[0]
		}
		id, err := uuid.Parse(strings.TrimSpace(raw))
		if err != nil {
			return usageErr("%s %s needs a valid UUID (got %q)", cmd, subject, raw)
		}
		do = func(c *cli) error {
			var p secret.String
			var err error
			if subject == "agent" {
				_, p, err = c.agents.RotatePAK(ctx, system, id)
			} else {
				_, p, err = c.generators.RotatePAK(ctx, system, id)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "New PAK: %s\n", p.Reveal())
			return nil
		}
	default:
		return usageErr("unknown command %q", cmd+" "+subject)
	}

	c, cleanup, err := buildCLI(ctx, cfg, log, stdout)
	if err != nil {
		return err
	}
	defer cleanup()
	return do(c)
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses flags and allows at most maxArgs positional arguments, which
// may come before or after the flags.
func parse(fs *flag.FlagSet, args []string, maxArgs int) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return usageErr("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > maxArgs {
		return usageErr("%s: unexpected argument %q", fs.Name(), positional[maxArgs])
	}
	// Leave the positionals where fs.Args() finds them.
	_ = fs.Parse(append([]string{"--"}, positional...))
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// cliMessage is the client-safe message of a domain error, or the error.
func cliMessage(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Msg
	}
	return err.Error()
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
