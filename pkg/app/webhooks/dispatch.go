package webhooks

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

var marshal = json.Marshal

// OutboxEvent is a committed domain event the relay has not moved on yet.
type OutboxEvent struct {
	ID      uuid.UUID
	Type    string
	Payload string
}

// Task is a queue entry for a broker-mode delivery. Its queue id is the
// delivery id, so the queue holds at most one live task per delivery.
type Task struct {
	DeliveryID uuid.UUID
}

// QueueID is the task's unique id in the queue.
func (t Task) QueueID() string { return t.DeliveryID.String() }

// Enqueuer hands broker-mode deliveries to the work queue.
type Enqueuer interface {
	// Enqueue queues tasks, stopping at the first transport failure. It
	// returns the deliveries now in the queue, counting tasks that were
	// already queued under the same id.
	Enqueue(ctx context.Context, tasks []Task) ([]uuid.UUID, error)
	// Requeue makes sure each stale delivery has a task that will run: a
	// task the queue lost (Redis restarted empty) is queued again, and one
	// stuck as running whose worker died is replaced by a recovery task
	// under a new id; a task still waiting in the queue is left alone. It
	// returns the deliveries now covered, stopping at the first transport
	// failure.
	Requeue(ctx context.Context, stale []StaleDelivery) ([]uuid.UUID, error)
}

// DeliveryState is a delivery's progress, read when it cannot be acquired.
type DeliveryState struct {
	Found         bool
	Status        string
	AgentMode     bool
	NextRetryAt   *time.Time
	AcquiredUntil *time.Time
}

// StaleDelivery is a broker-mode delivery whose queue entry may be lost.
type StaleDelivery struct {
	ID       uuid.UUID
	Status   string
	Attempts int
}

// SubscriptionSource gives fan-out the subscriptions to match.
type SubscriptionSource interface {
	EnabledSubscriptions(ctx context.Context) ([]webhook.Subscription, error)
}

// OutboxRepository is the relay's side of the transactional outbox.
type OutboxRepository interface {
	// ClaimOutbox locks up to limit undispatched events, oldest first,
	// skipping rows another relay holds (inside a transaction).
	ClaimOutbox(ctx context.Context, limit int) ([]OutboxEvent, error)
	MarkDispatched(ctx context.Context, ids []uuid.UUID) error
	// EventSubject resolves the agent and stack an event is about (the
	// stack of a deployment object when only that is named) and, when
	// labels is true, their labels and annotations.
	EventSubject(ctx context.Context, agentID, stackID, deploymentObjectID *uuid.UUID, labels bool) (webhook.Subject, error)
	// DeleteDispatchedOutbox deletes up to limit relayed events older than
	// before.
	DeleteDispatchedOutbox(ctx context.Context, before time.Time, limit int) (int64, error)
}

// DeliveryQueue creates deliveries and tracks their hand-over to the
// queue.
type DeliveryQueue interface {
	// InsertDeliveries inserts deliveries, skipping (event, subscription)
	// pairs that exist, and returns the ids inserted.
	InsertDeliveries(ctx context.Context, ds []webhook.Delivery) ([]uuid.UUID, error)
	MarkEnqueued(ctx context.Context, ids []uuid.UUID) error
	// StaleBrokerDeliveries locks broker-mode deliveries whose queue entry
	// may be lost: pending and not enqueued for grace, failed and overdue by
	// grace, or acquired under a lease that expired (inside a transaction).
	StaleBrokerDeliveries(ctx context.Context, grace time.Duration, limit int) ([]StaleDelivery, error)
}

