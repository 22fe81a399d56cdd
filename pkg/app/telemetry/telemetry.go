// Package telemetry holds the broker's side of pod-log streaming and stack
// telemetry (docs/telemetry.md): agents post batches of pod_log_line,
// k8s_event and log_gap frames, the broker keeps a bounded window of them
// in its store (retention ceiling 6 h, a row cap per stack, both enforced
// by the housekeeping sweep), serves the history per stack, and fans the
// frames out to live-tail subscribers on every api replica (live.go).
package telemetry

import (
	"context"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// RetentionCeiling is the hard upper bound of the telemetry window, as in
// 0.9.1: no setting keeps rows longer.
const RetentionCeiling = 6 * time.Hour

// LongTermSinkHint is the retention block's long_term_sink_hint.
const LongTermSinkHint = "Brokkr keeps stack telemetry for at most 6 hours and is not a log store; " +
	"ship logs to a dedicated log platform (e.g. Datadog) for long-term retention."

// History limits (0.9.1's GET /stacks/{id}/logs and /events).
const (
	DefaultLimit = 500
	MaxLimit     = 5000
)

// Log row kinds: a log line, or a gap marker stored among the lines.
const (
	KindLine = "line"
	KindGap  = "gap"
)

// LogRecord is a stored log row: 0.9.1's AgentPodLog (the line with its id
// and created_at), plus kind and, for a gap, its dropped_count and reason
// (the line is then GapLine's text and ts the gap's since_ts). The
// embedded line keeps its JSON fields in place: id, agent_id … line,
// created_at.
type LogRecord struct {
	ID uuid.UUID `json:"id"`
	domaintelemetry.PodLogLine
	CreatedAt    time.Time `json:"created_at"`
	Kind         string    `json:"kind"`
	DroppedCount *int64    `json:"dropped_count,omitempty"`
	Reason       *string   `json:"reason,omitempty"`
}

// EventRecord is a stored Kubernetes event: 0.9.1's AgentK8sEvent, the
// k8s_event body with its id and created_at.
type EventRecord struct {
	ID uuid.UUID `json:"id"`
	domaintelemetry.K8sEvent
	CreatedAt time.Time `json:"created_at"`
}

// Store is the telemetry repository.
type Store interface {
	// AssociatedStacks returns which of stackIDs (live stacks) the agent is
	// associated with, by the target-state association rule, in one query.
	AssociatedStacks(ctx context.Context, agentID uuid.UUID, stackIDs []uuid.UUID) ([]uuid.UUID, error)
	// InsertTelemetry stores a batch's rows; the store sets id and
	// created_at (the server's clock: retention's key).
	InsertTelemetry(ctx context.Context, logs []LogRecord, events []EventRecord) error
	// ListLogs returns up to limit log rows of the stack created at or after
	// since, newest first.
	ListLogs(ctx context.Context, stackID uuid.UUID, since time.Time, limit int) ([]LogRecord, error)
	// ListEvents is ListLogs for Kubernetes events.
	ListEvents(ctx context.Context, stackID uuid.UUID, since time.Time, limit int) ([]EventRecord, error)
	// OldestLog and OldestEvent return the created_at of the stack's oldest
	// row at or after since; nil when there is none.
	OldestLog(ctx context.Context, stackID uuid.UUID, since time.Time) (*time.Time, error)
	OldestEvent(ctx context.Context, stackID uuid.UUID, since time.Time) (*time.Time, error)
}

// StackReader reads a stack as the caller may (stacks.Service.Get): the
// admin any, a generator its own (403 otherwise), agents none; 404 when
// it does not exist.
type StackReader interface {
	Get(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error)
}

// Publisher carries accepted frames to the live-tail subscribers of every
// api replica. It must not block: a frame it cannot carry is lost to the
// live tail only (it is stored).
type Publisher interface {
	Publish(stackID uuid.UUID, frames []Frame)
}

// AgentOnly admits only the agent in the path: telemetry is posted by the
// agent itself (admin and generators get 403).
var AgentOnly = policy.Allow(domain.ForbiddenCode("agent_pak_mismatch", "Unauthorized"), policy.SelfAgent)

// Options tune a Service.
type Options struct {
	// Retention returns the configured window (broker.telemetry_retention_seconds),
	// read on every call; it is capped at RetentionCeiling.
	Retention func() time.Duration
	// MaxConcurrentIngests bounds the batches stored at once on this
	// replica; more answer 503 with Retry-After. 0: 8.
	MaxConcurrentIngests int
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// Service is the telemetry use case.
type Service struct {
	store  Store
	stacks StackReader
	pub    Publisher
	opts   Options
	slots  chan struct{}
}

// NewService wires the use case; pub may be nil (no live tail).
func NewService(store Store, stacks StackReader, pub Publisher, o Options) *Service {
	if o.MaxConcurrentIngests <= 0 {
		o.MaxConcurrentIngests = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention == nil {
		o.Retention = func() time.Duration { return RetentionCeiling }
	}
	return &Service{store: store, stacks: stacks, pub: pub, opts: o, slots: make(chan struct{}, o.MaxConcurrentIngests)}
}

// Result is the answer to an ingest batch.
type Result struct {
	Accepted int `json:"accepted"`
	Dropped  int `json:"dropped"`
}

// Ingest stores agent agentID's batch and publishes it to the live tail.
// The batch is all-or-nothing for its shape (422/400 on the first bad
// frame); frames for stacks the agent is not associated with are dropped
// and counted. Saturation answers 503 (retry later).
func (s *Service) Ingest(ctx context.Context, p identity.Principal, agentID uuid.UUID, frames []Frame) (Result, error) {
	if err := AgentOnly.CheckID(p, agentID); err != nil {
		return Result{}, err
	}
	if len(frames) > domaintelemetry.MaxFrames {
		return Result{}, domain.Unprocessable("a batch carries at most 500 frames")
	}
	batch := make([]decoded, 0, len(frames))
	var stackIDs []uuid.UUID
	seen := map[uuid.UUID]bool{}
	for i, f := range frames {
		d, err := decodeFrame(i, f, agentID)
		if err != nil {
			return Result{}, err
		}
		batch = append(batch, d)
		if !seen[d.stackID] {
			seen[d.stackID] = true
			stackIDs = append(stackIDs, d.stackID)
		}
	}
	if len(batch) == 0 {
		return Result{}, nil
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		return Result{}, domain.Unavailable("telemetry ingest is saturated; retry later", nil)
	}
	allowed, err := s.store.AssociatedStacks(ctx, agentID, stackIDs)
	if err != nil {
		return Result{}, err
	}
	ok := make(map[uuid.UUID]bool, len(allowed))
	for _, id := range allowed {
		ok[id] = true
	}
	var (
		logs   []LogRecord
		events []EventRecord
		live   = map[uuid.UUID][]Frame{}
		res    Result
	)
	for _, d := range batch {
		if !ok[d.stackID] {
			res.Dropped++
			continue
		}
		res.Accepted++
		live[d.stackID] = append(live[d.stackID], d.frame())
		switch {
		case d.line != nil:
			logs = append(logs, LogRecord{PodLogLine: *d.line, Kind: KindLine})
		case d.gap != nil:
			logs = append(logs, gapRecord(*d.gap))
		default:
			events = append(events, EventRecord{K8sEvent: *d.event})
		}
	}
	if res.Accepted == 0 {
		return res, nil
	}
	if err := s.store.InsertTelemetry(ctx, logs, events); err != nil {
		return Result{}, err
	}
	if s.pub != nil {
		for _, id := range stackIDs {
			if fs := live[id]; len(fs) > 0 {
				s.pub.Publish(id, fs)
			}
		}
	}
	return res, nil
}

// gapRecord stores a gap as a log row, so GET /logs shows where lines are
// missing (docs/telemetry.md#gaps).
func gapRecord(g domaintelemetry.LogGap) LogRecord {
	n, reason := g.DroppedCount, g.Reason
	line := domaintelemetry.PodLogLine{AgentID: g.AgentID, StackID: g.StackID, Namespace: g.Namespace, Pod: g.Pod, Container: g.Container,
		TS: g.SinceTS, Line: GapLine(n, reason)}
	return LogRecord{PodLogLine: line, Kind: KindGap, DroppedCount: &n, Reason: &reason}
}

// GapLine is the text of a stored gap row.
func GapLine(dropped int64, reason string) string {
	return "[log_gap] " + strconv.FormatInt(dropped, 10) + " line(s) dropped (" + reason + ")"
}

// Retention is the retention block of a history answer.
type Retention struct {
	RetentionCeilingSeconds   int64      `json:"retention_ceiling_seconds"`
	EffectiveRetentionSeconds int64      `json:"effective_retention_seconds"`
	OldestAvailableTS         *time.Time `json:"oldest_available_ts"`
	LongTermSinkHint          string     `json:"long_term_sink_hint"`
}

// Query is a history request: since (nil: the whole window) and limit
// (nil: DefaultLimit).
type Query struct {
	Since *time.Time
	Limit *int
}

// LogHistory answers GET /stacks/{id}/logs (0.9.1's PodLogHistoryResponse).
type LogHistory struct {
	Retention Retention   `json:"retention"`
	Lines     []LogRecord `json:"lines"`
}

// EventHistory answers GET /stacks/{id}/events (0.9.1's K8sEventHistoryResponse).
type EventHistory struct {
	Retention Retention     `json:"retention"`
	Events    []EventRecord `json:"events"`
}

// window checks the caller may read the stack and resolves the query:
// since clamped into the retained window, limit defaulted and capped.
func (s *Service) window(ctx context.Context, p identity.Principal, stackID uuid.UUID, q Query) (since time.Time, limit int, r Retention, err error) {
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return time.Time{}, 0, Retention{}, err
	}
	limit = DefaultLimit
	if q.Limit != nil {
		if *q.Limit < 1 {
			return time.Time{}, 0, Retention{}, domain.Invalid("limit must be at least 1")
		}
		limit = min(*q.Limit, MaxLimit)
	}
	keep := s.Effective()
	since = s.opts.Now().Add(-keep)
	if q.Since != nil && q.Since.After(since) {
		since = *q.Since
	}
	r = Retention{RetentionCeilingSeconds: int64(RetentionCeiling / time.Second),
		EffectiveRetentionSeconds: int64(keep / time.Second), LongTermSinkHint: LongTermSinkHint}
	return since, limit, r, nil
}

// Effective is the configured window capped at the ceiling.
func (s *Service) Effective() time.Duration {
	keep := s.opts.Retention()
	if keep <= 0 || keep > RetentionCeiling {
		keep = RetentionCeiling
	}
	return keep
}

// Logs returns the stack's retained log rows (lines and gaps), newest
// first; admin or the owning generator.
func (s *Service) Logs(ctx context.Context, p identity.Principal, stackID uuid.UUID, q Query) (LogHistory, error) {
	since, limit, r, err := s.window(ctx, p, stackID, q)
	if err != nil {
		return LogHistory{}, err
	}
	lines, err := s.store.ListLogs(ctx, stackID, since, limit)
	if err != nil {
		return LogHistory{}, err
	}
	if r.OldestAvailableTS, err = s.store.OldestLog(ctx, stackID, s.opts.Now().Add(-s.Effective())); err != nil {
		return LogHistory{}, err
	}
	if lines == nil {
		lines = []LogRecord{}
	}
	return LogHistory{Retention: r, Lines: lines}, nil
}

// Events returns the stack's retained Kubernetes events, newest first;
// admin or the owning generator.
func (s *Service) Events(ctx context.Context, p identity.Principal, stackID uuid.UUID, q Query) (EventHistory, error) {
	since, limit, r, err := s.window(ctx, p, stackID, q)
	if err != nil {
		return EventHistory{}, err
	}
	events, err := s.store.ListEvents(ctx, stackID, since, limit)
	if err != nil {
		return EventHistory{}, err
	}
	if r.OldestAvailableTS, err = s.store.OldestEvent(ctx, stackID, s.opts.Now().Add(-s.Effective())); err != nil {
		return EventHistory{}, err
	}
	if events == nil {
		events = []EventRecord{}
	}
	return EventHistory{Retention: r, Events: events}, nil
}

// CheckRead checks the caller may read the stack's telemetry (the live
// tail's gate): admin or the owning generator.
func (s *Service) CheckRead(ctx context.Context, p identity.Principal, stackID uuid.UUID) error {
	_, err := s.stacks.Get(ctx, p, stackID)
	return err
}
