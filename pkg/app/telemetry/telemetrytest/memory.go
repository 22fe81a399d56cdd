// Package telemetrytest holds an in-memory telemetry store (Memory) that
// keeps the tables' rules, and the contract every implementation meets
// (contract.go), run against Memory here and against PostgreSQL in
// pkg/adapters/postgres.
package telemetrytest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Memory is the model; its fixture methods fill it.
type Memory struct {
	mu     sync.Mutex
	stacks map[uuid.UUID]bool               // live stacks
	assoc  map[uuid.UUID]map[uuid.UUID]bool // agent → stacks
	logs   []telemetry.LogRecord
	events []telemetry.EventRecord
}

var (
	_ telemetry.Store              = (*Memory)(nil)
	_ housekeeping.TelemetryPurger = (*Memory)(nil)
)

// NewMemory returns an empty model.
func NewMemory() *Memory {
	return &Memory{stacks: map[uuid.UUID]bool{}, assoc: map[uuid.UUID]map[uuid.UUID]bool{}}
}

// Stack adds a live stack.
func (m *Memory) Stack(*testing.T) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.stacks[id] = true
	return id
}

// Agent adds an agent.
func (m *Memory) Agent(*testing.T) uuid.UUID { return uuid.New() }

// Associate associates the agent with the stack.
func (m *Memory) Associate(_ *testing.T, agentID, stackID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.assoc[agentID] == nil {
		m.assoc[agentID] = map[uuid.UUID]bool{}
	}
	m.assoc[agentID][stackID] = true
}

// DeleteStack soft-deletes the stack.
func (m *Memory) DeleteStack(_ *testing.T, stackID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stacks[stackID] = false
}

// Age moves the created_at of every row of the stack back by d.
func (m *Memory) Age(_ *testing.T, stackID uuid.UUID, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.logs {
		if m.logs[i].StackID == stackID {
			m.logs[i].CreatedAt = m.logs[i].CreatedAt.Add(-d)
		}
	}
	for i := range m.events {
		if m.events[i].StackID == stackID {
			m.events[i].CreatedAt = m.events[i].CreatedAt.Add(-d)
		}
	}
}

// Count returns the stack's log and event rows.
func (m *Memory) Count(_ *testing.T, stackID uuid.UUID) (logs, events int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.logs {
		if r.StackID == stackID {
			logs++
		}
	}
	for _, r := range m.events {
		if r.StackID == stackID {
			events++
		}
	}
	return logs, events
}

