package reconcile

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Event is one outcome to report to the broker. Type and Status take the
// values of pkg/domain/agent: agent.EventTypeDeploy or EventTypeDrift,
// agent.EventSuccess or EventFailure.
type Event struct {
	DeploymentObjectID uuid.UUID
	StackID            uuid.UUID
	Type               string
	Status             string
	Message            string
}

// Reporter hands events to the broker, durably (the outbox): Report must
// not block on the network.
type Reporter interface {
	Report(ctx context.Context, e Event) error
}

// Applier is what the Manager needs from a Reconciler.
type Applier interface {
	Apply(ctx context.Context, do stack.DeploymentObject) (Result, error)
	Drift(ctx context.Context, do stack.DeploymentObject, correct bool) (DriftReport, error)
}

// Drift modes.
const (
	DriftCorrect    = "correct"
	DriftReportOnly = "report"
)

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	// Concurrency bounds how many stacks reconcile at once (default 4).
	Concurrency int
	// Retry paces retries of a failed deployment object: the zero value is
	// 5 s initial, ×2, ±50 %, at most 5 minutes apart, without end.
	// Permanent failures (bad YAML, rejected objects) wait the maximum.
	Retry kube.Backoff
	// DriftMode is DriftCorrect (default) or DriftReportOnly.
	DriftMode string
	Logger    *slog.Logger
	// OnApplied is told about every deployment object applied successfully
	// (the health monitor's tracked set).
	OnApplied func(stack.DeploymentObject)
	// OnDrift observes every drift check that found drift (metrics).
	OnDrift func(do stack.DeploymentObject, rep DriftReport)
	// OnOutcome observes every reconcile (metrics).
	OnOutcome func(do stack.DeploymentObject, err error, took time.Duration)
}

type stackWork struct {
	id uuid.UUID
	// run serialises reconcile and drift checks of the stack.
	run sync.Mutex
	// desired is the deployment object still to reconcile (nil: none).
	desired  *stack.DeploymentObject
	failures int
	retryAt  time.Time
	// lastFailure is the message last reported for desired, so an identical
	// failure is not reported again on every retry.
	lastFailure     string
	lastFailureFor  uuid.UUID
	lastDriftReport map[uuid.UUID]string
	kick            chan struct{}
}

// Manager schedules reconciliation: one goroutine per stack (serialised),
// a bound on concurrent stacks, retries with backoff, one event per outcome.
type Manager struct {
	app  Applier
	rep  Reporter
	opts ManagerOptions
	log  *slog.Logger
	sem  chan struct{}

	mu     sync.Mutex
	stacks map[uuid.UUID]*stackWork
	done   map[uuid.UUID]bool // deployment objects whose SUCCESS was reported
	// submitted holds the ids of the last incremental target state.
	submitted map[uuid.UUID]bool
	applied   map[uuid.UUID]stack.DeploymentObject
	ctx       context.Context // stops taking work
	workCtx   context.Context // in-flight work; cancelled by Abort
	abort     context.CancelFunc
	wg        sync.WaitGroup
	started   bool
}

// NewManager returns a manager; call Run to start it.
func NewManager(app Applier, rep Reporter, opts ManagerOptions) *Manager {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.Retry == (kube.Backoff{}) {
		opts.Retry = kube.Backoff{Initial: 5 * time.Second, Max: 5 * time.Minute, Deadline: -1}
	}
	if opts.DriftMode == "" {
		opts.DriftMode = DriftCorrect
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{app: app, rep: rep, opts: opts, log: opts.Logger, sem: make(chan struct{}, opts.Concurrency),
		stacks: map[uuid.UUID]*stackWork{}, done: map[uuid.UUID]bool{}, applied: map[uuid.UUID]stack.DeploymentObject{}}
}

// Run starts the stack workers and blocks until ctx ends and every
// in-flight reconcile finished. In-flight work is not cancelled by ctx; call
// Abort to cut it short (the drain grace period ran out).
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.ctx = ctx
	m.workCtx, m.abort = context.WithCancel(context.WithoutCancel(ctx))
	m.started = true
	for _, sw := range m.stacks {
		m.startLocked(sw)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.wg.Wait()
	m.abort()
}

// Abort cancels in-flight work.
func (m *Manager) Abort() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.abort != nil {
		m.abort()
	}
}

func (m *Manager) startLocked(sw *stackWork) {
	if !m.started || m.ctx.Err() != nil {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.loop(sw)
	}()
}

// MarkDone records deployment objects whose SUCCESS is already reported or
// queued (e.g. found in the outbox at start-up), so they are not applied and
// reported again.
func (m *Manager) MarkDone(ids ...uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.done[id] = true
	}
}

