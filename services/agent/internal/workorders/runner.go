// Package workorders executes work orders in the agent
// (docs/work-orders.md#agent-contract, #agent-execution): it polls the
// pending list while the agent is ACTIVE, claims orders, runs up to
// work_order_concurrency of them in their own goroutines (so heartbeats,
// reconciliation and health never wait on a build), reports progress, and
// queues exactly one completion per attempt in the outbox, with a
// retryable flag derived from typed errors. Orders in flight are recorded
// on disk next to the outbox, so a restarted agent resumes them.
package workorders

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
)

// CompletionKind marks work-order completions in the outbox.
const CompletionKind = "work_order_completion"

// maxMessage bounds a completion message (a long validation report).
const maxMessage = 16 << 10

// Options tune the runner.
type Options struct {
	// PollInterval is work_order_poll_interval (default 10 s).
	PollInterval time.Duration
	// Concurrency is work_order_concurrency (default 1).
	Concurrency int
	// Timeout is work_order_timeout_seconds (default 15 min), counted
	// from the claim.
	Timeout time.Duration
	// CheckInterval is how often Jobs and BuildRuns are read (default 5 s).
	CheckInterval time.Duration
	// ProgressInterval is the longest gap between progress reports
	// (default 60 s; never more than a third of the order's
	// claim_timeout_seconds). Reports are also sent at once when the
	// order's state changes.
	ProgressInterval time.Duration
	// StateDir holds the orders in flight. The default is the
	// "work-orders" folder inside the outbox folder, or memory only when
	// the outbox is (outbox_dir = memory).
	StateDir string
	// ResumeGrace is the least time a resumed order gets even when its
	// timeout passed while the agent was down, so a BuildRun that finished
	// meanwhile is still read (default 30 s).
	ResumeGrace time.Duration
}

// FromConfig maps the agent settings onto Options.
func FromConfig(c config.Agent) Options {
	return Options{
		PollInterval: time.Duration(c.WorkOrderPollInterval) * time.Second,
		Concurrency:  c.WorkOrderConcurrency,
		Timeout:      time.Duration(c.WorkOrderTimeoutSeconds) * time.Second,
	}
}

func (o Options) withDefaults() Options {
	defaults.Set(&o.PollInterval, 10*time.Second)
	defaults.Set(&o.Concurrency, 1)
	defaults.Set(&o.Timeout, 15*time.Minute)
	defaults.Set(&o.CheckInterval, 5*time.Second)
	defaults.Set(&o.ProgressInterval, time.Minute)
	defaults.Set(&o.ResumeGrace, 30*time.Second)
	return o
}

// Hook returns the work-order loop for the agent runtime.
func Hook(opts Options) agent.Hook {
	return agent.Hook{Name: "work-orders", Run: func(ctx context.Context, env agent.Env) error {
		return New(env, opts).Run(ctx)
	}}
}

// Broker is the runner's part of the broker client.
type Broker interface {
	PendingWorkOrders(ctx context.Context, agentID uuid.UUID) ([]workorder.WorkOrder, error)
	ClaimWorkOrder(ctx context.Context, id, agentID uuid.UUID) (workorder.WorkOrder, error)
	ReportWorkOrderProgress(ctx context.Context, id uuid.UUID, p broker.WorkOrderProgress) (workorder.WorkOrder, error)
}

// Runner polls, claims and runs work orders.
type Runner struct {
	env    agent.Env
	broker Broker
	opts   Options
	exec   *Executor
	store  *Store
	log    *slog.Logger

	mu         sync.Mutex
	running    map[uuid.UUID]bool
	unverified map[uuid.UUID]Claim // recorded claims not yet confirmed with the broker
	wake       chan struct{}
	wg         sync.WaitGroup
}

