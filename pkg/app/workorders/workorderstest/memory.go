// Package workorderstest holds what tests of the work-order use cases
// share: an in-memory implementation of their order ports (Memory) and the
// contract every implementation must meet (contract.go), run against
// Memory here and against PostgreSQL in pkg/adapters/postgres.
package workorderstest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

type agentRec struct {
	active      bool
	labels      []string
	annotations map[string]string
}

// Memory implements OrderRepository, ClaimRepository, LogRepository,
// AgentDirectory and RetryRepository in memory, with the database's rules:
// eligibility by target, shared label or shared annotation pair for a live
// ACTIVE agent; claims only of PENDING orders; retries due after
// 2^n × backoff_seconds by the wall clock; InTx is all-or-nothing.
type Memory struct {
	mu        sync.Mutex
	orders    map[uuid.UUID]workorder.WorkOrder
	targeting map[uuid.UUID]workorder.Targeting
	logs      map[uuid.UUID]workorder.LogEntry
	agents    map[uuid.UUID]agentRec
	schedules map[uuid.UUID]workorder.Schedule
	runs      map[uuid.UUID][]workorder.Run
	clock     testsupport.Clock
	journaltest.Recorder
}

var (
	_ workorders.OrderRepository    = (*Memory)(nil)
	_ workorders.ClaimRepository    = (*Memory)(nil)
	_ workorders.LogRepository      = (*Memory)(nil)
	_ workorders.AgentDirectory     = (*Memory)(nil)
	_ workorders.RetryRepository    = (*Memory)(nil)
	_ workorders.ScheduleRepository = (*Memory)(nil)
	_ workorders.RunRepository      = (*Memory)(nil)
)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{orders: map[uuid.UUID]workorder.WorkOrder{}, targeting: map[uuid.UUID]workorder.Targeting{},
		logs: map[uuid.UUID]workorder.LogEntry{}, agents: map[uuid.UUID]agentRec{},
		schedules: map[uuid.UUID]workorder.Schedule{}, runs: map[uuid.UUID][]workorder.Run{}}
}

// AddAgent records a live agent with labels and annotations.
func (m *Memory) AddAgent(active bool, labels []string, annotations map[string]string) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.agents[id] = agentRec{active: active, labels: labels, annotations: annotations}
	return id
}

// InTx runs fn; when fn fails every change it made is undone.
func (m *Memory) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return testsupport.SnapshotTx(ctx, &m.mu, func() func() {
		orders, targeting, logs, rewind := maps.Clone(m.orders), maps.Clone(m.targeting), maps.Clone(m.logs), m.Mark()
		schedules, runs := maps.Clone(m.schedules), maps.Clone(m.runs)
		return func() {
			m.orders, m.targeting, m.logs = orders, targeting, logs
			rewind()
			m.schedules, m.runs = schedules, runs
		}
	}, fn)
}

var errNotFound = domain.NotFoundCode("work_order_not_found", "Work order not found")

// CreateWorkOrder inserts w PENDING with its targeting; unknown agents are
// dropped from the targets.
func (m *Memory) CreateWorkOrder(_ context.Context, w *workorder.WorkOrder, t workorder.Targeting) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case w.BackoffSeconds <= 0, w.ClaimTimeoutSeconds <= 0, w.MaxRetries < 0:
		return domain.Invalid("invalid value")
	case len(w.WorkType) > workorder.MaxWorkTypeLen:
		return domain.Invalid("value too long")
	}
	if w.ScheduleID != nil {
		if _, ok := m.schedules[*w.ScheduleID]; !ok {
			return domain.Unprocessable("referenced entity does not exist")
		}
	}
	n := *w
	n.ID, n.Status, n.CreatedAt = uuid.New(), workorder.StatusPending, m.clock.Now()
	n.UpdatedAt = n.CreatedAt
	kept := workorder.Targeting{Labels: t.Labels, Annotations: t.Annotations}
	for _, id := range t.AgentIDs {
		if _, ok := m.agents[id]; ok {
			kept.AgentIDs = append(kept.AgentIDs, id)
		}
	}
	m.orders[n.ID], m.targeting[n.ID] = n, kept
	*w = n
	return nil
}

