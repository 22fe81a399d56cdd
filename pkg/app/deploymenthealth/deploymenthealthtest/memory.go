// Package deploymenthealthtest holds an in-memory implementation of the
// deployment-health ports and the contract suite that both it and the
// PostgreSQL adapter must pass.
package deploymenthealthtest

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/health"
)

type object struct {
	stack   uuid.UUID
	seq     int64
	deleted bool
}

type pair struct{ agent, object uuid.UUID }

// Memory implements RecordRepository, References and ReportPermission over
// maps, with the rules PostgreSQL enforces: a record needs an existing
// agent and deployment object (foreign keys, deleted rows included), one
// record per (agent, object), live rows only for existence checks. It is
// also the World the contract builds its fixtures in.
type Memory struct {
	mu      sync.Mutex
	agents  map[uuid.UUID]bool // id → live
	stacks  map[uuid.UUID]bool
	objects map[uuid.UUID]*object
	seq     int64
	records map[pair]health.Record
	allowed map[pair]bool
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{agents: map[uuid.UUID]bool{}, stacks: map[uuid.UUID]bool{}, objects: map[uuid.UUID]*object{},
		records: map[pair]health.Record{}, allowed: map[pair]bool{}}
}

var (
	_ deploymenthealth.RecordRepository = (*Memory)(nil)
	_ deploymenthealth.References       = (*Memory)(nil)
	_ deploymenthealth.ReportPermission = (*Memory)(nil)
	_ World                             = (*Memory)(nil)
)

// Agent adds a live agent.
func (m *Memory) Agent(*testing.T) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.agents[id] = true
	return id
}

// Stack adds a live stack.
func (m *Memory) Stack(*testing.T) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.stacks[id] = true
	return id
}

// Object adds a live deployment object to the stack, after its others.
func (m *Memory) Object(_ *testing.T, stackID uuid.UUID) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	id := uuid.New()
	m.objects[id] = &object{stack: stackID, seq: m.seq}
	return id
}

// DeleteObject soft-deletes an object.
func (m *Memory) DeleteObject(_ *testing.T, id uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objects[id].deleted = true
}

// Allow lets the agent report on the object (AgentMayReport).
func (m *Memory) Allow(agentID, objectID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.allowed[pair{agentID, objectID}] = true
}

// UpsertHealth implements RecordRepository.
func (m *Memory) UpsertHealth(_ context.Context, r health.Record) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.agents[r.AgentID]; !ok {
		return "", domain.Unprocessable("referenced entity does not exist")
	}
	if _, ok := m.objects[r.DeploymentObjectID]; !ok {
		return "", domain.Unprocessable("referenced entity does not exist")
	}
	if len(r.Summary) == 0 {
		r.Summary = json.RawMessage("null")
	}
	k := pair{r.AgentID, r.DeploymentObjectID}
	now := time.Now()
	prev, ok := m.records[k]
	if ok {
		r.ID, r.CreatedAt = prev.ID, prev.CreatedAt
	} else {
		r.ID, r.CreatedAt = uuid.New(), now
	}
	r.UpdatedAt = now
	m.records[k] = r
	return prev.Status, nil
}

// ObjectHealth implements RecordRepository.
func (m *Memory) ObjectHealth(_ context.Context, objectID uuid.UUID) ([]health.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []health.Record{}
	for k, r := range m.records {
		if k.object == objectID {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CheckedAt.Equal(out[j].CheckedAt) {
			return out[i].CheckedAt.After(out[j].CheckedAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// StackHealth implements RecordRepository.
func (m *Memory) StackHealth(_ context.Context, stackID uuid.UUID) ([]health.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []health.Record{}
	for k, r := range m.records {
		if o := m.objects[k.object]; o.stack == stackID && !o.deleted {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		si, sj := m.objects[out[i].DeploymentObjectID].seq, m.objects[out[j].DeploymentObjectID].seq
		if si != sj {
			return si < sj
		}
		return out[i].AgentID.String() < out[j].AgentID.String()
	})
	return out, nil
}

// DeploymentObjectExists implements References.
func (m *Memory) DeploymentObjectExists(_ context.Context, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[id]
	return ok && !o.deleted, nil
}

// StackExists implements References.
func (m *Memory) StackExists(_ context.Context, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stacks[id], nil
}

// AgentExists reports whether a live agent has id (diagnostics' check).
func (m *Memory) AgentExists(_ context.Context, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.agents[id], nil
}

// AgentMayReport implements ReportPermission: only pairs Allow named.
func (m *Memory) AgentMayReport(_ context.Context, agentID, objectID uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.allowed[pair{agentID, objectID}], nil
}
