// Package agent is the agent's runtime: start-up against the broker and the
// cluster, the lifecycle state machine, independent loops (heartbeat,
// target state, drift, the outbox sender and pluggable hooks for health,
// diagnostics and work orders), the health/metrics server and the drain.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/hook"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// State is the agent's lifecycle state, shown in /health.
type State string

// Lifecycle states: starting → waiting_for_broker → authenticating →
// running ⇄ inactive → draining → stopped.
const (
	StateStarting         State = "starting"
	StateWaitingForBroker State = "waiting_for_broker"
	StateAuthenticating   State = "authenticating"
	StateRunning          State = "running"
	StateInactive         State = "inactive"
	StateDraining         State = "draining"
	StateStopped          State = "stopped"
)

var allStates = []State{StateStarting, StateWaitingForBroker, StateAuthenticating, StateRunning, StateInactive, StateDraining, StateStopped}

// KubeFactory builds the Kubernetes client once the broker accepted the
// agent (the original's order).
type KubeFactory func() (*kube.Client, error)

// Env and Hook are the hook contract (internal/hook): target state and
// drift (internal/deploy) always, plus the optional hooks provideHooks
// lists in cmd/agent/providers.go.
type (
	Env  = hook.Env
	Hook = hook.Hook
)

// Agent is the runtime.
type Agent struct {
	set      Settings
	log      *slog.Logger
	broker   *broker.Client
	newKube  KubeFactory
	metrics  *Metrics
	gatherer prometheus.Gatherer
	hooks    []Hook

	started         time.Time
	state           atomic.Value // State
	ready           atomic.Bool
	brokerConnected atomic.Bool
	lastHeartbeat   atomic.Pointer[time.Time]
	record          atomic.Pointer[domainagent.Agent]
	kube            atomic.Pointer[kube.Client]
	outbox          atomic.Pointer[outbox.Outbox]
	activeMu        sync.Mutex
	activeCh        chan struct{} // closed (and replaced) when the agent turns ACTIVE

	mgr *reconcile.Manager

	// Listener, when set, is used by the health server instead of binding
	// health_port (tests).
	Listener net.Listener
}

// New returns an agent. reg gathers /metrics.
func New(set Settings, log *slog.Logger, b *broker.Client, newKube KubeFactory, m *Metrics, reg prometheus.Gatherer, hooks []Hook) *Agent {
	a := &Agent{set: set, log: log, broker: b, newKube: newKube, metrics: m, gatherer: reg, hooks: hooks,
		started: time.Now(), activeCh: make(chan struct{})}
	a.setState(StateStarting)
	a.brokerConnected.Store(false)
	return a
}

// State returns the current lifecycle state.
func (a *Agent) State() State { return a.state.Load().(State) }

func (a *Agent) setState(s State) {
	prev, _ := a.state.Load().(State)
	a.state.Store(s)
	for _, st := range allStates {
		v := 0.0
		if st == s {
			v = 1
		}
		a.metrics.LifecycleState.WithLabelValues(string(st)).Set(v)
	}
	if prev != s && prev != "" {
		a.log.Info("lifecycle state changed", "from", string(prev), "to", string(s))
	}
}

func (a *Agent) self() *domainagent.Agent    { return a.record.Load() }
func (a *Agent) kubeClient() *kube.Client    { return a.kube.Load() }
func (a *Agent) active() bool                { r := a.self(); return r != nil && r.Status == domainagent.StatusActive }
func (a *Agent) Ready() bool                 { return a.ready.Load() }
func (a *Agent) Outbox() *outbox.Outbox      { return a.outbox.Load() }
func (a *Agent) Manager() *reconcile.Manager { return a.mgr }

// Run starts the agent and blocks until ctx ends (a signal) and the drain
// finished, or start-up failed. Start-up errors carry their exit code
// (lifecycle.CodeFor): 69 broker or cluster unreachable, 77 PAK rejected,
// 64 bad configuration.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.set.Validate(); err != nil {
		return err
	}
	a.log = a.log.With("agent_name", a.set.AgentName, "cluster", a.set.ClusterName)

	// The health server comes first, so liveness passes while the broker is
	// slow; /readyz fails until start-up finished.
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	srvDone, err := a.serve(srvCtx)
	if err != nil {
		stopServer()
		return err
	}
	defer func() {
		stopServer()
		<-srvDone
	}()

	if err := a.startup(ctx); err != nil {
		if ctx.Err() != nil {
			a.setState(StateStopped)
			return nil // stopped by a signal while starting
		}
		return err
	}
	a.runLoops(ctx)
	a.setState(StateStopped)
	a.log.Info("agent stopped")
	return nil
}

