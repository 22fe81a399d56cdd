// Package housekeepingtest holds an in-memory implementation of the
// housekeeping ports over a model of audit entries and diagnostic requests
// (Memory), and the contract every implementation meets (contract.go), run
// against Memory here and against PostgreSQL in pkg/adapters/postgres.
package housekeepingtest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
)

type request struct {
	status               string
	createdAt, expiresAt time.Time
	completedAt          *time.Time
}

// Memory is the model; Fixtures methods fill it.
type Memory struct {
	mu       sync.Mutex
	audits   map[uuid.UUID]time.Time // id → created_at
	requests map[uuid.UUID]request
}

var (
	_ housekeeping.DiagnosticsExpirer = (*Memory)(nil)
	_ housekeeping.AuditPurger        = (*Memory)(nil)
)

// NewMemory returns an empty model.
func NewMemory() *Memory {
	return &Memory{audits: map[uuid.UUID]time.Time{}, requests: map[uuid.UUID]request{}}
}

// AuditEntry adds an audit entry created at createdAt.
func (m *Memory) AuditEntry(_ *testing.T, createdAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audits[uuid.New()] = createdAt
}

// AuditCount returns how many audit entries remain.
func (m *Memory) AuditCount(*testing.T) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.audits)
}

// DiagnosticRequest adds a request.
func (m *Memory) DiagnosticRequest(_ *testing.T, status string, createdAt, expiresAt time.Time, completedAt *time.Time) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.requests[id] = request{status: status, createdAt: createdAt, expiresAt: expiresAt, completedAt: completedAt}
	return id
}

// DiagnosticStatus returns a request's status; ok is false once deleted.
func (m *Memory) DiagnosticStatus(_ *testing.T, id uuid.UUID) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	return r.status, ok
}

// ExpireDiagnostics expires overdue pending and claimed requests and
// deletes finished ones older than maxAge (by completion, else expiry,
// else creation).
func (m *Memory) ExpireDiagnostics(_ context.Context, maxAge time.Duration) (expired, deleted int, present bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for id, r := range m.requests {
		if (r.status == "pending" || r.status == "claimed") && r.expiresAt.Before(now) {
			r.status = "expired"
			m.requests[id] = r
			expired++
		}
	}
	for id, r := range m.requests {
		if !slices.Contains([]string{"completed", "expired", "failed"}, r.status) {
			continue
		}
		at := r.expiresAt
		if r.completedAt != nil {
			at = *r.completedAt
		}
		if at.Before(now.Add(-maxAge)) {
			delete(m.requests, id)
			deleted++
		}
	}
	return expired, deleted, true, nil
}

// PurgeAuditLogs deletes up to batch entries created before cutoff,
// oldest first.
func (m *Memory) PurgeAuditLogs(_ context.Context, cutoff time.Time, batch int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var old []uuid.UUID
	for id, at := range m.audits {
		if at.Before(cutoff) {
			old = append(old, id)
		}
	}
	slices.SortFunc(old, func(a, b uuid.UUID) int { return m.audits[a].Compare(m.audits[b]) })
	if len(old) > batch {
		old = old[:batch]
	}
	for _, id := range old {
		delete(m.audits, id)
	}
	return len(old), nil
}