// New returns a runner; Run starts it.
func New(env agent.Env, opts Options) *Runner {
	opts = opts.withDefaults()
	log := env.Log()
	dir := opts.StateDir
	if dir == "" && env.Outbox != nil && env.Outbox.Dir() != "" {
		dir = filepath.Join(env.Outbox.Dir(), "work-orders")
	}
	store, err := OpenStore(dir)
	if err != nil {
		log.Error("work-order state unavailable on disk; orders in flight will not be resumed after a restart", "dir", dir, "error", err)
		store, _ = OpenStore("")
	}
	return &Runner{env: env, broker: env.Broker, opts: opts, store: store, log: log,
		exec:    NewExecutor(env.Kube, ExecutorOptions{AgentID: env.AgentID, CheckInterval: opts.CheckInterval, Logger: log}),
		running: map[uuid.UUID]bool{}, unverified: map[uuid.UUID]Claim{}, wake: make(chan struct{}, 1)}
}

// Run polls until ctx ends, then waits for the orders in flight to stop.
// On the way out an order stays recorded (and claimed) for the next start
// when the state is durable; otherwise it is released as a retryable
// failure.
func (r *Runner) Run(ctx context.Context) error {
	r.loadClaims()
	r.env.Poll(ctx, r.opts.PollInterval, r.wake, func() bool {
		r.resume(ctx)
		r.poll(ctx)
		return false
	})
	r.wg.Wait()
	return nil
}

// loadClaims reads the orders a previous run left in flight. One whose
// completion is still queued in the outbox is done.
func (r *Runner) loadClaims() {
	claims, errs := r.store.List()
	for _, err := range errs {
		r.log.Error("unreadable work-order state record skipped", "error", err)
	}
	queued := map[uuid.UUID]bool{}
	if r.env.Outbox != nil {
		for _, rec := range r.env.Outbox.Pending() {
			if rec.Kind != CompletionKind {
				continue
			}
			id := strings.TrimSuffix(strings.TrimPrefix(rec.Path, "/api/v1/work-orders/"), "/complete")
			if u, err := uuid.Parse(id); err == nil {
				queued[u] = true
			}
		}
	}
	for _, c := range claims {
		if queued[c.Order.ID] {
			_ = r.store.Delete(c.Order.ID)
			continue
		}
		r.unverified[c.Order.ID] = c
		r.log.Info("work order from a previous run found; resuming it once the broker confirms the claim",
			"work_order_id", c.Order.ID, "work_type", c.Order.WorkType)
	}
}

// resume confirms recorded claims with a progress report (which also
// restarts their claim timeout) and runs the ones still held.
func (r *Runner) resume(ctx context.Context) {
	r.mu.Lock()
	claims := make([]Claim, 0, len(r.unverified))
	for _, c := range r.unverified {
		claims = append(claims, c)
	}
	r.mu.Unlock()
	sort.Slice(claims, func(i, j int) bool { return claims[i].ClaimedAt.Before(claims[j].ClaimedAt) })
	for _, c := range claims {
		if ctx.Err() != nil {
			return
		}
		id := c.Order.ID
		log := r.log.With("work_order_id", id, "work_type", c.Order.WorkType)
		msg := "agent restarted; resuming"
		// The recorded order is the one claimed: its attempt (retry_count)
		// cannot change while this agent holds the claim.
		_, err := r.broker.ReportWorkOrderProgress(ctx, id, broker.WorkOrderProgress{Message: &msg})
		switch {
		case err == nil:
			r.mu.Lock()
			delete(r.unverified, id)
			r.mu.Unlock()
			log.Info("claim confirmed; resuming the work order")
			r.start(ctx, c, true)
		case errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrNotFound):
			r.mu.Lock()
			delete(r.unverified, id)
			r.mu.Unlock()
			r.forget(log, id)
			log.Info("recorded work order is no longer claimed by this agent (another agent won, it expired, was cancelled or completed); dropped")
		default:
			if ctx.Err() == nil {
				log.Warn("confirming a recorded claim failed; will retry", "error", err)
			}
		}
	}
}

