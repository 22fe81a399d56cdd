//go:build wireinject

package main

import (
	"log/slog"

	"github.com/google/wire"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
)

func buildAgent(s agent.Settings, log *slog.Logger) (*agent.Agent, error) {
	wire.Build(
		provideBroker, provideKubeFactory, provideRegistry, provideMetrics, provideHooks,
		wire.Bind(new(prometheus.Gatherer), new(*prometheus.Registry)),
		agent.New,
	)
	return nil, nil
}
