// Package stackstest holds what tests of the stack use cases share: an
// in-memory implementation of their ports (Memory) and the contract every
// implementation must meet (contract.go), run against Memory here and
// against PostgreSQL in pkg/adapters/postgres.
package stackstest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Memory implements every port of pkg/app/stacks in memory, with the rules
// PostgreSQL enforces: one live stack per name, a generator must exist, an
// object needs a live stack, deleting a stack soft-deletes its objects and
// adds a deletion marker. InTx is all-or-nothing.
type Memory struct {
	mu         sync.Mutex
	stacks     map[uuid.UUID]stack.Stack
	objects    map[uuid.UUID]stack.DeploymentObject
	generators map[uuid.UUID]bool
	targets    map[[2]uuid.UUID]bool
	deps       map[uuid.UUID][]uuid.UUID
	withheld   map[uuid.UUID][]stack.Withheld
	seq        int64 // the deployment objects' sequence
	clock      testsupport.Clock
	journaltest.Recorder
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{stacks: map[uuid.UUID]stack.Stack{}, objects: map[uuid.UUID]stack.DeploymentObject{},
		generators: map[uuid.UUID]bool{}, targets: map[[2]uuid.UUID]bool{},
		deps: map[uuid.UUID][]uuid.UUID{}, withheld: map[uuid.UUID][]stack.Withheld{}}
}

// AddGenerator records a generator, as the generators table would hold it.
func (m *Memory) AddGenerator(id uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.generators[id] = true
}

// Target associates a stack with an agent, as an agent target would.
func (m *Memory) Target(agentID, stackID uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets[[2]uuid.UUID{agentID, stackID}] = true
}

// InTx runs fn; when fn fails every change it made is undone. A nested
// call joins the outer transaction.
func (m *Memory) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return testsupport.SnapshotTx(ctx, &m.mu, func() func() {
		stacks, objects, deps := maps.Clone(m.stacks), maps.Clone(m.objects), maps.Clone(m.deps)
		seq, rewind := m.seq, m.Mark()
		return func() {
			m.stacks, m.objects, m.deps, m.seq = stacks, objects, deps, seq
			rewind()
		}
	}, fn)
}

var (
	errStackNotFound  = domain.NotFoundCode("stack_not_found", "Stack not found")
	errObjectNotFound = domain.NotFoundCode("deployment_object_not_found", "Deployment object not found")
)

func (m *Memory) nameTaken(name string, except uuid.UUID) bool {
	for _, s := range m.stacks {
		if s.DeletedAt == nil && s.Name == name && s.ID != except {
			return true
		}
	}
	return false
}

func (m *Memory) check(s stack.Stack) error {
	switch {
	case len(s.Name) > 255:
		return domain.Invalid("value too long")
	case s.GeneratorID != nil && !m.generators[*s.GeneratorID]:
		return domain.Unprocessable("referenced entity does not exist")
	case m.nameTaken(s.Name, s.ID):
		return domain.Conflict("already exists")
	}
	return nil
}

// ListStacks returns live stacks, optionally only a generator's, oldest first.
func (m *Memory) ListStacks(_ context.Context, generatorID *uuid.UUID) ([]stack.Stack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []stack.Stack{}
	for _, s := range m.stacks {
		if s.DeletedAt == nil && (generatorID == nil || s.OwnedBy(*generatorID)) {
			out = append(out, m.withDeps(s))
		}
	}
	slices.SortFunc(out, func(a, b stack.Stack) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return out, nil
}

// CreateStack inserts s, filling id and timestamps.
func (m *Memory) CreateStack(_ context.Context, s *stack.Stack) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := *s
	n.ID, n.DeletedAt = uuid.New(), nil
	if err := m.check(n); err != nil {
		return err
	}
	n.CreatedAt = m.clock.Now()
	n.UpdatedAt = n.CreatedAt
	m.stacks[n.ID] = n
	*s = n
	return nil
}

// GetStack returns a live stack.
func (m *Memory) GetStack(_ context.Context, id uuid.UUID) (stack.Stack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stacks[id]
	if !ok || s.DeletedAt != nil {
		return stack.Stack{}, errStackNotFound
	}
	return m.withDeps(s), nil
}