// LiveAgents returns which of ids name live agents.
func (m *Memory) LiveAgents(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[uuid.UUID]bool{}
	for _, id := range ids {
		if _, ok := m.agents[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

// AgentLive reports whether id names a live agent.
func (m *Memory) AgentLive(_ context.Context, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.agents[id]
	return ok, nil
}

func newestFirst(a, b workorder.WorkOrder) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return strings.Compare(a.ID.String(), b.ID.String())
}

// ListWorkOrders returns active orders matching f, newest first.
func (m *Memory) ListWorkOrders(_ context.Context, f workorders.ListFilter) ([]workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []workorder.WorkOrder{}
	for _, w := range m.orders {
		if (f.Status == "" || w.Status == f.Status) && (f.WorkType == "" || w.WorkType == f.WorkType) &&
			(f.ScheduleID == nil || (w.ScheduleID != nil && *w.ScheduleID == *f.ScheduleID)) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, newestFirst)
	return out, nil
}

// GetWorkOrder returns an active order.
func (m *Memory) GetWorkOrder(_ context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return testsupport.Lookup(m.orders, id, errNotFound)
}

// LockWorkOrder is GetWorkOrder (one caller at a time holds the mutex).
func (m *Memory) LockWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	return m.GetWorkOrder(ctx, id)
}

// DeleteWorkOrder removes an active order.
func (m *Memory) DeleteWorkOrder(_ context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.orders[id]
	if !ok {
		return workorder.WorkOrder{}, errNotFound
	}
	delete(m.orders, id)
	delete(m.targeting, id)
	return w, nil
}

func (m *Memory) eligible(id, agentID uuid.UUID) bool {
	a, ok := m.agents[agentID]
	if !ok || !a.active {
		return false
	}
	t := m.targeting[id]
	if slices.Contains(t.AgentIDs, agentID) {
		return true
	}
	for _, l := range t.Labels {
		if slices.Contains(a.labels, l) {
			return true
		}
	}
	for k, v := range t.Annotations {
		if av, ok := a.annotations[k]; ok && av == v {
			return true
		}
	}
	return false
}

// PendingForAgent lists the PENDING orders the agent may claim, oldest first.
func (m *Memory) PendingForAgent(_ context.Context, agentID uuid.UUID, workType string) ([]workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []workorder.WorkOrder{}
	for id, w := range m.orders {
		if w.Status == workorder.StatusPending && (workType == "" || w.WorkType == workType) && m.eligible(id, agentID) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b workorder.WorkOrder) int { return newestFirst(b, a) })
	return out, nil
}

// ClaimWorkOrder moves a PENDING order the agent is eligible for to CLAIMED.
func (m *Memory) ClaimWorkOrder(_ context.Context, id, agentID uuid.UUID) (workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.orders[id]
	if !ok || w.Status != workorder.StatusPending || !m.eligible(id, agentID) {
		return workorder.WorkOrder{}, domain.NotFoundCode("work_order_not_claimable", "Work order not found or not claimable")
	}
	now := m.clock.Now()
	a := agentID
	w.Status, w.ClaimedBy, w.ClaimedAt, w.UpdatedAt = workorder.StatusClaimed, &a, &now, now
	w.ProgressMessage, w.ProgressPercent, w.ProgressUpdatedAt = nil, nil, nil
	m.orders[id] = w
	return w, nil
}

// ReportProgress stores progress on an order CLAIMED by agentID.
func (m *Memory) ReportProgress(_ context.Context, id, agentID uuid.UUID, message *string, percent *int) (workorder.WorkOrder, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.orders[id]
	if !ok {
		return workorder.WorkOrder{}, false, errNotFound
	}
	if w.Status != workorder.StatusClaimed || w.ClaimedBy == nil || *w.ClaimedBy != agentID {
		return w, false, nil
	}
	if percent != nil && (*percent < 0 || *percent > 100) {
		return workorder.WorkOrder{}, false, domain.Invalid("invalid value")
	}
	now := m.clock.Now()
	w.ProgressMessage, w.ProgressPercent, w.ProgressUpdatedAt, w.UpdatedAt = message, percent, &now, now
	m.orders[id] = w
	return w, true, nil
}

// ScheduleRetry moves an order to RETRY_PENDING, due after 2^n × backoff.
func (m *Memory) ScheduleRetry(_ context.Context, id uuid.UUID, n int, lastError string) (workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.orders[id]
	if !ok {
		return workorder.WorkOrder{}, errNotFound
	}
	if n < 0 || n > w.MaxRetries {
		return workorder.WorkOrder{}, domain.Invalid("invalid value")
	}
	now := m.clock.Now()
	due := now.Add(workorder.Backoff(w.BackoffSeconds, n))
	w.Status, w.RetryCount, w.NextRetryAfter, w.ClaimedBy, w.ClaimedAt = workorder.StatusRetryPending, n, &due, nil, nil
	w.LastError, w.LastErrorAt, w.UpdatedAt = &lastError, &now, now
	w.ProgressMessage, w.ProgressPercent, w.ProgressUpdatedAt = nil, nil, nil
	m.orders[id] = w
	return w, nil
}

