// Command templating is Brokkr's rendering service: Tera-compatible
// templates (gonja) and JSON Schema parameters, under hard time and size
// limits. It is stateless and CPU-bound, so it scales and fails apart from
// api, which reaches it over an internal HTTP API.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) > 1 && os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: templating [serve]")
		return lifecycle.ExitConfig
	}
	cfg, err := config.Load(config.LoadOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return lifecycle.ExitConfig
	}
	log, _ := logging.New("templating", cfg.Log, os.Stderr)
	ctx, signalCode := lifecycle.SignalContext(context.Background())
	shutdown, err := telemetry.Setup(ctx, cfg.Telemetry.ForBroker(), "brokkr-templating")
	if err != nil {
		log.Error("telemetry setup failed", "error", err)
		return lifecycle.ExitConfig
	}
	defer func() { _ = shutdown(context.Background()) }()
	srv, err := buildServer(cfg, log)
	if err != nil {
		log.Error("start-up failed", "error", err)
		return lifecycle.CodeFor(err)
	}
	log.Info("templating listening", "addr", cfg.Templating.Addr)
	err = httpserver.Run(ctx, srv, time.Duration(cfg.HTTP.ShutdownTimeoutSeconds)*time.Second)
	return lifecycle.Exit(signalCode(), err)
}
