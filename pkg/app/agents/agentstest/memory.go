// Package agentstest holds in-memory implementations of the agent use
// cases' ports and the contract every implementation must meet, run against
// both the memory one and PostgreSQL (pkg/adapters/postgres).
package agentstest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

var (
	_ agents.AgentRepository  = (*Memory)(nil)
	_ agents.TargetRepository = (*Memory)(nil)
	_ agents.EventRepository  = (*Memory)(nil)
	_ agents.ObjectReader     = (*Memory)(nil)
	_ agents.Registrar        = (*Memory)(nil)
	_ agents.GeneratorChecker = (*Memory)(nil)
)

// Memory implements the agent ports in memory with the tables' rules: a
// live agent's (name, cluster_name) is unique, deleted agents are invisible,
// a target needs a live stack and is unique per (agent, stack), an event
// needs an existing deployment object. Stacks and objects are seeded with
// AddStack and AddObject. Association is by explicit target only (stack
// labels are not modelled here; the PostgreSQL contract covers them).
type Memory struct {
	mu      sync.Mutex
	now     func() time.Time
	agents  []agent.Agent
	targets []agent.Target
	events  []agent.Event
	stacks  map[uuid.UUID]stack.Stack
	objects map[uuid.UUID]stack.DeploymentObject
	// generators are the live generators (AddGenerator); registered holds
	// the (agent, generator) registrations, the system generator's made by
	// CreateAgent as the table's insert does.
	generators map[uuid.UUID]bool
	registered map[[2]uuid.UUID]bool
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{now: time.Now, stacks: map[uuid.UUID]stack.Stack{}, objects: map[uuid.UUID]stack.DeploymentObject{},
		generators: map[uuid.UUID]bool{generator.SystemID: true}, registered: map[[2]uuid.UUID]bool{}}
}

// AddGenerator seeds a live generator.
func (m *Memory) AddGenerator() uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.generators[id] = true
	return id
}

func (m *Memory) GeneratorExists(_ context.Context, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generators[id], nil
}

func (m *Memory) Register(_ context.Context, agentID, generatorID uuid.UUID) (agent.Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := [2]uuid.UUID{agentID, generatorID}
	if m.registered[key] {
		return agent.Registration{}, errConflict
	}
	m.registered[key] = true
	return agent.Registration{ID: uuid.New(), AgentID: agentID, GeneratorID: generatorID, RegisteredAt: m.now()}, nil
}

// ListRegisteredAgents lists the live agents registered with generatorID.
func (m *Memory) ListRegisteredAgents(_ context.Context, generatorID uuid.UUID) ([]agent.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []agent.Agent{}
	for _, a := range m.agents {
		if a.DeletedAt == nil && m.registered[[2]uuid.UUID{a.ID, generatorID}] {
			out = append(out, a)
		}
	}
	return out, nil
}

// AddStack seeds a live stack owned by generator (nil: a system stack).
func (m *Memory) AddStack(generator *uuid.UUID) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := stack.Stack{ID: uuid.New(), Name: "s-" + uuid.NewString()[:8], GeneratorID: generator, CreatedAt: m.now()}
	m.stacks[st.ID] = st
	return st.ID
}

// AddObject seeds a deployment object of stackID.
func (m *Memory) AddObject(stackID uuid.UUID, marker bool) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := stack.DeploymentObject{ID: uuid.New(), StackID: stackID, IsDeletionMarker: marker, CreatedAt: m.now()}
	m.objects[d.ID] = d
	return d.ID
}

var errConflict = &domain.Error{Kind: domain.ErrConflict, Code: "unique_violation", Msg: "already exists"}

func (m *Memory) live(id uuid.UUID) (int, bool) {
	for i, a := range m.agents {
		if a.ID == id && a.DeletedAt == nil {
			return i, true
		}
	}
	return 0, false
}

func (m *Memory) clash(a agent.Agent) bool {
	for _, b := range m.agents {
		if b.DeletedAt == nil && b.ID != a.ID && b.Name == a.Name && b.ClusterName == a.ClusterName {
			return true
		}
	}
	return false
}

func (m *Memory) ListAgents(context.Context) ([]agent.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []agent.Agent{}
	for _, a := range m.agents {
		if a.DeletedAt == nil {
			out = append(out, a)
		}
	}
	return out, nil
}

func (m *Memory) CreateAgent(_ context.Context, a *agent.Agent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clash(*a) {
		return errConflict
	}
	now := m.now()
	a.ID, a.CreatedAt, a.UpdatedAt, a.DeletedAt, a.LastHeartbeat = uuid.New(), now, now, nil, nil
	m.agents = append(m.agents, *a)
	m.registered[[2]uuid.UUID{a.ID, generator.SystemID}] = true
	return nil
}

func (m *Memory) GetAgent(_ context.Context, id uuid.UUID) (agent.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, ok := m.live(id); ok {
		return m.agents[i], nil
	}
	return agent.Agent{}, domain.NotFoundCode("agent_not_found", "Agent not found")
}

func (m *Memory) FindAgent(_ context.Context, name, cluster string) (agent.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.agents {
		if a.DeletedAt == nil && a.Name == name && a.ClusterName == cluster {
			return a, nil
		}
	}
	return agent.Agent{}, domain.NotFoundCode("agent_not_found", "Agent not found")
}

