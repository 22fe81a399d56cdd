// Package rolloutstest holds an in-memory implementation of the rollout
// ports (with the stack side the use cases need) and the contract suite
// run against it and PostgreSQL.
package rolloutstest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

type observation struct{ event, reason, health string }

type memAgent struct {
	id          uuid.UUID
	stacks      map[uuid.UUID]bool
	labels      []string
	annotations map[string]string
}

// Memory keeps the rules of the rollout tables: one rollout per object
// created on a stack with strategy waves (superseding the unfinished one),
// a rollback object ending it as rolled_back, agents unique per rollout.
// Locks are a no-op: it serves one goroutine at a time per rollout.
type Memory struct {
	mu       sync.Mutex
	policies map[uuid.UUID]rollout.Policy
	stacks   map[uuid.UUID]*uuid.UUID // stack -> owning generator
	objects  []stack.DeploymentObject
	rollouts []rollout.Rollout
	agents   map[uuid.UUID]map[uuid.UUID]rollout.Agent // rollout -> agent
	log      map[uuid.UUID][]rollout.Transition
	fleet    []*memAgent
	obs      map[[2]uuid.UUID]observation
	seq      int64

	journaltest.Recorder
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{policies: map[uuid.UUID]rollout.Policy{}, stacks: map[uuid.UUID]*uuid.UUID{},
		agents: map[uuid.UUID]map[uuid.UUID]rollout.Agent{}, log: map[uuid.UUID][]rollout.Transition{},
		obs: map[[2]uuid.UUID]observation{}}
}

var (
	_ rollouts.PolicyRepository  = (*Memory)(nil)
	_ rollouts.RolloutRepository = (*Memory)(nil)
	_ rollouts.AgentWaiters      = (*Memory)(nil)
	_ rollouts.Stacks            = (*Memory)(nil)
)

// InTx runs fn (no isolation: the memory store is for one test at a time).
func (m *Memory) InTx(ctx context.Context, fn func(ctx context.Context) error) error { return fn(ctx) }

// Repos returns the use cases' ports over m.
func (m *Memory) Repos() rollouts.Repos {
	return rollouts.Repos{Tx: m, Journal: m, Policies: m, Rollouts: m}
}

// Policy returns the stack's policy or the default.
func (m *Memory) Policy(_ context.Context, stackID uuid.UUID) (rollout.Policy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.policies[stackID]; ok {
		return p, nil
	}
	return rollout.Default(), nil
}

// PutPolicy stores the policy of a live stack.
func (m *Memory) PutPolicy(_ context.Context, stackID uuid.UUID, p rollout.Policy) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.stacks[stackID]; !ok {
		return nil
	}
	m.policies[stackID] = p
	return nil
}

// Latest returns the stack's newest rollout.
func (m *Memory) Latest(_ context.Context, stackID uuid.UUID) (rollout.Rollout, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *rollout.Rollout
	for i, r := range m.rollouts {
		if r.StackID == stackID && (best == nil || r.SequenceID > best.SequenceID) {
			best = &m.rollouts[i]
		}
	}
	if best == nil {
		return rollout.Rollout{}, rollouts.ErrNoRollout
	}
	return *best, nil
}

func (m *Memory) find(id uuid.UUID) int {
	return slices.IndexFunc(m.rollouts, func(r rollout.Rollout) bool { return r.ID == id })
}

func (m *Memory) sortedAgents(id uuid.UUID, observe bool) []rollout.Agent {
	r := m.rollouts[m.find(id)]
	out := []rollout.Agent{}
	for _, a := range m.agents[id] {
		if observe {
			o := m.obs[[2]uuid.UUID{a.AgentID, r.DeploymentObjectID}]
			a.LastEvent, a.EventReason, a.Health = o.event, o.reason, o.health
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y rollout.Agent) int {
		return cmp.Or(cmp.Compare(x.Wave, y.Wave), slices.Compare(x.AgentID[:], y.AgentID[:]))
	})
	return out
}

