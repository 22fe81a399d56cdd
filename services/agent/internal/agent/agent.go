// Package agent is the agent's runtime: start-up against the broker and the
// cluster, the lifecycle state machine, independent loops (heartbeat,
// target state, drift, the outbox sender and pluggable hooks for health,
// diagnostics and work orders), the health/metrics server and the drain.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
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

// Env is what a hook gets: the agent's identity and clients, once start-up
// finished.
type Env struct {
	AgentID uuid.UUID
	Broker  *broker.Client
	Kube    *kube.Client
	Outbox  *outbox.Outbox
	Logger  *slog.Logger
	// Active reports whether the broker says the agent is ACTIVE; inactive
	// agents only heartbeat.
	Active func() bool
	// Applied lists the deployment objects applied in this process, one per
	// stack (the health monitor's tracked set).
	Applied func() []stack.DeploymentObject
}

// Hook is an independent loop started after start-up (deployment health,
// diagnostics, work orders). It must return when ctx ends and must not
// block other loops; a returned error is logged.
type Hook struct {
	Name string
	Run  func(ctx context.Context, env Env) error
}

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
	activeCh        chan struct{} // signalled when the agent turns ACTIVE

	mgr         *reconcile.Manager
	incremental atomic.Pointer[map[uuid.UUID]bool] // ids of the last incremental target state

	// Listener, when set, is used by the health server instead of binding
	// health_port (tests).
	Listener net.Listener
}

// New returns an agent. reg gathers /metrics.
func New(set Settings, log *slog.Logger, b *broker.Client, newKube KubeFactory, m *Metrics, reg prometheus.Gatherer, hooks []Hook) *Agent {
	a := &Agent{set: set, log: log, broker: b, newKube: newKube, metrics: m, gatherer: reg, hooks: hooks,
		started: time.Now(), activeCh: make(chan struct{}, 1)}
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

// startupBackoff paces start-up retries: 1 s, ×2, at most 10 s apart.
var startupBackoff = kube.Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: 0.2, Deadline: -1}

// attempts is how many times start-up steps are tried (max_retries, at
// least once).
func (a *Agent) attempts() int { return max(a.set.MaxRetries, 1) }

// retry runs fn until it succeeds, fails permanently or attempts run out.
func (a *Agent) retry(ctx context.Context, what string, permanent func(error) bool, fn func(context.Context) error) error {
	var err error
	for i := range a.attempts() {
		if err = fn(ctx); err == nil || (permanent != nil && permanent(err)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i+1 < a.attempts() {
			d := startupBackoff.Delay(i)
			a.log.Warn(what+" failed, retrying", "attempt", i+1, "of", a.attempts(), "retry_in", d.Round(time.Millisecond).String(), "error", err)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return err
}

func (a *Agent) startup(ctx context.Context) error {
	a.setState(StateWaitingForBroker)
	if err := a.retry(ctx, "waiting for the broker", nil, a.broker.Ready); err != nil {
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("broker %s never became ready after %d attempt(s): %w", a.broker.BaseURL(), a.attempts(), err))
	}
	a.brokerConnected.Store(true)

	a.setState(StateAuthenticating)
	unauthorized := func(err error) bool { return errors.Is(err, broker.ErrUnauthorized) }
	if err := a.retry(ctx, "verifying the PAK", unauthorized, a.broker.VerifyPAK); err != nil {
		if unauthorized(err) {
			return lifecycle.WithCode(lifecycle.ExitNoPermission, errors.New("the broker rejected the agent PAK (401)"))
		}
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("verifying the PAK: %w", err))
	}
	var self domainagent.Agent
	err := a.retry(ctx, "fetching the agent record", broker.Permanent, func(ctx context.Context) error {
		var err error
		self, err = a.broker.FindAgent(ctx, a.set.AgentName, a.set.ClusterName)
		return err
	})
	switch {
	case err == nil:
	case errors.Is(err, broker.ErrNotFound):
		return lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("agent %q in cluster %q is not registered with the broker", a.set.AgentName, a.set.ClusterName))
	case errors.Is(err, broker.ErrUnauthorized) || errors.Is(err, broker.ErrForbidden):
		return lifecycle.WithCode(lifecycle.ExitNoPermission, fmt.Errorf("the PAK may not read agent %q: %w", a.set.AgentName, err))
	case broker.Permanent(err):
		return fmt.Errorf("fetching the agent record: %w", err)
	default:
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("fetching the agent record: %w", err))
	}
	a.record.Store(&self)
	a.log = a.log.With("agent_id", self.ID.String())
	a.log.Info("agent record fetched", "status", self.Status)

	k, err := a.newKube()
	if err != nil {
		return lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("kubernetes client: %w", err))
	}
	var version string
	if err := a.retry(ctx, "reaching the Kubernetes API", nil, func(ctx context.Context) error {
		info, err := k.ServerVersion(ctx)
		if err == nil {
			version = info.GitVersion
		}
		return err
	}); err != nil {
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("kubernetes API unreachable: %w", err))
	}
	a.kube.Store(k)
	a.log.Info("connected to Kubernetes", "version", version)
	if old, ok := olderThan(version, 1, 29); ok && old {
		a.log.Warn("Kubernetes is older than the supported 1.29", "version", version)
	}

	a.openOutbox(self.ID)
	return nil
}