// IsDone reports whether the object's SUCCESS was reported or queued.
func (m *Manager) IsDone(id uuid.UUID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.done[id]
}

// Pending reports whether the object was in the last incremental target
// state and its SUCCESS is not reported yet: not applied, the reconcile
// loop owns it.
func (m *Manager) Pending(id uuid.UUID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.submitted[id] && !m.done[id]
}

// Forget undoes MarkDone, e.g. when a queued SUCCESS was dropped.
func (m *Manager) Forget(id uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.done, id)
}

// Applied returns the deployment objects applied successfully in this
// process, one per stack.
func (m *Manager) Applied() []stack.DeploymentObject {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]stack.DeploymentObject, 0, len(m.applied))
	for _, do := range m.applied {
		out = append(out, do)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SequenceID < out[j].SequenceID })
	return out
}

// Seed records deployment objects applied by an earlier run (the broker
// holds their SUCCESS), so the health monitor tracks them after a restart.
// A stack that already has an object applied in this process keeps it.
func (m *Manager) Seed(objs []stack.DeploymentObject) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, do := range objs {
		if do.IsDeletionMarker {
			continue
		}
		if cur, ok := m.applied[do.StackID]; !ok || cur.SequenceID < do.SequenceID {
			m.applied[do.StackID] = do
		}
	}
}

// Submit replaces the desired state with the broker's incremental target
// state: per stack the deployment object still to reconcile. Stacks absent
// from objs stop being retried; objects already reported SUCCESS are
// skipped.
func (m *Manager) Submit(objs []stack.DeploymentObject) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[uuid.UUID]bool{}
	present := map[uuid.UUID]bool{}
	for _, do := range objs {
		present[do.ID] = true
	}
	m.submitted = present
	// Forget acknowledged objects the broker no longer returns, so the set
	// stays small; keep those it still returns (the event may be queued).
	for id := range m.done {
		if !present[id] {
			delete(m.done, id)
		}
	}
	for _, do := range objs {
		if m.done[do.ID] {
			continue
		}
		// The broker returns one object per stack; were it to send more, the
		// later (higher sequence) one wins.
		seen[do.StackID] = true
		sw := m.stacks[do.StackID]
		if sw == nil {
			sw = &stackWork{id: do.StackID, kick: make(chan struct{}, 1), lastDriftReport: map[uuid.UUID]string{}}
			m.stacks[do.StackID] = sw
			m.startLocked(sw)
		}
		if sw.desired != nil && sw.desired.ID == do.ID {
			continue
		}
		d := do
		sw.desired = &d
		sw.failures, sw.retryAt = 0, time.Time{}
		poke(sw.kick)
	}
	for id, sw := range m.stacks {
		if !seen[id] && sw.desired != nil {
			m.log.Info("stack no longer in the target state; not retrying", "stack_id", id, "deployment_object_id", sw.desired.ID)
			sw.desired = nil
		}
	}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (m *Manager) loop(sw *stackWork) {
	for {
		m.mu.Lock()
		ctx := m.ctx
		var do *stack.DeploymentObject
		if sw.desired != nil {
			d := *sw.desired
			do = &d
		}
		wait := time.Until(sw.retryAt)
		m.mu.Unlock()

		if do == nil || wait > 0 {
			var timer <-chan time.Time
			var t *time.Timer
			if do != nil {
				t = time.NewTimer(wait)
				timer = t.C
			}
			select {
			case <-ctx.Done():
			case <-sw.kick:
			case <-timer:
			}
			if t != nil {
				t.Stop()
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case m.sem <- struct{}{}:
		}
		m.reconcile(sw, *do)
		<-m.sem
	}
}

func (m *Manager) reconcile(sw *stackWork, do stack.DeploymentObject) {
	sw.run.Lock()
	defer sw.run.Unlock()
	m.mu.Lock()
	workCtx := m.workCtx
	stillWanted := sw.desired != nil && sw.desired.ID == do.ID
	m.mu.Unlock()
	if !stillWanted {
		return
	}
	log := m.log.With("stack_id", do.StackID, "deployment_object_id", do.ID, "sequence_id", do.SequenceID)
	start := time.Now()
	res, err := m.app.Apply(workCtx, do)
	took := time.Since(start)
	if m.opts.OnOutcome != nil {
		m.opts.OnOutcome(do, err, took)
	}
	if err == nil {
		log.Info("deployment object reconciled", "applied", len(res.Applied), "pruned", len(res.Pruned),
			"deletion_marker", do.IsDeletionMarker, "took", took.String())
		m.report(log, Event{DeploymentObjectID: do.ID, StackID: do.StackID, Type: agent.EventTypeDeploy, Status: agent.EventSuccess,
			Message: res.Message(do.IsDeletionMarker)})
		m.mu.Lock()
		m.done[do.ID] = true
		if sw.desired != nil && sw.desired.ID == do.ID {
			sw.desired = nil
		}
		sw.failures, sw.lastFailure, sw.lastFailureFor = 0, "", uuid.Nil
		if do.IsDeletionMarker {
			delete(m.applied, do.StackID)
		} else {
			m.applied[do.StackID] = do
		}
		m.mu.Unlock()
		if !do.IsDeletionMarker && m.opts.OnApplied != nil {
			m.opts.OnApplied(do)
		}
		return
	}
	if workCtx.Err() != nil {
		log.Warn("reconcile interrupted by shutdown", "error", err)
		return
	}
	msg := err.Error()
	m.mu.Lock()
	delay := m.opts.Retry.Delay(sw.failures)
	if Permanent(err) {
		delay = m.opts.Retry.Delay(64)
	}
	sw.failures++
	sw.retryAt = time.Now().Add(delay)
	repeat := sw.lastFailureFor == do.ID && sw.lastFailure == msg
	sw.lastFailure, sw.lastFailureFor = msg, do.ID
	m.mu.Unlock()
	log.Warn("deployment object failed; will retry", "error", msg, "retry_in", delay.Round(time.Millisecond).String(),
		"attempt", sw.failures, "reported", !repeat)
	if !repeat {
		m.report(log, Event{DeploymentObjectID: do.ID, StackID: do.StackID, Type: agent.EventTypeDeploy, Status: agent.EventFailure, Message: msg})
	}
}

func (m *Manager) report(log *slog.Logger, e Event) {
	m.mu.Lock()
	ctx := context.Background()
	if m.ctx != nil {
		ctx = context.WithoutCancel(m.ctx)
	}
	m.mu.Unlock()
	if err := m.rep.Report(ctx, e); err != nil {
		log.Error("could not queue the event", "event_type", e.Type, "status", e.Status, "error", err)
	}
}

// CheckDrift checks each applied deployment object (the broker's full
// target state minus what is still pending) for drift, stack by stack with
// the same concurrency bound, and reports DRIFT events. It returns when all
// checks finished or ctx ended.
func (m *Manager) CheckDrift(ctx context.Context, objs []stack.DeploymentObject) {
	correct := m.opts.DriftMode != DriftReportOnly
	var wg sync.WaitGroup
	for _, do := range objs {
		if do.IsDeletionMarker {
			continue
		}
		m.mu.Lock()
		sw := m.stacks[do.StackID]
		if sw == nil {
			sw = &stackWork{id: do.StackID, kick: make(chan struct{}, 1), lastDriftReport: map[uuid.UUID]string{}}
			m.stacks[do.StackID] = sw
			m.startLocked(sw)
		}
		pending := sw.desired != nil
		m.mu.Unlock()
		if pending {
			continue // the stack has newer work; its reconcile corrects drift anyway
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case m.sem <- struct{}{}:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-m.sem }()
			m.drift(ctx, sw, do, correct)
		}()
	}
	wg.Wait()
}