// Lock returns the rollout and its agents with what they reported.
func (m *Memory) Lock(_ context.Context, id uuid.UUID, skipLocked bool) (rollout.Rollout, []rollout.Agent, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.find(id)
	if i < 0 {
		if skipLocked {
			return rollout.Rollout{}, nil, false, nil
		}
		return rollout.Rollout{}, nil, false, rollouts.ErrNoRollout
	}
	return m.rollouts[i], m.sortedAgents(id, true), true, nil
}

// Agents returns the rollout's agents.
func (m *Memory) Agents(_ context.Context, id uuid.UUID) ([]rollout.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.find(id) < 0 {
		return []rollout.Agent{}, nil
	}
	return m.sortedAgents(id, false), nil
}

// Candidates returns the agents associated with the stack.
func (m *Memory) Candidates(_ context.Context, stackID uuid.UUID) ([]rollout.Candidate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []rollout.Candidate{}
	for _, a := range m.fleet {
		if a.stacks[stackID] {
			out = append(out, rollout.Candidate{ID: a.id, Labels: a.labels, Annotations: a.annotations})
		}
	}
	return out, nil
}

// Save writes a step.
func (m *Memory) Save(_ context.Context, id uuid.UUID, st rollout.Step) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.find(id)
	if i < 0 {
		return rollouts.ErrNoRollout
	}
	for _, a := range st.Agents {
		a.LastEvent, a.EventReason, a.Health = "", "", ""
		m.agents[id][a.AgentID] = a
	}
	m.log[id] = append(m.log[id], st.Transitions...)
	r := &m.rollouts[i]
	r.State, r.CurrentWave, r.Reason, r.UpdatedAt = st.State, st.CurrentWave, st.Reason, time.Now()
	switch {
	case rollout.Unfinished(r.State):
		r.FinishedAt = nil
	case r.FinishedAt == nil:
		now := time.Now()
		r.FinishedAt = &now
	}
	return nil
}

// Progressing lists progressing rollouts after the given id, in id order.
func (m *Memory) Progressing(_ context.Context, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rs := slices.Clone(m.rollouts)
	slices.SortFunc(rs, func(a, b rollout.Rollout) int { return slices.Compare(a.ID[:], b.ID[:]) })
	out := []uuid.UUID{}
	for _, r := range rs {
		if r.State == rollout.StateProgressing && slices.Compare(r.ID[:], after[:]) > 0 && len(out) < limit {
			out = append(out, r.ID)
		}
	}
	return out, nil
}

// AwaitingAgent returns the stacks whose progressing rollout waits for the agent.
func (m *Memory) AwaitingAgent(_ context.Context, agentID uuid.UUID) ([]uuid.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []uuid.UUID{}
	for _, r := range m.rollouts {
		a, ok := m.agents[r.ID][agentID]
		if ok && r.State == rollout.StateProgressing && a.Unavailable() && !slices.Contains(out, r.StackID) {
			out = append(out, r.StackID)
		}
	}
	return out, nil
}

// Log returns a rollout's event log.
func (m *Memory) Log(_ context.Context, id uuid.UUID) ([]rollout.Transition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log[id]), nil
}

// --- the stack side (rollouts.Stacks) and fixtures ---

// NewStack adds a live stack owned by generator gen (nil: the admin's).
func (m *Memory) NewStack(gen *uuid.UUID) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.stacks[id] = gen
	return id
}

// NewAgent adds an ACTIVE agent associated with stackID.
func (m *Memory) NewAgent(stackID uuid.UUID, labels []string, annotations map[string]string) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := &memAgent{id: uuid.New(), stacks: map[uuid.UUID]bool{stackID: true}, labels: labels, annotations: annotations}
	m.fleet = append(m.fleet, a)
	return a.id
}

// Report records the agent's latest event status and health for an object.
func (m *Memory) Report(agentID, objectID uuid.UUID, status, reason, health string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.obs[[2]uuid.UUID{agentID, objectID}] = observation{status, reason, health}
}

