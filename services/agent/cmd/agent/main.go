// Command agent is the Brokkr agent: it runs in one cluster, pulls its
// target state from the broker and reconciles it with server-side apply.
//
//	agent [start]   run the agent (default; "start" as the original's CLI)
//	agent version   print the version
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
)

// version is set with -ldflags "-X main.version=…".
var version = "0.0.0"

func main() { os.Exit(run(os.Args[1:], os.Environ())) }

func run(args []string, environ []string) int {
	cmd := "start"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "start":
	case "version", "--version", "-V":
		fmt.Println("brokkr-agent", version)
		return lifecycle.ExitOK
	case "-h", "--help", "help":
		fmt.Println("usage: agent [start] | agent version\nsettings come from BROKKR__AGENT__* environment variables")
		return lifecycle.ExitOK
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q (want start or version)\n", cmd)
		return lifecycle.ExitConfig
	}

	cfg, err := config.Load(config.LoadOptions{Environ: func() []string { return environ }})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return lifecycle.ExitConfig
	}
	log, _ := logging.New("agent", cfg.Log, os.Stderr)
	slog.SetDefault(log)

	ctx, signalCode := lifecycle.SignalContext(context.Background())
	shutdownTelemetry, err := telemetry.Setup(ctx, cfg.Telemetry.ForAgent(), "brokkr-agent")
	if err != nil {
		log.Error("telemetry setup failed", "error", err)
		return lifecycle.ExitConfig
	}
	defer func() { _ = shutdownTelemetry(context.Background()) }()

	a, err := buildAgent(agent.Settings{Agent: cfg.Agent, Version: version}, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return lifecycle.CodeFor(err)
	}
	err = a.Run(ctx)
	if err != nil {
		log.Error("agent failed", "error", err, "exit_code", lifecycle.Exit(signalCode(), err))
	}
	return lifecycle.Exit(signalCode(), err)
}