// AssociatedStacks keeps the live stacks among ids the agent is associated with.
func (m *Memory) AssociatedStacks(_ context.Context, agentID uuid.UUID, ids []uuid.UUID) ([]uuid.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uuid.UUID
	for _, id := range ids {
		if m.stacks[id] && m.assoc[agentID][id] && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// InsertTelemetry stores rows with a fresh id and created_at now.
func (m *Memory) InsertTelemetry(_ context.Context, logs []telemetry.LogRecord, events []telemetry.EventRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now().UTC()
	for _, r := range logs {
		r.ID, r.CreatedAt = uuid.New(), now
		m.logs = append(m.logs, r)
	}
	for _, r := range events {
		r.ID, r.CreatedAt = uuid.New(), now
		m.events = append(m.events, r)
	}
	return nil
}

// newestFirst orders by created_at descending, then by insertion order
// descending (the tables' serial tie-breaker).
func newestFirst[T any](rows []T, stackID uuid.UUID, since time.Time, limit int, key func(T) (uuid.UUID, time.Time)) []T {
	type ix struct {
		row T
		i   int
	}
	var sel []ix
	for i, r := range rows {
		if s, at := key(r); s == stackID && !at.Before(since) {
			sel = append(sel, ix{r, i})
		}
	}
	slices.SortFunc(sel, func(a, b ix) int {
		_, ta := key(a.row)
		_, tb := key(b.row)
		if c := tb.Compare(ta); c != 0 {
			return c
		}
		return cmp.Compare(b.i, a.i)
	})
	out := []T{}
	for i := 0; i < len(sel) && i < limit; i++ {
		out = append(out, sel[i].row)
	}
	return out
}

func logKey(r telemetry.LogRecord) (uuid.UUID, time.Time)     { return r.StackID, r.CreatedAt }
func eventKey(r telemetry.EventRecord) (uuid.UUID, time.Time) { return r.StackID, r.CreatedAt }

// ListLogs returns up to limit rows created at or after since, newest first.
func (m *Memory) ListLogs(_ context.Context, stackID uuid.UUID, since time.Time, limit int) ([]telemetry.LogRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return newestFirst(m.logs, stackID, since, limit, logKey), nil
}

// ListEvents is ListLogs for events.
func (m *Memory) ListEvents(_ context.Context, stackID uuid.UUID, since time.Time, limit int) ([]telemetry.EventRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return newestFirst(m.events, stackID, since, limit, eventKey), nil
}

func oldest[T any](rows []T, stackID uuid.UUID, since time.Time, key func(T) (uuid.UUID, time.Time)) *time.Time {
	var out *time.Time
	for _, r := range rows {
		if s, at := key(r); s == stackID && !at.Before(since) && (out == nil || at.Before(*out)) {
			out = &at
		}
	}
	return out
}

// OldestLog returns the oldest log row's created_at at or after since.
func (m *Memory) OldestLog(_ context.Context, stackID uuid.UUID, since time.Time) (*time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return oldest(m.logs, stackID, since, logKey), nil
}

// OldestEvent is OldestLog for events.
func (m *Memory) OldestEvent(_ context.Context, stackID uuid.UUID, since time.Time) (*time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return oldest(m.events, stackID, since, eventKey), nil
}

// PurgeTelemetry deletes up to batch rows of each table created before cutoff.
func (m *Memory) PurgeTelemetry(_ context.Context, cutoff time.Time, batch int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n1, n2 int
	m.logs, n1 = deleteUpTo(m.logs, batch, func(r telemetry.LogRecord) bool { return r.CreatedAt.Before(cutoff) })
	m.events, n2 = deleteUpTo(m.events, batch, func(r telemetry.EventRecord) bool { return r.CreatedAt.Before(cutoff) })
	return n1 + n2, nil
}

func deleteUpTo[T any](rows []T, batch int, del func(T) bool) ([]T, int) {
	n := 0
	out := rows[:0]
	for _, r := range rows {
		if n < batch && del(r) {
			n++
			continue
		}
		out = append(out, r)
	}
	return out, n
}

// CapTelemetry deletes, per stack and table, the oldest rows beyond
// perStack, at most batch per stack and table.
func (m *Memory) CapTelemetry(_ context.Context, perStack, batch int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n1, n2 int
	m.logs, n1 = capRows(m.logs, perStack, batch, logKey)
	m.events, n2 = capRows(m.events, perStack, batch, eventKey)
	return n1 + n2, nil
}

func capRows[T any](rows []T, perStack, batch int, key func(T) (uuid.UUID, time.Time)) ([]T, int) {
	perStackRows := map[uuid.UUID][]int{}
	for i, r := range rows {
		s, _ := key(r)
		perStackRows[s] = append(perStackRows[s], i)
	}
	drop := map[int]bool{}
	for _, idx := range perStackRows {
		if len(idx) <= perStack {
			continue
		}
		// Oldest first: created_at, then insertion order.
		slices.SortStableFunc(idx, func(a, b int) int {
			_, ta := key(rows[a])
			_, tb := key(rows[b])
			return ta.Compare(tb)
		})
		for _, i := range idx[:min(len(idx)-perStack, batch)] {
			drop[i] = true
		}
	}
	out := make([]T, 0, len(rows)-len(drop))
	for i, r := range rows {
		if !drop[i] {
			out = append(out, r)
		}
	}
	return out, len(drop)
}

// AnyStack is a telemetry.StackReader that lets everyone read every stack.
type AnyStack struct{}

// Get returns a stack with the id.
func (AnyStack) Get(_ context.Context, _ identity.Principal, id uuid.UUID) (stack.Stack, error) {
	return stack.Stack{ID: id}, nil
}