func (r *Runner) free() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opts.Concurrency - len(r.running)
}

func (r *Runner) known(id uuid.UUID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, unverified := r.unverified[id]
	return r.running[id] || unverified
}

// poll claims pending orders, oldest first, while slots are free.
func (r *Runner) poll(ctx context.Context) {
	free := r.free()
	if free <= 0 {
		return
	}
	orders, err := r.broker.PendingWorkOrders(ctx, r.env.AgentID)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Debug("fetching pending work orders failed", "error", err)
		}
		return
	}
	for _, o := range orders {
		if free <= 0 || ctx.Err() != nil {
			return
		}
		if r.known(o.ID) {
			continue
		}
		log := r.log.With("work_order_id", o.ID, "work_type", o.WorkType)
		// Recorded before the claim call, so a crash right after a
		// successful claim still finds it.
		c := Claim{Order: o, ClaimedAt: time.Now().UTC()}
		if err := r.store.Save(c); err != nil {
			log.Error("recording the claim failed; a restart would not resume this order", "error", err)
		}
		w, err := r.broker.ClaimWorkOrder(ctx, o.ID, r.env.AgentID)
		if err != nil {
			if !errors.Is(err, broker.ErrRejected) {
				// The claim may or may not have happened: keep the record
				// and confirm it like a claim found after a restart.
				if ctx.Err() != nil {
					return
				}
				r.mu.Lock()
				r.unverified[o.ID] = c
				r.mu.Unlock()
				log.Warn("claim call failed; will check whether it went through", "error", err)
				continue
			}
			r.forget(log, o.ID)
			if errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrConflict) {
				log.Debug("work order claimed by another agent or gone")
				continue
			}
			log.Warn("claiming the work order failed", "error", err)
			return
		}
		if w.ID == o.ID {
			c.Order = w
			if err := r.store.Save(c); err != nil {
				log.Error("recording the claim failed", "error", err)
			}
		}
		log.Info("work order claimed", "retry_count", c.Order.RetryCount)
		r.start(ctx, c, false)
		free--
	}
}

func (r *Runner) forget(log *slog.Logger, id uuid.UUID) {
	if err := r.store.Delete(id); err != nil {
		log.Error("removing the work-order state record failed", "error", err)
	}
}

func (r *Runner) start(ctx context.Context, c Claim, resumed bool) {
	r.mu.Lock()
	r.running[c.Order.ID] = true
	r.mu.Unlock()
	r.wg.Go(func() {
		defer func() {
			r.mu.Lock()
			delete(r.running, c.Order.ID)
			r.mu.Unlock()
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}()
		r.execute(ctx, c, resumed)
	})
}

var errClaimLost = errors.New("the claim is no longer this agent's")

func (r *Runner) execute(ctx context.Context, c Claim, resumed bool) {
	id := c.Order.ID
	log := r.log.With("work_order_id", id, "work_type", c.Order.WorkType)
	start := time.Now()
	wctx, lose := context.WithCancelCause(ctx)
	defer lose(nil)
	deadline := c.ClaimedAt.Add(r.opts.Timeout)
	if resumed && time.Until(deadline) < r.opts.ResumeGrace {
		deadline = time.Now().Add(r.opts.ResumeGrace)
	}
	tctx, cancel := context.WithDeadline(wctx, deadline)
	defer cancel()

	p := &progress{r: r, id: id, log: log, lost: lose, every: r.progressEvery(c), kick: make(chan struct{}, 1)}
	pdone := make(chan struct{})
	go func() {
		defer close(pdone)
		p.run(wctx)
	}()
	msg, err := r.exec.Execute(tctx, Task{Order: c.Order, Timeout: r.opts.Timeout, Progress: p.set})
	timedOut := errors.Is(tctx.Err(), context.DeadlineExceeded) && wctx.Err() == nil
	lost := errors.Is(context.Cause(wctx), errClaimLost)
	lose(nil)
	<-pdone

	var f *Failure
	if err != nil {
		f = Classify(err)
	}
	switch {
	case lost:
		log.Warn("the claim is no longer this agent's (expired, released or cancelled); work abandoned without completing")
		r.forget(log, id)
	case ctx.Err() != nil && f != nil && (f.Reason == ReasonInternal || f.Retryable()):
		// Interrupted by the drain (an outcome reached just before it is
		// still completed below).
		if r.store.Durable() {
			log.Info("agent stopping; the work order stays claimed and resumes at the next start")
			return
		}
		r.complete(log, id, false, "the agent stopped before the work order finished; released for a retry", true, "AgentStopped", start)
	case err == nil:
		r.complete(log, id, true, msg, true, "", start)
	default:
		if timedOut && f.Reason != ReasonTimeout {
			f = &Failure{Reason: ReasonTimeout, Message: "timed out after " + r.opts.Timeout.String() + ": " + f.Message, Err: err}
		}
		r.complete(log, id, false, f.Message, f.Retryable(), string(f.Reason), start)
	}
}