// BrokerAttempts holds a broker-mode delivery under a lease while one
// attempt is made.
type BrokerAttempts interface {
	// AcquireBroker takes a broker-mode delivery that is pending, due for
	// retry or held under an expired lease; the lease lasts the
	// subscription's timeout plus margin. ok is false when the delivery is
	// not acquirable now.
	AcquireBroker(ctx context.Context, id uuid.UUID, margin time.Duration) (c Claimed, ok bool, err error)
	DeliveryState(ctx context.Context, id uuid.UUID) (DeliveryState, error)
	// ReleaseBroker hands an acquired delivery back (pending), if the lease
	// is still the one given.
	ReleaseBroker(ctx context.Context, id uuid.UUID, lease time.Time) error
	// RecordBrokerAttempt stores an attempt's outcome if the lease is still
	// the one given (false when another worker took the delivery over).
	RecordBrokerAttempt(ctx context.Context, id uuid.UUID, lease time.Time, a Attempt) (bool, error)
}

// DeliveryCleanup frees expired agent leases and applies retention.
type DeliveryCleanup interface {
	// ReleaseExpiredAgentLeases returns agent-held deliveries whose lease
	// expired to pending, so another agent may claim them.
	ReleaseExpiredAgentLeases(ctx context.Context) (int64, error)
	// DeleteTerminalDeliveries deletes up to limit success/dead deliveries
	// completed before before.
	DeleteTerminalDeliveries(ctx context.Context, before time.Time, limit int) (int64, error)
}

// DispatchRepos are the dispatcher's ports.
type DispatchRepos struct {
	Tx            journal.Transactor
	Journal       journal.Recorder
	Subscriptions SubscriptionSource
	Outbox        OutboxRepository
	Queue         DeliveryQueue
	Attempts      BrokerAttempts
	Cleanup       DeliveryCleanup
}

// Observer receives the dispatcher's measurements (metrics).
type Observer interface {
	// Attempted reports an attempt's resulting status (success, failed,
	// dead) and how long the HTTP exchange took.
	Attempted(status string, took time.Duration)
	// Relayed reports events moved out of the outbox and deliveries created.
	Relayed(events, deliveries int)
	// Throttled reports a delivery postponed by the per-host limit.
	Throttled()
}

type noObserver struct{}

func (noObserver) Attempted(string, time.Duration) {}
func (noObserver) Relayed(int, int)                {}
func (noObserver) Throttled()                      {}

// DispatchSettings are read on every use, so hot-reloaded values apply at
// the next batch or tick.
type DispatchSettings struct {
	// BatchSize bounds the events or deliveries one transaction handles.
	BatchSize int
	// Interval is the sweep period; the sweep's grace is twice this.
	Interval time.Duration
	// RetentionDays keeps terminal deliveries (and dispatched outbox rows)
	// this long after they ended.
	RetentionDays int
}

// Dispatcher is webhook-dispatch's use cases.
type Dispatcher struct {
	repos    DispatchRepos
	cipher   Cipher
	sender   Sender
	queue    Enqueuer
	hosts    *HostLimiter
	settings func() DispatchSettings
	observer Observer
	log      *slog.Logger
	now      func() time.Time
	jitter   func() float64
}