// olderThan parses "v1.37.2" and reports whether it is older than
// major.minor; ok is false when the version does not parse.
func olderThan(v string, major, minor int) (older, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRight(parts[1], "+"))
	if err1 != nil || err2 != nil {
		return false, false
	}
	return ma < major || (ma == major && mi < minor), true
}

func (a *Agent) openOutbox(agentID uuid.UUID) {
	opts := outbox.Options{MaxBytes: a.set.OutboxMaxBytes, Logger: a.log, OnDrop: a.onOutboxDrop}
	if dir := a.set.OutboxPath(); dir != "" {
		opts.Dir = filepath.Join(dir, agentID.String())
	}
	ob, err := outbox.Open(opts)
	if err != nil {
		a.log.Error("outbox unavailable on disk; keeping reports in memory only", "dir", opts.Dir, "error", err)
		opts.Dir = ""
		ob, _ = outbox.Open(opts)
	}
	if n, _, _ := ob.Stats(); n > 0 {
		a.log.Info("outbox holds reports from a previous run; they will be replayed in order", "records", n)
	}
	a.outbox.Store(ob)
}

func (a *Agent) onOutboxDrop(rec outbox.Record, reason string) {
	a.metrics.OutboxDropped.Inc()
	if e, ok := eventOf(rec); ok && e.EventType == broker.EventDeploy && e.Status == broker.StatusOK && a.mgr != nil {
		// The broker will keep offering the object; let it be applied and
		// reported again.
		a.mgr.Forget(e.DeploymentObjectID)
	}
	a.log.Warn("report dropped from the outbox", "seq", rec.Seq, "kind", rec.Kind, "reason", reason)
}

func eventOf(rec outbox.Record) (broker.Event, bool) {
	if rec.Kind != kindEvent {
		return broker.Event{}, false
	}
	var e broker.Event
	if err := json.Unmarshal(rec.Body, &e); err != nil {
		return broker.Event{}, false
	}
	return e, true
}

const kindEvent = "event"

// reporter queues events in the outbox.
type reporter struct{ a *Agent }

func (r reporter) Report(_ context.Context, e reconcile.Event) error {
	self := r.a.self()
	msg := e.Message
	ev := broker.Event{AgentID: self.ID, DeploymentObjectID: e.DeploymentObjectID, EventType: e.Type, Status: e.Status, Message: &msg}
	_, err := r.a.outbox.Load().Append(kindEvent, http.MethodPost, broker.EventsPath(self.ID), ev)
	return err
}

