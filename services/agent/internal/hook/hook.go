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
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Cluster is the Kubernetes client as the hooks get it: every method some
// hook calls (work orders apply, read and watch; health and diagnostics
// inspect; telemetry resolves the owners of Events). Each hook hands it on
// only as the smaller interface its own package declares
// (workorders.Cluster, inspect.Cluster, telemetry.Cluster), so its tests
// can fake that. *kube.Client implements it; the runtime builds the client
// once start-up reached the cluster.
type Cluster interface {
	Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error)
	Apply(ctx context.Context, obj *unstructured.Unstructured, opts kube.ApplyOptions) (*unstructured.Unstructured, error)
	Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error)
	WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error
	DynamicClient() dynamic.Interface
	MetadataClient() metadata.Interface
	Config() *rest.Config
}

// Broker is the broker client as the hooks get it: every call some hook
// makes. Each hook hands it on only as the smaller interface its own
// package declares (deploy.TargetStates, webhooks.Broker,
// diagnostics.Broker, workorders.Broker, telemetry.Broker). *broker.Client
// implements it.
type Broker interface {
	// Target state and drift.
	TargetState(ctx context.Context, agentID uuid.UUID, q broker.TargetStateQuery) (broker.TargetState, error)
	// Diagnostics.
	PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error)
	ClaimDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error)
	GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error)
	// Work orders.
	PendingWorkOrders(ctx context.Context, agentID uuid.UUID) ([]workorder.WorkOrder, error)
	ClaimWorkOrder(ctx context.Context, id, agentID uuid.UUID) (workorder.WorkOrder, error)
	ReportWorkOrderProgress(ctx context.Context, id uuid.UUID, p broker.WorkOrderProgress) (workorder.WorkOrder, error)
	// Webhook delivery.
	ClaimWebhooks(ctx context.Context, agentID uuid.UUID) ([]broker.PendingWebhook, error)
	ReportWebhook(ctx context.Context, id uuid.UUID, r broker.WebhookResult) (broker.WebhookOutcome, error)
	// Pod-log streaming and Kubernetes events.
	PostTelemetry(ctx context.Context, agentID uuid.UUID, frames []broker.TelemetryFrame) (broker.TelemetryResult, error)
}

// Env is what a hook gets: the agent's identity and clients, once start-up
// finished. Each hook keeps only the few methods it calls, behind an
// interface it declares itself, so its tests can fake them.
type Env struct {
	AgentID uuid.UUID
	Broker  Broker
	Kube    Cluster
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

// Log is the hook's logger: Logger, or one that discards when the Env was
// built without one (tests).
func (e Env) Log() *slog.Logger {
	if e.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Logger
}

// IsActive reports whether the agent is ACTIVE. An Env without Active
// (tests) always is.
func (e Env) IsActive() bool { return e.Active == nil || e.Active() }

// Poll is the loop of the hooks that poll the broker for work (work
// orders, diagnostics, webhook deliveries): it calls poll at once and then
// every interval until ctx ends, only while the agent is ACTIVE (an
// inactive agent only heartbeats). When poll reports more work waiting
// (a full claim) it is called again at once; a value on wake (nil: never)
// also ends the wait early, e.g. when a slot frees up.
func (e Env) Poll(ctx context.Context, interval time.Duration, wake <-chan struct{}, poll func() (more bool)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for ctx.Err() == nil {
		if e.IsActive() && poll() {
			continue
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-wake:
		}
	}
}

// Hook is an independent loop started after start-up. It must return when
// ctx ends and must not block other loops; a returned error is logged.
type Hook struct {
	Name string
	Run  func(ctx context.Context, env Env) error
}
