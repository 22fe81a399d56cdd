// Package targetstatetest holds an in-memory SnapshotReader (Memory) that
// applies the association and target-state rules
// (docs/compatibility.md#target-state, #deletion-markers) to a small model
// of agents, stacks and objects, and the contract every SnapshotReader
// meets (contract.go), run against Memory here and against PostgreSQL in
// pkg/adapters/postgres.
package targetstatetest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

type agentRec struct {
	status      string
	createdAt   time.Time
	labels      []string
	annotations map[string]string
}

type stackRec struct {
	deletedAt   *time.Time
	labels      []string
	annotations map[string]string
}

// Memory is the model; build it with the Fixtures methods.
type Memory struct {
	mu      sync.Mutex
	agents  map[uuid.UUID]agentRec
	stacks  map[uuid.UUID]stackRec
	targets map[[2]uuid.UUID]bool
	objects []stack.DeploymentObject
	acks    map[[2]uuid.UUID]bool
	seq     int64 // the deployment objects' sequence
	clock   testsupport.Clock
}

var _ targetstate.SnapshotReader = (*Memory)(nil)

// NewMemory returns an empty model.
func NewMemory() *Memory {
	return &Memory{agents: map[uuid.UUID]agentRec{}, stacks: map[uuid.UUID]stackRec{},
		targets: map[[2]uuid.UUID]bool{}, acks: map[[2]uuid.UUID]bool{}}
}

// Agent adds an agent.
func (m *Memory) Agent(_ *testing.T, active bool, labels []string, annotations map[string]string) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	status := agent.StatusActive
	if !active {
		status = agent.StatusInactive
	}
	id := uuid.New()
	m.agents[id] = agentRec{status: status, createdAt: m.clock.Now(), labels: labels, annotations: annotations}
	return id
}

// Stack adds a live stack.
func (m *Memory) Stack(_ *testing.T, labels []string, annotations map[string]string) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.stacks[id] = stackRec{labels: labels, annotations: annotations}
	return id
}

// Target makes the agent target the stack.
func (m *Memory) Target(_ *testing.T, agentID, stackID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets[[2]uuid.UUID{agentID, stackID}] = true
}

func (m *Memory) insert(stackID uuid.UUID, yaml string, marker bool) stack.DeploymentObject {
	now := m.clock.Now()
	m.seq++
	d := stack.DeploymentObject{ID: uuid.New(), CreatedAt: now, UpdatedAt: now, SubmittedAt: now, SequenceID: m.seq,
		StackID: stackID, YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml), IsDeletionMarker: marker}
	m.objects = append(m.objects, d)
	return d
}

// Object adds a deployment object to a live stack.
func (m *Memory) Object(_ *testing.T, stackID uuid.UUID, yaml string) stack.DeploymentObject {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.insert(stackID, yaml, false)
}

// DeleteStack soft-deletes a stack and its objects and adds its marker.
func (m *Memory) DeleteStack(_ *testing.T, stackID uuid.UUID) stack.DeploymentObject {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	s := m.stacks[stackID]
	s.deletedAt = &now
	m.stacks[stackID] = s
	for i, o := range m.objects {
		if o.StackID == stackID && o.DeletedAt == nil {
			m.objects[i].DeletedAt = &now
		}
	}
	return m.insert(stackID, "", true)
}

// Ack records a SUCCESS event of the agent on the object.
func (m *Memory) Ack(_ *testing.T, agentID, objectID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acks[[2]uuid.UUID{agentID, objectID}] = true
}

func (m *Memory) associated(a agentRec, agentID, stackID uuid.UUID) bool {
	if m.targets[[2]uuid.UUID{agentID, stackID}] {
		return true
	}
	s := m.stacks[stackID]
	for _, l := range s.labels {
		if slices.Contains(a.labels, l) {
			return true
		}
	}
	for k, v := range s.annotations {
		if av, ok := a.annotations[k]; ok && av == v {
			return true
		}
	}
	return false
}

func (m *Memory) latest(stackID uuid.UUID) (stack.DeploymentObject, bool) {
	var out stack.DeploymentObject
	found := false
	for _, o := range m.objects {
		if o.StackID == stackID && o.DeletedAt == nil && (!found || o.SequenceID > out.SequenceID) {
			out, found = o, true
		}
	}
	return out, found
}

// AgentState computes the agent's snapshot from the model.
func (m *Memory) AgentState(_ context.Context, agentID uuid.UUID) (targetstate.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[agentID]
	if !ok {
		return targetstate.Snapshot{}, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	snap := targetstate.Snapshot{Status: a.status, Labels: slices.Clone(a.labels), Objects: []targetstate.Object{}}
	for k := range a.annotations {
		snap.AnnotationKeys = append(snap.AnnotationKeys, k)
	}
	for id, s := range m.stacks {
		if !m.associated(a, agentID, id) {
			continue
		}
		if s.deletedAt == nil {
			snap.Stacks = append(snap.Stacks, id)
		}
		if a.status != agent.StatusActive {
			continue
		}
		if o, ok := m.latest(id); ok && (s.deletedAt == nil || (o.IsDeletionMarker && !s.deletedAt.Before(a.createdAt))) {
			snap.Objects = append(snap.Objects, targetstate.Object{DeploymentObject: o, Acked: m.acks[[2]uuid.UUID{agentID, o.ID}]})
		}
	}
	slices.SortFunc(snap.Objects, func(x, y targetstate.Object) int { return int(x.SequenceID - y.SequenceID) })
	return snap, nil
}

// StackHead returns the latest live object of a live stack.
func (m *Memory) StackHead(_ context.Context, stackID uuid.UUID) (stack.DeploymentObject, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stacks[stackID]
	if !ok || s.deletedAt != nil {
		return stack.DeploymentObject{}, false, nil
	}
	o, ok := m.latest(stackID)
	return o, ok, nil
}