// UpdateStack lets fn change a live stack and stores it.
func (m *Memory) UpdateStack(_ context.Context, id uuid.UUID, fn func(*stack.Stack) error) (stack.Stack, error) {
	m.mu.Lock()
	s, ok := m.stacks[id]
	m.mu.Unlock()
	if !ok || s.DeletedAt != nil {
		return stack.Stack{}, errStackNotFound
	}
	if err := fn(&s); err != nil {
		return stack.Stack{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s.ID = id
	if err := m.check(s); err != nil {
		return stack.Stack{}, err
	}
	s.UpdatedAt = m.clock.Now()
	s.DependsOn = nil
	m.stacks[id] = s
	return m.withDeps(s), nil
}

// DeleteStack soft-deletes a live stack and its objects and adds a
// deletion marker, as the database trigger does.
func (m *Memory) DeleteStack(_ context.Context, id uuid.UUID) (stack.Stack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stacks[id]
	if !ok || s.DeletedAt != nil {
		return stack.Stack{}, errStackNotFound
	}
	now := m.clock.Now()
	s.DeletedAt, s.UpdatedAt = &now, now
	m.stacks[id] = s
	for oid, o := range m.objects {
		if o.StackID == id && o.DeletedAt == nil {
			o.DeletedAt = &now
			m.objects[oid] = o
		}
	}
	m.insertObject(stack.DeploymentObject{StackID: id, YAMLChecksum: stack.Checksum(""), IsDeletionMarker: true})
	return s, nil
}

// AgentAssociated reports whether the agent targets the stack.
func (m *Memory) AgentAssociated(_ context.Context, agentID, stackID uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.targets[[2]uuid.UUID{agentID, stackID}], nil
}

// GeneratorExists reports whether AddGenerator recorded id.
func (m *Memory) GeneratorExists(_ context.Context, id uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generators[id], nil
}

func (m *Memory) insertObject(d stack.DeploymentObject) stack.DeploymentObject {
	now := m.clock.Now()
	m.seq++
	d.ID, d.SequenceID, d.CreatedAt, d.UpdatedAt, d.SubmittedAt, d.DeletedAt = uuid.New(), m.seq, now, now, now, nil
	m.objects[d.ID] = d
	return d
}

// ListDeploymentObjects returns a stack's live objects, newest first.
func (m *Memory) ListDeploymentObjects(_ context.Context, stackID uuid.UUID) ([]stack.DeploymentObject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []stack.DeploymentObject{}
	for _, o := range m.objects {
		if o.StackID == stackID && o.DeletedAt == nil {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b stack.DeploymentObject) int { return int(b.SequenceID - a.SequenceID) })
	return out, nil
}

// CreateDeploymentObject inserts d into a live stack.
func (m *Memory) CreateDeploymentObject(_ context.Context, d *stack.DeploymentObject) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stacks[d.StackID]
	if !ok || s.DeletedAt != nil {
		return errStackNotFound
	}
	*d = m.insertObject(*d)
	return nil
}

// GetDeploymentObject returns a live object.
func (m *Memory) GetDeploymentObject(_ context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[id]
	if !ok || o.DeletedAt != nil {
		return stack.DeploymentObject{}, errObjectNotFound
	}
	return o, nil
}

// withDeps returns s with its dependencies, as the stacks' reads do.
func (m *Memory) withDeps(s stack.Stack) stack.Stack {
	s.DependsOn = slices.Clone(m.deps[s.ID])
	return s
}

// LockDependencies does nothing: every call takes the store's mutex.
func (m *Memory) LockDependencies(context.Context) error { return nil }

// Dependencies returns what each of ids depends on.
func (m *Memory) Dependencies(_ context.Context, ids []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[uuid.UUID][]uuid.UUID{}
	for _, id := range ids {
		if d := m.deps[id]; len(d) > 0 {
			out[id] = slices.Clone(d)
		}
	}
	return out, nil
}

// SetDependencies replaces the stack's dependencies; like the foreign
// keys, every stack named must exist, and the check forbids a self edge.
func (m *Memory) SetDependencies(_ context.Context, stackID uuid.UUID, deps []uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.Contains(deps, stackID) {
		return domain.Invalid("invalid value")
	}
	for _, d := range append([]uuid.UUID{stackID}, deps...) {
		if _, ok := m.stacks[d]; !ok {
			return domain.Unprocessable("referenced entity does not exist")
		}
	}
	sorted := slices.Clone(deps)
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	if len(sorted) == 0 {
		delete(m.deps, stackID)
		return nil
	}
	m.deps[stackID] = sorted
	return nil
}

// Dependents returns the live stacks that depend on stackID, by id.
func (m *Memory) Dependents(_ context.Context, stackID uuid.UUID) ([]uuid.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []uuid.UUID{}
	for id, deps := range m.deps {
		if s := m.stacks[id]; s.DeletedAt == nil && slices.Contains(deps, stackID) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out, nil
}

// SetWithheld sets what Withheld answers for the agent (the memory store
// keeps no agent reports to compute it from).
func (m *Memory) SetWithheld(agentID uuid.UUID, w []stack.Withheld) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.withheld[agentID] = w
}

// Withheld returns what SetWithheld set for the agent.
func (m *Memory) Withheld(_ context.Context, agentID uuid.UUID) ([]stack.Withheld, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]stack.Withheld{}, m.withheld[agentID]...), nil
}

// DependedObjects fakes the agents' and deployment health's
// DependencyWatch port: the ids of objects whose stack another stack
// depends on.
type DependedObjects map[uuid.UUID]bool

// ObjectDependedOn reports whether objectID is in d.
func (d DependedObjects) ObjectDependedOn(_ context.Context, objectID uuid.UUID) (bool, error) {
	return d[objectID], nil
}