func (a *Agent) runLoops(ctx context.Context) {
	self := a.self()
	k := a.kubeClient()
	ob := a.outbox.Load()
	invNS := a.set.InventoryNamespace()
	rec := reconcile.New(k, reconcile.Options{AgentID: self.ID, Logger: a.log,
		Inventory: reconcile.NewConfigMapInventory(k.Dynamic, invNS, self.ID)})
	a.mgr = reconcile.NewManager(rec, reporter{a}, reconcile.ManagerOptions{
		Concurrency: a.set.StackConcurrency,
		Retry:       a.set.RetryBackoff,
		DriftMode:   a.set.DriftModeName(),
		Logger:      a.log,
		OnDrift: func(stack.DeploymentObject, reconcile.DriftReport) {
			a.metrics.DriftDetected.Inc()
		},
		OnOutcome: func(do stack.DeploymentObject, err error, took time.Duration) {
			op := "apply"
			if do.IsDeletionMarker {
				op = "delete"
			}
			a.metrics.KubeOperations.WithLabelValues(op).Inc()
			a.metrics.KubeOperationTime.WithLabelValues(op).Observe(took.Seconds())
			result := "success"
			if err != nil {
				result = "failure"
			}
			a.metrics.Reconciles.WithLabelValues(result).Inc()
		},
	})
	// SUCCESS events still queued from a previous run: do not apply and
	// report those objects again.
	for _, r := range ob.Pending() {
		if e, ok := eventOf(r); ok && e.EventType == broker.EventDeploy && e.Status == broker.StatusOK {
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
	wg.Go(func() { a.targetStateLoop(ctx) })
	wg.Go(func() { a.driftLoop(ctx) })
	senderCtx, stopSender := context.WithCancel(context.WithoutCancel(ctx))
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		ob.Run(senderCtx, a.sender())
	}()
	env := Env{AgentID: self.ID, Broker: a.broker, Kube: k, Outbox: ob, Logger: a.log, Active: a.active, Applied: a.mgr.Applied}
	for _, h := range a.hooks {
		wg.Go(func() {
			if err := h.Run(ctx, env.with(a.log.With("loop", h.Name))); err != nil && ctx.Err() == nil {
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

func (e Env) with(log *slog.Logger) Env { e.Logger = log; return e }

func (a *Agent) sender() outbox.Sender {
	return outbox.Sender{
		Send: func(ctx context.Context, r outbox.Record) error {
			_, err := a.broker.Send(ctx, r.Method, r.Path, r.Body, r.Key)
			return err
		},
		Verify:    a.verifyDelivered,
		Permanent: broker.Permanent,
		Delay: func(n int) time.Duration {
			return kube.Backoff{Initial: time.Second, Max: a.PollingInterval(), Deadline: -1}.Delay(n)
		},
		OnDelivered: func(r outbox.Record) {
			a.metrics.EventsSent.WithLabelValues(r.Kind).Inc()
			a.updateOutboxGauges()
		},
	}
}

func (a *Agent) updateOutboxGauges() {
	if ob := a.outbox.Load(); ob != nil {
		n, b, _ := ob.Stats()
		a.metrics.OutboxRecords.Set(float64(n))
		a.metrics.OutboxBytes.Set(float64(b))
	}
}

// verifyDelivered checks whether an event left by a previous run already
// reached the broker (identical event recorded), so it is not sent twice.
// The outbox asks only about records without an Idempotency-Key (written
// by an earlier version); keyed records are simply sent again.
func (a *Agent) verifyDelivered(ctx context.Context, r outbox.Record) (bool, error) {
	e, ok := eventOf(r)
	if !ok {
		return false, nil
	}
	events, err := a.broker.Events(ctx, e.AgentID)
	if err != nil {
		return false, err
	}
	for _, got := range events {
		if got.DeploymentObjectID == e.DeploymentObjectID && got.EventType == e.EventType && got.Status == e.Status &&
			ptrEq(got.Message, e.Message) {
			return true, nil
		}
	}
	return false, nil
}

func ptrEq(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
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
			select {
			case a.activeCh <- struct{}{}:
			default:
			}
		}
		return
	}
	a.setState(StateInactive)
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(a.PollingInterval())
	defer t.Stop()
	for {
		a.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	self := a.self()
	rec, ok, err := a.broker.Heartbeat(ctx, self.ID)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, broker.ErrRejected) {
			a.metrics.HeartbeatSent.Inc() // the original counts transport errors too
		}
		if a.brokerConnected.Swap(false) {
			a.log.Error("heartbeat failed; broker unreachable", "error", err)
		} else {
			a.log.Debug("heartbeat failed", "error", err)
		}
		return
	}
	a.metrics.HeartbeatSent.Inc()
	a.metrics.LastSuccessfulPoll.SetToCurrentTime()
	now := time.Now()
	a.lastHeartbeat.Store(&now)
	if !a.brokerConnected.Swap(true) {
		a.log.Info("broker reachable again")
		if ob := a.outbox.Load(); ob != nil {
			ob.Kick()
		}
	}
	if !ok {
		if rec, err = a.broker.GetAgent(ctx, self.ID); err != nil {
			a.log.Warn("refreshing the agent record failed", "error", err)
			return
		}
	}
	if rec.Status != self.Status {
		a.log.Info("agent status changed", "status", rec.Status)
	}
	a.record.Store(&rec)
	a.updateActivity(rec.Status)
}

func (a *Agent) targetStateLoop(ctx context.Context) {
	self := a.self()
	etag := ""
	failures := 0
	seeded := false
	for ctx.Err() == nil {
		if !a.active() {
			etag = ""
			select {
			case <-ctx.Done():
				return
			case <-a.activeCh:
			case <-time.After(a.PollingInterval()):
			}
			continue
		}
		start := time.Now()
		ts, err := a.broker.TargetState(ctx, self.ID, broker.TargetStateQuery{ETag: etag, Wait: a.set.TargetStateWait()})
		took := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.metrics.PollRequests.WithLabelValues("error").Inc()
			a.metrics.PollDuration.Observe(took.Seconds())
			d := kube.Backoff{Initial: time.Second, Max: a.PollingInterval(), Deadline: -1}.Delay(failures)
			failures++
			a.log.Warn("fetching the target state failed", "error", err, "retry_in", d.Round(time.Millisecond).String())
			sleepCtx(ctx, d)
			continue
		}
		failures = 0
		a.metrics.PollRequests.WithLabelValues("success").Inc()
		a.metrics.PollDuration.Observe(took.Seconds())
		a.metrics.LastSuccessfulPoll.SetToCurrentTime()
		if !ts.NotModified {
			etag = ts.ETag
			ids := make(map[uuid.UUID]bool, len(ts.Objects))
			for _, o := range ts.Objects {
				ids[o.ID] = true
			}
			a.incremental.Store(&ids)
			a.log.Debug("target state", "objects", len(ts.Objects))
			a.mgr.Submit(ts.Objects)
			if !seeded {
				seeded = a.seedApplied(ctx, ids)
			}
		}
		// A broker that does not hold the request (or an empty ETag) must
		// not make this loop spin.
		if took < time.Second && (ts.NotModified || a.set.TargetStateWait() == 0 || ts.ETag == "") {
			sleepCtx(ctx, a.PollingInterval())
		}
	}
}

// seedApplied tells the manager which objects earlier runs applied (in the
// full target state, not in the incremental one, or queued as done), so the
// health monitor reports them without waiting for a new deployment.
func (a *Agent) seedApplied(ctx context.Context, pending map[uuid.UUID]bool) bool {
	ts, err := a.broker.TargetState(ctx, a.self().ID, broker.TargetStateQuery{Full: true})
	if err != nil {
		a.log.Debug("fetching the full target state failed; retrying on the next change", "error", err)
		return false
	}
	var applied []stack.DeploymentObject
	for _, do := range ts.Objects {
		if !pending[do.ID] || a.mgr.IsDone(do.ID) {
			applied = append(applied, do)
		}
	}
	a.mgr.Seed(applied)
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (a *Agent) driftLoop(ctx context.Context) {
	if a.set.DriftInterval() <= 0 {
		return
	}
	t := time.NewTicker(a.set.DriftInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.active() {
			a.CheckDrift(ctx)
		}
	}
}

// CheckDrift runs one drift check over every applied deployment object.
func (a *Agent) CheckDrift(ctx context.Context) {
	self := a.self()
	ts, err := a.broker.TargetState(ctx, self.ID, broker.TargetStateQuery{Full: true})
	if err != nil {
		a.log.Warn("drift check: fetching the full target state failed", "error", err)
		return
	}
	pending := map[uuid.UUID]bool{}
	if p := a.incremental.Load(); p != nil {
		pending = *p
	}
	var applied []stack.DeploymentObject
	for _, do := range ts.Objects {
		if pending[do.ID] && !a.mgr.IsDone(do.ID) {
			continue // not applied yet; the reconcile loop owns it
		}
		applied = append(applied, do)
	}
	start := time.Now()
	a.mgr.CheckDrift(ctx, applied)
	a.metrics.KubeOperations.WithLabelValues("drift_check").Inc()
	a.metrics.KubeOperationTime.WithLabelValues("drift_check").Observe(time.Since(start).Seconds())
}