// Get returns a stack the caller may manage.
func (m *Memory) Get(_ context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gen, ok := m.stacks[id]
	switch {
	case !ok:
		return stack.Stack{}, domain.NotFoundCode("stack_not_found", "Stack not found")
	case p.IsAdmin():
	case p.Role == identity.RoleGenerator && gen != nil && *gen == p.ID:
	case p.Role == identity.RoleGenerator:
		return stack.Stack{}, domain.ForbiddenCode("stack_not_owned", "Access denied")
	default:
		return stack.Stack{}, domain.ForbiddenCode("stack_not_accessible", "Access denied")
	}
	return stack.Stack{ID: id, GeneratorID: gen}, nil
}

// DeploymentObjects returns the stack's objects, newest first.
func (m *Memory) DeploymentObjects(ctx context.Context, p identity.Principal, id uuid.UUID) ([]stack.DeploymentObject, error) {
	if _, err := m.Get(ctx, p, id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []stack.DeploymentObject{}
	for i := len(m.objects) - 1; i >= 0; i-- {
		if m.objects[i].StackID == id {
			out = append(out, m.objects[i])
		}
	}
	return out, nil
}

// Deploy stores an object as the database does, starting or ending
// rollouts like the trigger of migrations/sql/0013_rollouts.up.sql.
func (m *Memory) Deploy(ctx context.Context, _ identity.Principal, id uuid.UUID, in stacks.DeploymentInput, prov stacks.Provenance) (stack.DeploymentObject, error) {
	m.mu.Lock()
	m.seq++
	d := stack.DeploymentObject{ID: uuid.New(), StackID: id, SequenceID: m.seq, YAMLContent: in.YAMLContent,
		YAMLChecksum: stack.Checksum(in.YAMLContent), IsDeletionMarker: in.IsDeletionMarker, RolledBackFrom: in.RolledBackFrom,
		CreatedAt: time.Now()}
	var prev *uuid.UUID
	for i := len(m.objects) - 1; i >= 0; i-- {
		if o := m.objects[i]; o.StackID == id && !o.IsDeletionMarker {
			prev = &o.ID
			break
		}
	}
	m.objects = append(m.objects, d)
	end := func(state, reason string) {
		for i := range m.rollouts {
			if r := &m.rollouts[i]; r.StackID == id && rollout.Unfinished(r.State) {
				now := time.Now()
				r.State, r.FinishedAt = state, &now
				if r.Reason == nil || state == rollout.StateSuperseded {
					r.Reason = &reason
				}
			}
		}
	}
	p, waves := m.policies[id]
	switch {
	case d.IsDeletionMarker:
	case d.RolledBackFrom != nil:
		end(rollout.StateRolledBack, "rolled back by a new object")
	case waves && p.Strategy == rollout.StrategyWaves:
		end(rollout.StateSuperseded, "superseded by a newer object")
		r := rollout.Rollout{ID: uuid.New(), StackID: id, DeploymentObjectID: d.ID, SequenceID: d.SequenceID,
			PreviousObjectID: prev, Policy: p, State: rollout.StateProgressing, CurrentWave: -1,
			CreatedAt: time.Now(), UpdatedAt: time.Now()}
		m.rollouts = append(m.rollouts, r)
		m.agents[r.ID] = map[uuid.UUID]rollout.Agent{}
	}
	m.mu.Unlock()
	if prov != nil {
		if err := prov(ctx, d); err != nil {
			return stack.DeploymentObject{}, err
		}
	}
	return d, nil
}

// Notes records change notifications.
type Notes struct {
	mu     sync.Mutex
	Agents []uuid.UUID
	Stacks []uuid.UUID
}

// AgentChanged records a released agent.
func (n *Notes) AgentChanged(_ context.Context, id uuid.UUID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Agents = append(n.Agents, id)
}

// StackChanged records a stack change.
func (n *Notes) StackChanged(_ context.Context, id uuid.UUID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Stacks = append(n.Stacks, id)
}

var adminPrincipal = identity.Admin

func deployInput(yaml string, from *uuid.UUID) stacks.DeploymentInput {
	return stacks.DeploymentInput{YAMLContent: yaml, RolledBackFrom: from}
}