func (a *Agent) serve(ctx context.Context) (<-chan struct{}, error) {
	ln := a.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(a.set.HealthPort)))
		if err != nil {
			return nil, fmt.Errorf("health server: %w", err)
		}
	}
	srv := httpserver.NewServer(ln.Addr().String(), a.Handler())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := httpserver.Serve(ctx, srv, ln, 5*time.Second); err != nil {
			a.log.Error("health server stopped", "error", err)
		}
	}()
	a.log.Info("health server listening", "addr", ln.Addr().String())
	return done, nil
}

func (a *Agent) runLoops(ctx context.Context) {
	self := a.self()
	k := a.kubeClient()
	ob := a.outbox.Load()
	invNS := a.set.InventoryNamespace()
	a.mgr = a.newManager(k, self.ID, invNS)
	// SUCCESS events still queued from a previous run: do not apply and
	// report those objects again.
	for _, r := range ob.Pending() {
		if e, ok := eventOf(r); ok && e.EventType == domainagent.EventTypeDeploy && e.Status == domainagent.EventSuccess {
			a.mgr.MarkDone(e.DeploymentObjectID)
		}
	}
	a.updateActivity(self.Status)
	a.ready.Store(true)
	a.log.Info("agent started", "state", string(a.State()), "drift_mode", a.set.DriftModeName(), "inventory_namespace", invNS,
		"polling_interval", a.PollingInterval().String())

	var wg sync.WaitGroup
	mgrDone := make(chan struct{})
	go func() {
		defer close(mgrDone)
		a.mgr.Run(ctx)
	}()
	wg.Go(func() { a.heartbeatLoop(ctx) })
	senderCtx, stopSender := context.WithCancel(context.WithoutCancel(ctx))
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		ob.Run(senderCtx, a.sender())
	}()
	env := Env{AgentID: self.ID, Broker: a.broker, Kube: k, Outbox: ob, Logger: a.log, Active: a.active,
		WaitActive: a.waitActive, Applied: a.mgr.Applied, Deployments: a.mgr}
	for _, h := range append(a.coreHooks(), a.hooks...) {
		wg.Go(func() {
			if err := h.Run(ctx, env.With(a.log.With("loop", h.Name))); err != nil && ctx.Err() == nil {
				a.log.Error("loop stopped", "loop", h.Name, "error", err)
			}
		})
	}

	<-ctx.Done()
	a.setState(StateDraining)
	a.ready.Store(false)
	grace := a.set.ShutdownGrace()
	a.log.Info("draining", "grace", grace.String())
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	select {
	case <-mgrDone:
	case <-deadline.C:
		a.log.Warn("grace period over; cancelling in-flight reconciles")
		a.mgr.Abort()
		<-mgrDone
	}
	wg.Wait()
	stopSender()
	<-senderDone
	// Last chance for queued reports; whatever is left stays on disk for
	// the next start.
	fctx, cancel := context.WithTimeout(context.Background(), min(5*time.Second, max(grace, time.Second)))
	if err := ob.Flush(fctx, a.sender()); err != nil {
		n, _, _ := ob.Stats()
		a.log.Warn("reports left in the outbox for the next start", "records", n, "durable", ob.Durable(), "error", err)
	}
	cancel()
}

// PollingInterval is the heartbeat and poll period.
func (a *Agent) PollingInterval() time.Duration { return a.set.PollEvery() }

// updateActivity moves between running and inactive after the broker told
// the agent its status.
func (a *Agent) updateActivity(status string) {
	switch a.State() {
	case StateDraining, StateStopped:
		return
	}
	if status == domainagent.StatusActive {
		if a.State() != StateRunning {
			a.setState(StateRunning)
			a.activeMu.Lock()
			close(a.activeCh) // wakes every waitActive
			a.activeCh = make(chan struct{})
			a.activeMu.Unlock()
		}
		return
	}
	a.setState(StateInactive)
}

// waitActive blocks until the agent turns ACTIVE, d passed or ctx ended.
func (a *Agent) waitActive(ctx context.Context, d time.Duration) {
	a.activeMu.Lock()
	ch := a.activeCh
	a.activeMu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-ch:
	case <-t.C:
	}
}
