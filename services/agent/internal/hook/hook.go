// Package hook is how the agent's loops plug into its runtime: each loop
// (target state, drift, deployment health, diagnostics, work orders,
// webhook delivery) is a Hook started once start-up finished, given an Env.
// The runtime (internal/agent) starts them and waits for them on a drain;
// the loops never import the runtime.
package hook

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Env is what a hook gets: the agent's identity and clients, once start-up
// finished. The clients are the concrete ones; each hook keeps only the
// few methods it calls, behind an interface it declares itself, so its
// tests can fake them.
type Env struct {
	AgentID uuid.UUID
	Broker  *broker.Client
	Kube    *kube.Client
	Outbox  *outbox.Outbox
	Logger  *slog.Logger
	// Active reports whether the broker says the agent is ACTIVE; inactive
	// agents only heartbeat.
	Active func() bool
	// WaitActive blocks until the agent turns ACTIVE, d passed or ctx
	// ended, whichever comes first.
	WaitActive func(ctx context.Context, d time.Duration)
	// Applied lists the deployment objects applied, one per stack (the
	// health monitor's tracked set).
	Applied func() []stack.DeploymentObject
	// Deployments schedules reconciles and drift checks (the target-state
	// and drift hooks feed it).
	Deployments *reconcile.Manager
}

// With returns env with another logger.
func (e Env) With(log *slog.Logger) Env { e.Logger = log; return e }

// Hook is an independent loop started after start-up. It must return when
// ctx ends and must not block other loops; a returned error is logged.
type Hook struct {
	Name string
	Run  func(ctx context.Context, env Env) error
}
