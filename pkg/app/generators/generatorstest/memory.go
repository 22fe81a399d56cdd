// Package generatorstest holds an in-memory GeneratorRepository and the
// contract every implementation must meet, run against both the memory one
// and PostgreSQL (pkg/adapters/postgres).
package generatorstest

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

var (
	_ generators.GeneratorRepository = (*Memory)(nil)
	_ generators.StackLister         = (*Memory)(nil)
)

// Memory implements the generator ports in memory with the table's rules:
// a live generator's name is unique, deleted generators are invisible, and
// deleting one deletes its stacks (seeded with AddStack).
type Memory struct {
	mu     sync.Mutex
	gens   []generator.Generator
	stacks []stack.Stack
}

// NewMemory returns an empty repository.
func NewMemory() *Memory { return &Memory{} }

// AddStack seeds a live stack of generator gen.
func (m *Memory) AddStack(gen uuid.UUID) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := stack.Stack{ID: uuid.New(), Name: "s-" + uuid.NewString()[:8], GeneratorID: &gen}
	m.stacks = append(m.stacks, st)
	return st.ID
}

func (m *Memory) live(id uuid.UUID) (int, bool) {
	for i, g := range m.gens {
		if g.ID == id && g.DeletedAt == nil {
			return i, true
		}
	}
	return 0, false
}

func (m *Memory) clash(g generator.Generator) bool {
	for _, o := range m.gens {
		if o.DeletedAt == nil && o.ID != g.ID && o.Name == g.Name {
			return true
		}
	}
	return false
}

var errConflict = &domain.Error{Kind: domain.ErrConflict, Code: "unique_violation", Msg: "already exists"}

func (m *Memory) ListGenerators(context.Context) ([]generator.Generator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []generator.Generator{}
	for _, g := range m.gens {
		if g.DeletedAt == nil && !g.IsSystem {
			out = append(out, g)
		}
	}
	return out, nil
}

func (m *Memory) CreateGenerator(_ context.Context, g *generator.Generator) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.clash(*g) {
		return errConflict
	}
	now := time.Now()
	g.ID, g.CreatedAt, g.UpdatedAt, g.DeletedAt = uuid.New(), now, now, nil
	m.gens = append(m.gens, *g)
	return nil
}

func (m *Memory) GetGenerator(_ context.Context, id uuid.UUID) (generator.Generator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, ok := m.live(id); ok {
		return m.gens[i], nil
	}
	return generator.Generator{}, domain.NotFoundCode("generator_not_found", "Generator not found")
}

func (m *Memory) UpdateGenerator(_ context.Context, id uuid.UUID, fn func(*generator.Generator) error) (generator.Generator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.live(id)
	if !ok {
		return generator.Generator{}, domain.NotFoundCode("generator_not_found", "Generator not found")
	}
	g := m.gens[i]
	if err := fn(&g); err != nil {
		return generator.Generator{}, err
	}
	g.ID, g.CreatedAt, g.DeletedAt = m.gens[i].ID, m.gens[i].CreatedAt, nil
	if m.clash(g) {
		return generator.Generator{}, errConflict
	}
	g.UpdatedAt = time.Now()
	m.gens[i] = g
	return g, nil
}

func (m *Memory) DeleteGenerator(_ context.Context, id uuid.UUID) (generator.Generator, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.live(id)
	if !ok {
		return generator.Generator{}, domain.NotFoundCode("generator_not_found", "Generator not found")
	}
	now := time.Now()
	m.gens[i].DeletedAt = &now
	for j := range m.stacks {
		if m.stacks[j].OwnedBy(id) && m.stacks[j].DeletedAt == nil {
			m.stacks[j].DeletedAt = &now
		}
	}
	return m.gens[i], nil
}

func (m *Memory) ListStacks(_ context.Context, generatorID *uuid.UUID) ([]stack.Stack, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []stack.Stack{}
	for _, st := range m.stacks {
		if st.DeletedAt == nil && (generatorID == nil || st.OwnedBy(*generatorID)) {
			out = append(out, st)
		}
	}
	return out, nil
}