// MoveToLog removes the active order and writes its log entry.
func (m *Memory) MoveToLog(_ context.Context, id uuid.UUID, success bool, message *string, retries int) (workorder.LogEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.orders[id]
	if !ok {
		return workorder.LogEntry{}, errNotFound
	}
	delete(m.orders, id)
	delete(m.targeting, id)
	l := workorder.LogEntry{ID: w.ID, WorkType: w.WorkType, CreatedAt: w.CreatedAt, ClaimedAt: w.ClaimedAt,
		CompletedAt: m.clock.Now(), ClaimedBy: w.ClaimedBy, Success: success, RetriesAttempted: retries,
		ResultMessage: message, YAMLContent: w.YAMLContent, ScheduleID: w.ScheduleID, ScheduledAt: w.ScheduledAt}
	m.logs[id] = l
	return l, nil
}

// ListLog returns log entries matching f, newest first.
func (m *Memory) ListLog(_ context.Context, f workorders.LogFilter) ([]workorder.LogEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []workorder.LogEntry{}
	for _, l := range m.logs {
		if (f.WorkType == "" || l.WorkType == f.WorkType) && (f.Success == nil || l.Success == *f.Success) &&
			(f.AgentID == nil || (l.ClaimedBy != nil && *l.ClaimedBy == *f.AgentID)) &&
			(f.ScheduleID == nil || (l.ScheduleID != nil && *l.ScheduleID == *f.ScheduleID)) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b workorder.LogEntry) int {
		if c := b.CompletedAt.Compare(a.CompletedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	if f.Limit != nil && *f.Limit < len(out) {
		out = out[:*f.Limit]
	}
	return out, nil
}

// GetLogEntry returns one log entry.
func (m *Memory) GetLogEntry(_ context.Context, id uuid.UUID) (workorder.LogEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return testsupport.Lookup(m.logs, id, domain.NotFoundCode("work_order_log_entry_not_found", "Work order log entry not found"))
}

// ReleaseRetry moves order id back to PENDING if retry n is due.
func (m *Memory) ReleaseRetry(_ context.Context, id uuid.UUID, n int) (bool, *time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.orders[id]
	if !ok || w.Status != workorder.StatusRetryPending || w.RetryCount != n {
		return false, nil, nil
	}
	if w.NextRetryAfter.After(time.Now()) {
		due := *w.NextRetryAfter
		return false, &due, nil
	}
	w.Status, w.NextRetryAfter = workorder.StatusPending, nil
	m.orders[id] = w
	return true, nil, nil
}

// ReleaseDueRetries releases up to limit due RETRY_PENDING orders.
func (m *Memory) ReleaseDueRetries(_ context.Context, limit int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, w := range m.orders {
		if n == limit {
			break
		}
		if w.Status == workorder.StatusRetryPending && !w.NextRetryAfter.After(time.Now()) {
			w.Status, w.NextRetryAfter = workorder.StatusPending, nil
			m.orders[id] = w
			n++
		}
	}
	return n, nil
}

// LockStaleClaims returns up to limit claims older than their timeout,
// counted from the claim or the latest progress report.
func (m *Memory) LockStaleClaims(_ context.Context, limit int) ([]workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []workorder.WorkOrder{}
	for _, w := range m.orders {
		if w.Status != workorder.StatusClaimed {
			continue
		}
		from := *w.ClaimedAt
		if w.ProgressUpdatedAt != nil && w.ProgressUpdatedAt.After(from) {
			from = *w.ProgressUpdatedAt
		}
		if from.Add(time.Duration(w.ClaimTimeoutSeconds) * time.Second).Before(time.Now()) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b workorder.WorkOrder) int { return a.ClaimedAt.Compare(*b.ClaimedAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

var errScheduleNotFound = domain.NotFoundCode("schedule_not_found", "Schedule not found")

func (m *Memory) checkSchedule(sc workorder.Schedule) error {
	switch {
	case sc.BackoffSeconds <= 0, sc.ClaimTimeoutSeconds <= 0, sc.MaxRetries < 0:
		return domain.Invalid("invalid value")
	case sc.ConcurrencyPolicy != workorder.PolicyForbid && sc.ConcurrencyPolicy != workorder.PolicyAllow &&
		sc.ConcurrencyPolicy != workorder.PolicyReplace:
		return domain.Invalid("invalid value")
	}
	for _, o := range m.schedules {
		if o.Name == sc.Name && o.ID != sc.ID {
			return domain.Conflict("already exists")
		}
	}
	return nil
}

// CreateSchedule inserts sc; names are unique.
func (m *Memory) CreateSchedule(_ context.Context, sc *workorder.Schedule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := *sc
	n.ID, n.NextRunAt = uuid.New(), nil
	if err := m.checkSchedule(n); err != nil {
		return err
	}
	n.CreatedAt = m.clock.Now()
	n.UpdatedAt = n.CreatedAt
	n.Targeting = n.Targeting.Normalize()
	m.schedules[n.ID] = n
	*sc = n
	return nil
}

// ListSchedules returns every schedule by name.
func (m *Memory) ListSchedules(_ context.Context) ([]workorder.Schedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []workorder.Schedule{}
	for _, sc := range m.schedules {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(a, b workorder.Schedule) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GetSchedule returns one schedule.
func (m *Memory) GetSchedule(_ context.Context, id uuid.UUID) (workorder.Schedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return testsupport.Lookup(m.schedules, id, errScheduleNotFound)
}

// LockSchedule is GetSchedule (the mutex serialises callers).
func (m *Memory) LockSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error) {
	return m.GetSchedule(ctx, id)
}

// SaveSchedule writes back every field of sc.
func (m *Memory) SaveSchedule(_ context.Context, sc *workorder.Schedule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.schedules[sc.ID]
	if !ok {
		return errScheduleNotFound
	}
	n := *sc
	if err := m.checkSchedule(n); err != nil {
		return err
	}
	n.CreatedAt, n.UpdatedAt, n.LastScheduledAt, n.NextRunAt = cur.CreatedAt, m.clock.Now(), cur.LastScheduledAt, nil
	n.Targeting = n.Targeting.Normalize()
	m.schedules[n.ID] = n
	*sc = n
	return nil
}

// DeleteSchedule deletes a schedule and its runs; its orders stay, no
// longer linked to it.
func (m *Memory) DeleteSchedule(_ context.Context, id uuid.UUID) (workorder.Schedule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.schedules[id]
	if !ok {
		return workorder.Schedule{}, errScheduleNotFound
	}
	delete(m.schedules, id)
	delete(m.runs, id)
	for oid, w := range m.orders {
		if w.ScheduleID != nil && *w.ScheduleID == id {
			w.ScheduleID = nil
			m.orders[oid] = w
		}
	}
	return sc, nil
}

// ListScheduleRuns returns up to limit runs, newest window first.
func (m *Memory) ListScheduleRuns(_ context.Context, id uuid.UUID, limit int) ([]workorder.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.runs[id])
	slices.SortFunc(out, func(a, b workorder.Run) int { return b.ScheduledAt.Compare(a.ScheduledAt) })
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []workorder.Run{}
	}
	return out, nil
}

// OpenScheduleOrders returns the schedule's active orders, oldest first.
func (m *Memory) OpenScheduleOrders(_ context.Context, id uuid.UUID) ([]workorder.WorkOrder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []workorder.WorkOrder{}
	for _, w := range m.orders {
		if w.ScheduleID != nil && *w.ScheduleID == id {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b workorder.WorkOrder) int { return newestFirst(b, a) })
	return out, nil
}

// InsertScheduleRun records a window once; false when already recorded.
func (m *Memory) InsertScheduleRun(_ context.Context, r *workorder.Run) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.schedules[r.ScheduleID]; !ok {
		return false, domain.Unprocessable("referenced entity does not exist")
	}
	for _, x := range m.runs[r.ScheduleID] {
		if x.ScheduledAt.Equal(r.ScheduledAt) {
			return false, nil
		}
	}
	n := *r
	n.ID, n.CreatedAt = uuid.New(), m.clock.Now()
	m.runs[r.ScheduleID] = append(slices.Clone(m.runs[r.ScheduleID]), n)
	*r = n
	return true, nil
}

// MarkScheduled moves last_scheduled_at forward to at, never back.
func (m *Memory) MarkScheduled(_ context.Context, id uuid.UUID, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.schedules[id]
	if !ok {
		return nil
	}
	if sc.LastScheduledAt == nil || at.After(*sc.LastScheduledAt) {
		sc.LastScheduledAt = &at
		m.schedules[id] = sc
	}
	return nil
}