// NewDispatcher wires the dispatcher. observer may be nil.
func NewDispatcher(repos DispatchRepos, cipher Cipher, sender Sender, queue Enqueuer, hosts *HostLimiter,
	settings func() DispatchSettings, observer Observer, log *slog.Logger) *Dispatcher {
	if observer == nil {
		observer = noObserver{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Dispatcher{repos: repos, cipher: cipher, sender: sender, queue: queue, hosts: hosts, settings: settings,
		observer: observer, log: log, now: time.Now, jitter: rand.Float64}
}

func (d *Dispatcher) batch() int {
	if b := d.settings().BatchSize; b > 0 {
		return b
	}
	return 50
}

// Relay moves committed outbox events on until the outbox is empty: for
// each event it creates one delivery per matching enabled subscription
// (patterns and filters) and marks the event dispatched, in one
// transaction, so a crash leaves either both or neither; then it queues
// the broker-mode deliveries. Several relays (replicas) split the outbox
// between them (SKIP LOCKED). A queue failure loses nothing: the
// deliveries wait in PostgreSQL for the sweep.
func (d *Dispatcher) Relay(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		batch := d.batch()
		var tasks []Task
		n, created := 0, 0
		err := d.repos.Tx.InTx(ctx, func(ctx context.Context) error {
			events, err := d.repos.Outbox.ClaimOutbox(ctx, batch)
			if err != nil || len(events) == 0 {
				return err
			}
			n = len(events)
			subs, err := d.repos.Subscriptions.EnabledSubscriptions(ctx)
			if err != nil {
				return err
			}
			var rows []webhook.Delivery
			ids := make([]uuid.UUID, len(events))
			for i, ev := range events {
				ids[i] = ev.ID
				matched, err := d.match(ctx, ev, subs)
				if err != nil {
					return err
				}
				rows = append(rows, matched...)
			}
			inserted, err := d.repos.Queue.InsertDeliveries(ctx, rows)
			if err != nil {
				return err
			}
			created = len(inserted)
			isNew := make(map[uuid.UUID]bool, len(inserted))
			for _, id := range inserted {
				isNew[id] = true
			}
			for _, r := range rows {
				if isNew[r.ID] && len(r.TargetLabels) == 0 {
					tasks = append(tasks, Task{DeliveryID: r.ID})
				}
			}
			return d.repos.Outbox.MarkDispatched(ctx, ids)
		})
		if err != nil {
			return total, err
		}
		total += n
		d.observer.Relayed(n, created)
		d.enqueue(ctx, tasks)
		if n < batch {
			break
		}
	}
	return total, ctx.Err()
}

// match returns a delivery row for every subscription the event goes to.
func (d *Dispatcher) match(ctx context.Context, ev OutboxEvent, subs []webhook.Subscription) ([]webhook.Delivery, error) {
	var out []webhook.Delivery
	payload := ""
	var subject *webhook.Subject
	withLabels := false
	for _, s := range subs {
		if !webhook.MatchesAny(s.EventTypes, ev.Type) {
			continue
		}
		if s.Filters.NeedsSubject() {
			if subject == nil || (s.Filters.NeedsLabels() && !withLabels) {
				sj, err := d.subject(ctx, ev, s.Filters.NeedsLabels())
				if err != nil {
					return nil, err
				}
				subject, withLabels = &sj, s.Filters.NeedsLabels()
			}
			if !s.Filters.Matches(*subject) {
				continue
			}
		}
		if payload == "" {
			payload = Canonical(ev.Payload)
		}
		out = append(out, webhook.Delivery{ID: uuid.New(), SubscriptionID: s.ID, EventID: ev.ID, EventType: ev.Type,
			Payload: payload, TargetLabels: s.TargetLabels, Status: webhook.StatusPending})
	}
	return out, nil
}

// Canonical renders an outbox payload (PostgreSQL jsonb reorders keys and
// adds spaces) as the compact envelope the original sends: id,
// event_type, timestamp, then data with its keys sorted; numbers keep
// their exact digits. This string is what is sent and signed. A payload
// that does not parse is kept as it is.
func Canonical(payload string) string {
	var env struct {
		ID        json.RawMessage `json:"id"`
		EventType json.RawMessage `json:"event_type"`
		Timestamp json.RawMessage `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if json.Unmarshal([]byte(payload), &env) != nil || env.ID == nil || env.EventType == nil {
		return payload
	}
	var data any
	dec := json.NewDecoder(strings.NewReader(string(env.Data)))
	dec.UseNumber()
	if len(env.Data) == 0 {
		data = map[string]any{}
	} else if dec.Decode(&data) != nil {
		return payload
	}
	type ordered struct {
		ID        json.RawMessage `json:"id"`
		EventType json.RawMessage `json:"event_type"`
		Timestamp json.RawMessage `json:"timestamp,omitempty"`
		Data      any             `json:"data"`
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // messages may hold <, > and &; keep them readable
	if enc.Encode(ordered{env.ID, env.EventType, env.Timestamp, data}) != nil {
		return payload
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (d *Dispatcher) subject(ctx context.Context, ev OutboxEvent, labels bool) (webhook.Subject, error) {
	var env event.Event
	if err := json.Unmarshal([]byte(ev.Payload), &env); err != nil {
		// An event we cannot read is about nothing: filters that need a
		// subject do not match it.
		return webhook.Subject{}, nil
	}
	a, s, o := webhook.SubjectIDs(env.Data)
	return d.repos.Outbox.EventSubject(ctx, a, s, o, labels)
}

// enqueue queues tasks and records which made it; failures are left to
// the sweep.
func (d *Dispatcher) enqueue(ctx context.Context, tasks []Task) {
	if len(tasks) == 0 {
		return
	}
	ok, err := d.queue.Enqueue(ctx, tasks)
	if err != nil {
		d.log.Warn("queueing webhook deliveries failed; the sweep will queue them", "deliveries", len(tasks),
			"queued", len(ok), "error", err)
	}
	if len(ok) > 0 {
		if err := d.repos.Queue.MarkEnqueued(context.WithoutCancel(ctx), ok); err != nil {
			d.log.Warn("recording queued deliveries failed", "error", err)
		}
	}
}

// OutcomeKind tells the queue what to do with a task.
type OutcomeKind int

const (
	// Done: the task is finished (delivered, dead, gone, or not ours).
	Done OutcomeKind = iota
	// Retry: an attempt failed and counts; run again at At.
	Retry
	// Requeue: nothing was attempted (host busy, not due, held elsewhere,
	// database trouble); run again at At without counting a failure.
	Requeue
)

// Outcome is the result of Deliver.
type Outcome struct {
	Kind   OutcomeKind
	At     time.Time
	Status string // the delivery's status after an attempt, if one was made
}

// leaseMargin extends a broker lease beyond the HTTP timeout, so a live
// worker's lease never expires mid-attempt.
const leaseMargin = 5 * time.Second

var systemActor = identity.Principal{Role: identity.RoleSystem}

// Deliver makes one attempt on a broker-mode delivery, if it is due and no
// one else holds it, and records the outcome.
func (d *Dispatcher) Deliver(ctx context.Context, id uuid.UUID) Outcome {
	now := d.now()
	c, ok, err := d.repos.Attempts.AcquireBroker(ctx, id, leaseMargin)
	if err != nil {
		d.log.Warn("acquiring a webhook delivery failed", "delivery_id", id, "error", err)
		return Outcome{Kind: Requeue, At: now.Add(time.Second + time.Duration(d.jitter()*float64(time.Second)))}
	}
	if !ok {
		return d.notAcquired(ctx, id, now)
	}
	lease := *c.AcquiredUntil
	url, auth, key, err := openSecrets(d.cipher, c.URLEncrypted, c.AuthHeaderEncrypted, c.SigningSecretEncrypted)
	if err != nil {
		msg := undecryptable
		return d.record(ctx, c, lease, Attempt{Decision: webhook.Decision{Status: webhook.StatusDead, Attempts: c.Attempts},
			LastError: &msg}, 0, "decryption failed")
	}
	host := hostOf(url)
	if !d.hosts.TryAcquire(host) {
		d.observer.Throttled()
		if err := d.repos.Attempts.ReleaseBroker(ctx, id, lease); err != nil {
			d.log.Warn("releasing a throttled webhook delivery failed", "delivery_id", id, "error", err)
		}
		return Outcome{Kind: Requeue, At: d.now().Add(200*time.Millisecond + time.Duration(d.jitter()*float64(500*time.Millisecond)))}
	}
	res := d.sender.Send(ctx, webhook.Request{URL: url, AuthHeader: auth, SigningSecret: key, EventType: c.EventType,
		DeliveryID: c.ID.String(), Body: []byte(c.Payload), Timeout: time.Duration(c.TimeoutSeconds) * time.Second})
	d.hosts.Release(host)
	if ctx.Err() != nil && res.StatusCode == 0 {
		// Shutting down mid-attempt: hand the delivery back untouched.
		_ = d.repos.Attempts.ReleaseBroker(context.WithoutCancel(ctx), id, lease)
		return Outcome{Kind: Requeue, At: d.now()}
	}
	dec := webhook.Decide(res.Verdict(), c.Attempts+1, c.MaxRetries, d.now().UTC(), d.jitter())
	a := Attempt{Decision: dec}
	if res.StatusCode != 0 {
		code := res.StatusCode
		a.StatusCode = &code
	}
	if t := res.ErrorText(); t != "" {
		a.LastError = &t
	}
	return d.record(ctx, c, lease, a, res.Duration, "")
}

func (d *Dispatcher) notAcquired(ctx context.Context, id uuid.UUID, now time.Time) Outcome {
	st, err := d.repos.Attempts.DeliveryState(ctx, id)
	switch {
	case err != nil:
		return Outcome{Kind: Requeue, At: now.Add(time.Second)}
	case !st.Found, st.AgentMode:
		return Outcome{Kind: Done}
	case st.Status == webhook.StatusFailed && st.NextRetryAt != nil:
		return Outcome{Kind: Requeue, At: maxTime(*st.NextRetryAt, now.Add(50*time.Millisecond))}
	case st.Status == webhook.StatusAcquired && st.AcquiredUntil != nil:
		// Another worker holds it; look again when its lease ends.
		return Outcome{Kind: Requeue, At: maxTime(st.AcquiredUntil.Add(time.Second), now.Add(time.Second))}
	case st.Status == webhook.StatusPending:
		return Outcome{Kind: Requeue, At: now.Add(100 * time.Millisecond)}
	}
	return Outcome{Kind: Done}
}

// record stores an attempt (and audits a dead delivery) and tells the
// queue what comes next.
func (d *Dispatcher) record(ctx context.Context, c Claimed, lease time.Time, a Attempt, took time.Duration, reason string) Outcome {
	ctx = context.WithoutCancel(ctx) // the attempt happened; record it even while stopping
	var stored bool
	err := d.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if stored, err = d.repos.Attempts.RecordBrokerAttempt(ctx, c.ID, lease, a); err != nil || !stored {
			return err
		}
		if a.Decision.Status != webhook.StatusDead {
			return nil
		}
		details := map[string]any{"delivery_id": c.ID, "event_type": c.EventType, "attempts": a.Decision.Attempts,
			"last_status_code": a.StatusCode}
		if reason != "" {
			details["reason"] = reason
		}
		return d.repos.Journal.Audit(ctx, journal.Entry(ctx, systemActor, webhook.ActionDeliveryFailed, webhook.ResourceType,
			c.SubscriptionID, details))
	})
	if err != nil {
		// The attempt is not recorded; the lease expires and the delivery
		// is tried again (at least once).
		d.log.Warn("recording a webhook attempt failed", "delivery_id", c.ID, "error", err)
		return Outcome{Kind: Requeue, At: lease.Add(time.Second)}
	}
	if !stored {
		d.log.Debug("webhook delivery was taken over by another worker", "delivery_id", c.ID)
		return Outcome{Kind: Done}
	}
	d.observer.Attempted(a.Decision.Status, took)
	level := slog.LevelDebug
	if a.Decision.Status == webhook.StatusDead {
		level = slog.LevelWarn
	}
	attrs := []any{"delivery_id", c.ID, "subscription_id", c.SubscriptionID, "event_type", c.EventType,
		"status", a.Decision.Status, "attempts", a.Decision.Attempts}
	if a.StatusCode != nil {
		attrs = append(attrs, "status_code", *a.StatusCode)
	}
	if a.LastError != nil && a.StatusCode == nil {
		attrs = append(attrs, "error", *a.LastError)
	}
	d.log.Log(ctx, level, "webhook attempt", attrs...)
	if a.Decision.Status == webhook.StatusFailed && a.Decision.NextRetryAt != nil {
		return Outcome{Kind: Retry, At: *a.Decision.NextRetryAt, Status: a.Decision.Status}
	}
	return Outcome{Kind: Done, Status: a.Decision.Status}
}

// SweepResult counts what a sweep did.
type SweepResult struct {
	Relayed  int
	Released int64
	Requeued int
}

// Sweep catches whatever the fast paths missed: outbox events whose signal
// was lost (Redis down at commit), agent leases that expired, and
// broker-mode deliveries whose queue entry was lost (Redis restarted) or
// whose worker died. Safe to run on every replica at once.
func (d *Dispatcher) Sweep(ctx context.Context) (SweepResult, error) {
	var r SweepResult
	var err error
	if r.Relayed, err = d.Relay(ctx); err != nil {
		return r, err
	}
	if r.Released, err = d.repos.Cleanup.ReleaseExpiredAgentLeases(ctx); err != nil {
		return r, err
	}
	grace := max(2*d.settings().Interval, 2*time.Second)
	for range 20 {
		batch := d.batch()
		var stale []StaleDelivery
		var queueErr error
		err := d.repos.Tx.InTx(ctx, func(ctx context.Context) error {
			var err error
			if stale, err = d.repos.Queue.StaleBrokerDeliveries(ctx, grace, batch); err != nil || len(stale) == 0 {
				return err
			}
			var ok []uuid.UUID
			ok, queueErr = d.queue.Requeue(ctx, stale)
			r.Requeued += len(ok)
			return d.repos.Queue.MarkEnqueued(ctx, ok)
		})
		if err != nil {
			return r, err
		}
		if queueErr != nil {
			d.log.Warn("the queue is unavailable; deliveries wait in PostgreSQL", "error", queueErr)
			break
		}
		if len(stale) < batch {
			break
		}
	}
	return r, ctx.Err()
}

// Cleanup deletes terminal deliveries (success, dead) and dispatched
// outbox events that ended more than the retention period ago. Pending and
// failed deliveries are never deleted
// (docs/compatibility.md#delivery-cleanup).
func (d *Dispatcher) Cleanup(ctx context.Context) (int64, error) {
	days := d.settings().RetentionDays
	if days <= 0 {
		return 0, nil
	}
	before := d.now().Add(-time.Duration(days) * 24 * time.Hour)
	var total int64
	for _, del := range []func(context.Context, time.Time, int) (int64, error){
		d.repos.Cleanup.DeleteTerminalDeliveries, d.repos.Outbox.DeleteDispatchedOutbox,
	} {
		for ctx.Err() == nil {
			n, err := del(ctx, before, 5000)
			if err != nil {
				return total, err
			}
			total += n
			if n < 5000 {
				break
			}
		}
	}
	return total, nil
}

// hostOf is the per-host limiter's key: scheme-independent host and port.
func hostOf(u secret.String) string {
	p, err := url.Parse(u.Reveal())
	if err != nil {
		return ""
	}
	return strings.ToLower(p.Host)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// HostLimiter bounds concurrent attempts per receiver host in this
// process, so one slow endpoint cannot occupy every worker: a delivery to
// a busy host is put back in the queue instead of waiting.
type HostLimiter struct {
	limit int
	mu    sync.Mutex
	busy  map[string]int
}

// NewHostLimiter allows limit concurrent attempts per host (≤ 0: no limit).
func NewHostLimiter(limit int) *HostLimiter {
	return &HostLimiter{limit: limit, busy: map[string]int{}}
}

// TryAcquire takes a slot for host if one is free.
func (h *HostLimiter) TryAcquire(host string) bool {
	if h == nil || h.limit <= 0 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[host] >= h.limit {
		return false
	}
	h.busy[host]++
	return true
}

// Release frees a slot taken by TryAcquire.
func (h *HostLimiter) Release(host string) {
	if h == nil || h.limit <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[host] <= 1 {
		delete(h.busy, host)
		return
	}
	h.busy[host]--
}

// InUse reports the slots taken for host (tests, metrics).
func (h *HostLimiter) InUse(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.busy[host]
}