// progressEvery is the period of progress reports: ProgressInterval, and
// at most a third of the order's claim timeout (the contract).
func (r *Runner) progressEvery(c Claim) time.Duration {
	every := r.opts.ProgressInterval
	if ct := c.Order.ClaimTimeoutSeconds; ct > 0 {
		every = min(every, time.Duration(ct)*time.Second/3)
	}
	return max(every, time.Second)
}

// complete queues the completion in the outbox (durable; retried while
// the broker is unreachable; a 404 or 409 answer drops it, as the contract
// says) and forgets the claim.
func (r *Runner) complete(log *slog.Logger, id uuid.UUID, success bool, msg string, retryable bool, reason string, start time.Time) {
	msg = truncate(msg, maxMessage)
	body := broker.WorkOrderCompletion{Success: success, Message: &msg, Retryable: retryable}
	_, err := r.env.Outbox.Append(CompletionKind, http.MethodPost, broker.WorkOrderCompletePath(id), body)
	if errors.Is(err, outbox.ErrTooLarge) {
		short := truncate(msg, 512)
		body.Message = &short
		_, err = r.env.Outbox.Append(CompletionKind, http.MethodPost, broker.WorkOrderCompletePath(id), body)
	}
	if err != nil {
		log.Error("could not queue the work-order completion; the claim will expire and count as a failed attempt", "error", err)
		return
	}
	r.forget(log, id)
	took := time.Since(start).Round(time.Millisecond).String()
	if success {
		log.Info("work order succeeded", "message", msg, "took", took)
		return
	}
	log.Warn("work order failed", "reason", reason, "retryable", retryable, "error", msg, "took", took)
}

// progress sends the order's latest state to the broker when it changes
// and at least every `every`; a 409 or 404 answer means the claim is gone
// and cancels the work.
type progress struct {
	r     *Runner
	id    uuid.UUID
	log   *slog.Logger
	lost  context.CancelCauseFunc
	every time.Duration
	kick  chan struct{}

	mu  sync.Mutex
	msg string
}

func (p *progress) set(msg string) {
	p.mu.Lock()
	changed := msg != p.msg
	p.msg = msg
	p.mu.Unlock()
	if changed {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *progress) run(ctx context.Context) {
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-t.C:
		}
		p.mu.Lock()
		msg := p.msg
		p.mu.Unlock()
		if msg == "" {
			msg = "running"
		}
		msg = truncate(msg, 4000)
		_, err := p.r.broker.ReportWorkOrderProgress(ctx, p.id, broker.WorkOrderProgress{Message: &msg})
		switch {
		case err == nil:
		case errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrNotFound):
			p.lost(errClaimLost)
			return
		case ctx.Err() == nil:
			p.log.Debug("progress report failed", "error", err)
		}
	}
}

// truncate cuts s to at most n bytes (plus an ellipsis) on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
