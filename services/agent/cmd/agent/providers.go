package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/diagnostics"
	"github.com/brokkr-go/brokkr/services/agent/internal/health"
	"github.com/brokkr-go/brokkr/services/agent/internal/telemetry"
	"github.com/brokkr-go/brokkr/services/agent/internal/webhooks"
	"github.com/brokkr-go/brokkr/services/agent/internal/workorders"
)

func provideBroker(s agent.Settings) (*broker.Client, error) {
	return broker.New(s.BrokerURL, s.PAK, broker.Options{UserAgent: "brokkr-agent/" + s.Version})
}

// provideKubeFactory defers loading the cluster configuration until the
// broker accepted the agent, as the original orders start-up.
func provideKubeFactory(s agent.Settings, log *slog.Logger) agent.KubeFactory {
	return func() (*kube.Client, error) {
		cfg, err := kube.LoadRESTConfig(s.KubeconfigPath)
		if err != nil {
			return nil, err
		}
		qps := float32(s.KubeQPS)
		if qps <= 0 {
			qps = -1 // no client-side limit
		}
		return kube.New(cfg, kube.Options{QPS: qps, Burst: s.KubeBurst, UserAgent: "brokkr-agent/" + s.Version, Logger: log})
	}
}

func provideRegistry() *prometheus.Registry { return httpserver.NewRegistry() }

func provideMetrics(reg *prometheus.Registry) *agent.Metrics { return agent.NewMetrics(reg) }

// provideHooks lists the loops that plug into the runtime: deployment
// health, diagnostics, work orders, webhook delivery, and pod-log
// streaming with event forwarding.
func provideHooks(s agent.Settings, reg *prometheus.Registry) []agent.Hook {
	var hooks []agent.Hook
	if s.DeploymentHealthEnabled {
		hooks = append(hooks, health.Hook(health.Options{Interval: s.HealthInterval()}))
	}
	if s.DiagnosticsEnabled {
		hooks = append(hooks, diagnostics.Hook(diagnostics.Options{Interval: s.DiagnosticsInterval(), LogLines: s.DiagnosticsLogLines}))
	}
	if s.WorkOrdersEnabled {
		hooks = append(hooks, workorders.Hook(workorders.FromConfig(s.Agent)))
	}
	if s.WebhooksEnabled {
		opts := webhooks.FromConfig(s.Agent)
		opts.Registerer = reg
		hooks = append(hooks, webhooks.Hook(opts))
	}
	if s.LogStreamingEnabled || s.KubeEventsEnabled {
		hooks = append(hooks, telemetry.Hook(telemetry.FromConfig(s.Agent)))
	}
	return hooks
}