func (m *Manager) drift(ctx context.Context, sw *stackWork, do stack.DeploymentObject, correct bool) {
	sw.run.Lock()
	defer sw.run.Unlock()
	m.mu.Lock()
	pending := sw.desired != nil
	m.mu.Unlock()
	if pending {
		return
	}
	log := m.log.With("stack_id", do.StackID, "deployment_object_id", do.ID)
	rep, err := m.app.Drift(ctx, do, correct)
	if err != nil {
		log.Warn("drift check failed", "error", err)
		return
	}
	m.mu.Lock()
	if _, ok := m.applied[do.StackID]; !ok {
		m.applied[do.StackID] = do
	}
	m.mu.Unlock()
	if len(rep.Drifted) == 0 {
		m.mu.Lock()
		delete(sw.lastDriftReport, do.ID)
		m.mu.Unlock()
		return
	}
	if m.opts.OnDrift != nil {
		m.opts.OnDrift(do, rep)
	}
	msg := rep.Message()
	status := agent.EventFailure
	if rep.Corrected {
		status = agent.EventSuccess
	}
	m.mu.Lock()
	// In report mode the same drift is reported once, not every interval.
	repeat := !rep.Corrected && sw.lastDriftReport[do.ID] == msg
	sw.lastDriftReport[do.ID] = msg
	m.mu.Unlock()
	log.Warn("drift detected", "objects", rep.Drifted, "corrected", rep.Corrected, "reported", !repeat)
	if !repeat {
		m.report(log, Event{DeploymentObjectID: do.ID, StackID: do.StackID, Type: agent.EventTypeDrift, Status: status, Message: msg})
	}
}