func (m *Memory) UpdateAgent(_ context.Context, id uuid.UUID, fn func(*agent.Agent) error) (agent.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.live(id)
	if !ok {
		return agent.Agent{}, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	a := m.agents[i]
	if err := fn(&a); err != nil {
		return agent.Agent{}, err
	}
	a.ID, a.CreatedAt, a.DeletedAt, a.LastHeartbeat = m.agents[i].ID, m.agents[i].CreatedAt, nil, m.agents[i].LastHeartbeat
	if m.clash(a) {
		return agent.Agent{}, errConflict
	}
	a.UpdatedAt = m.now()
	m.agents[i] = a
	return a, nil
}

func (m *Memory) DeleteAgent(_ context.Context, id uuid.UUID) (agent.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.live(id)
	if !ok {
		return agent.Agent{}, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	now := m.now()
	m.agents[i].DeletedAt = &now
	return m.agents[i], nil
}

func (m *Memory) Heartbeat(_ context.Context, id uuid.UUID) (agent.Agent, *time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.live(id)
	if !ok {
		return agent.Agent{}, nil, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	prev := m.agents[i].LastHeartbeat
	now := m.now()
	m.agents[i].LastHeartbeat = &now
	return m.agents[i], prev, nil
}

func (m *Memory) ListAgentTargets(_ context.Context, agentID uuid.UUID) ([]agent.Target, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []agent.Target{}
	for _, t := range m.targets {
		if t.AgentID == agentID {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b agent.Target) int { return strings.Compare(a.StackID.String(), b.StackID.String()) })
	return out, nil
}

func (m *Memory) AddAgentTarget(_ context.Context, agentID, stackID uuid.UUID) (agent.Target, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.stacks[stackID]; !ok {
		return agent.Target{}, domain.Unprocessable("Stack not found")
	}
	for _, t := range m.targets {
		if t.AgentID == agentID && t.StackID == stackID {
			return agent.Target{}, errConflict
		}
	}
	t := agent.Target{ID: uuid.New(), AgentID: agentID, StackID: stackID}
	m.targets = append(m.targets, t)
	return t, nil
}

func (m *Memory) RemoveAgentTarget(_ context.Context, agentID, stackID uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.targets)
	m.targets = slices.DeleteFunc(m.targets, func(t agent.Target) bool { return t.AgentID == agentID && t.StackID == stackID })
	if len(m.targets) == n {
		return domain.NotFoundCode("agent_target_not_found", "Target not found")
	}
	return nil
}

func (m *Memory) AssociatedStacks(_ context.Context, agentID uuid.UUID) ([]stack.Stack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []stack.Stack{}
	for _, t := range m.targets {
		if st, ok := m.stacks[t.StackID]; ok && t.AgentID == agentID {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b stack.Stack) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out, nil
}

func (m *Memory) ListAgentEvents(_ context.Context, agentID uuid.UUID) ([]agent.Event, error) {
	return m.ListEvents(context.Background(), agents.EventScope{AgentID: &agentID})
}

func (m *Memory) ListEvents(_ context.Context, scope agents.EventScope) ([]agent.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []agent.Event{}
	for i := len(m.events) - 1; i >= 0; i-- { // newest first
		e := m.events[i]
		if scope.AgentID != nil && e.AgentID != *scope.AgentID {
			continue
		}
		if scope.GeneratorID != nil && !m.owns(*scope.GeneratorID, e.DeploymentObjectID) {
			continue
		}
		if scope.RegisteredWith != nil && !m.registered[[2]uuid.UUID{e.AgentID, *scope.RegisteredWith}] {
			continue
		}
		if _, ok := m.live(e.AgentID); ok {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *Memory) GetEvent(_ context.Context, id uuid.UUID) (agent.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.events {
		if _, live := m.live(e.AgentID); e.ID == id && live {
			return e, nil
		}
	}
	return agent.Event{}, domain.NotFoundCode("agent_event_not_found", "Agent event not found")
}

func (m *Memory) CreateAgentEvent(_ context.Context, e *agent.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[e.DeploymentObjectID]; !ok {
		return domain.Unprocessable("Deployment object not found")
	}
	now := m.now()
	e.ID, e.CreatedAt, e.UpdatedAt, e.DeletedAt = uuid.New(), now, now, nil
	m.events = append(m.events, *e)
	return nil
}

func (m *Memory) AgentMayReport(_ context.Context, agentID, objectID uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.objects[objectID]
	if !ok {
		return false, nil
	}
	for _, t := range m.targets {
		if t.AgentID == agentID && t.StackID == d.StackID {
			return true, nil
		}
	}
	for _, e := range m.events {
		if o, ok := m.objects[e.DeploymentObjectID]; ok && e.AgentID == agentID && o.StackID == d.StackID {
			return true, nil
		}
	}
	return false, nil
}

func (m *Memory) GeneratorOwnsObject(_ context.Context, gen, objectID uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owns(gen, objectID), nil
}

func (m *Memory) owns(gen, objectID uuid.UUID) bool {
	d, ok := m.objects[objectID]
	return ok && m.stacks[d.StackID].OwnedBy(gen)
}

func (m *Memory) DeploymentObjectRef(_ context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.objects[id]; ok {
		return d, nil
	}
	return stack.DeploymentObject{}, domain.NotFoundCode("deployment_object_not_found", "Deployment object not found")
}
