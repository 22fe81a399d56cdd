// Package diagnosticstest holds an in-memory implementation of the
// diagnostics ports and the contract suite that both it and the PostgreSQL
// adapter must pass.
package diagnosticstest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth/deploymenthealthtest"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Memory implements RequestRepository and References with PostgreSQL's
// rules: a request needs an existing agent and object, claims and
// completions are guarded by the current status, one result per request.
// Its World (agents, stacks, objects) is healthtest's.
type Memory struct {
	*deploymenthealthtest.Memory
	mu       sync.Mutex
	requests map[uuid.UUID]diagnostic.Request
	results  map[uuid.UUID]diagnostic.Result // by request id
	// Now is the clock (expiry); time.Now when nil.
	Now func() time.Time
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{Memory: deploymenthealthtest.NewMemory(), requests: map[uuid.UUID]diagnostic.Request{},
		results: map[uuid.UUID]diagnostic.Result{}}
}

var (
	_ diagnostics.RequestRepository = (*Memory)(nil)
	_ diagnostics.References        = (*Memory)(nil)
)

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// CreateDiagnostic implements RequestRepository.
func (m *Memory) CreateDiagnostic(ctx context.Context, r *diagnostic.Request) error {
	if !m.known(ctx, r.AgentID, r.DeploymentObjectID) {
		return domain.Unprocessable("referenced entity does not exist")
	}
	if r.RequestedBy != nil && len(*r.RequestedBy) > 255 {
		return domain.Invalid("value too long")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r.ID, r.Status, r.CreatedAt, r.ClaimedAt, r.CompletedAt = uuid.New(), diagnostic.Pending, m.now(), nil, nil
	m.requests[r.ID] = *r
	return nil
}

// known stands for the foreign keys. It sees live rows only, where
// PostgreSQL also accepts soft-deleted ones; use cases check existence
// before creating, so the difference never shows through them.
func (m *Memory) known(ctx context.Context, agentID, objectID uuid.UUID) bool {
	a, _ := m.AgentExists(ctx, agentID)
	o, _ := m.DeploymentObjectExists(ctx, objectID)
	return a && o
}

// GetDiagnostic implements RequestRepository.
func (m *Memory) GetDiagnostic(_ context.Context, id uuid.UUID) (diagnostic.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return testsupport.Lookup(m.requests, id, domain.NotFoundCode("diagnostic_not_found", "Diagnostic request not found"))
}

// GetDiagnosticResult implements RequestRepository.
func (m *Memory) GetDiagnosticResult(_ context.Context, requestID uuid.UUID) (*diagnostic.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	res, ok := m.results[requestID]
	if !ok {
		return nil, nil
	}
	return &res, nil
}

// PendingDiagnostics implements RequestRepository.
func (m *Memory) PendingDiagnostics(_ context.Context, agentID uuid.UUID) ([]diagnostic.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []diagnostic.Request{}
	for _, r := range m.requests {
		if r.AgentID == agentID && r.Status == diagnostic.Pending && r.ExpiresAt.After(m.now()) {
			out = append(out, r)
		}
	}
	sortRequests(out, false)
	return out, nil
}

// RecentDiagnostics implements RequestRepository.
func (m *Memory) RecentDiagnostics(_ context.Context, agentID uuid.UUID, limit int) ([]diagnostic.Request, []diagnostic.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reqs := []diagnostic.Request{}
	for _, r := range m.requests {
		if r.AgentID == agentID {
			reqs = append(reqs, r)
		}
	}
	sortRequests(reqs, true)
	if len(reqs) > limit {
		reqs = reqs[:limit]
	}
	results := []diagnostic.Result{}
	for _, r := range reqs {
		if res, ok := m.results[r.ID]; ok {
			results = append(results, res)
		}
	}
	return reqs, results, nil
}

func sortRequests(rs []diagnostic.Request, newestFirst bool) {
	sort.Slice(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if newestFirst {
			a, b = b, a
		}
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.ID.String() < b.ID.String()
	})
}

// ClaimDiagnostic implements RequestRepository.
func (m *Memory) ClaimDiagnostic(_ context.Context, id uuid.UUID) (diagnostic.Request, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	if !ok || r.Status != diagnostic.Pending || !r.ExpiresAt.After(m.now()) {
		return diagnostic.Request{}, false, nil
	}
	now := m.now()
	r.Status, r.ClaimedAt = diagnostic.Claimed, &now
	m.requests[id] = r
	return r, true, nil
}

// CompleteDiagnostic implements RequestRepository.
func (m *Memory) CompleteDiagnostic(_ context.Context, res *diagnostic.Result, status string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[res.RequestID]
	if !ok || r.Status != diagnostic.Claimed {
		return false, nil
	}
	if status != diagnostic.Completed && status != diagnostic.Failed {
		return false, domain.Invalid("invalid value")
	}
	now := m.now()
	r.Status, r.CompletedAt = status, &now
	m.requests[r.ID] = r
	res.ID, res.CreatedAt = uuid.New(), now
	m.results[r.ID] = *res
	return true, nil
}

// Expire moves a request to expired (what housekeeping does).
func (m *Memory) Expire(id uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.requests[id]
	r.Status = diagnostic.Expired
	m.requests[id] = r
}
