// Package registrationstest holds an in-memory registrations.Repository and
// the contract every implementation must meet, run against both the memory
// one and PostgreSQL (pkg/adapters/postgres).
package registrationstest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

var _ registrations.Repository = (*Memory)(nil)

// Memory implements the repository with the table's rules: one row per
// pair, and a deregistration removes the agent's explicit targets on the
// generator's stacks (seeded with AddTarget).
type Memory struct {
	mu      sync.Mutex
	regs    []agent.Registration
	targets []memTarget
}

type memTarget struct {
	agentID, stackID uuid.UUID
	gen              *uuid.UUID
}

// NewMemory returns an empty repository.
func NewMemory() *Memory { return &Memory{} }

// AddTarget seeds an explicit target of the agent on a stack of generator
// gen (nil: a system stack).
func (m *Memory) AddTarget(agentID, stackID uuid.UUID, gen *uuid.UUID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets = append(m.targets, memTarget{agentID, stackID, gen})
}

// Targets returns the stacks the agent targets explicitly.
func (m *Memory) Targets(agentID uuid.UUID) []uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uuid.UUID
	for _, t := range m.targets {
		if t.agentID == agentID {
			out = append(out, t.stackID)
		}
	}
	return out
}

// Register implements registrations.Repository.
func (m *Memory) Register(_ context.Context, agentID, generatorID uuid.UUID) (agent.Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.regs {
		if r.AgentID == agentID && r.GeneratorID == generatorID {
			return agent.Registration{}, domain.Conflict("already registered")
		}
	}
	r := agent.Registration{ID: uuid.New(), AgentID: agentID, GeneratorID: generatorID, RegisteredAt: time.Now().UTC()}
	m.regs = append(m.regs, r)
	return r, nil
}

// Deregister implements registrations.Repository.
func (m *Memory) Deregister(_ context.Context, agentID, generatorID uuid.UUID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.regs)
	m.regs = slices.DeleteFunc(m.regs, func(r agent.Registration) bool {
		return r.AgentID == agentID && r.GeneratorID == generatorID
	})
	m.targets = slices.DeleteFunc(m.targets, func(t memTarget) bool {
		return t.agentID == agentID && generatorOf(t.gen) == generatorID
	})
	return len(m.regs) < n, nil
}

func generatorOf(gen *uuid.UUID) uuid.UUID {
	if gen == nil {
		return generator.SystemID
	}
	return *gen
}

func (m *Memory) list(keep func(agent.Registration) bool) []agent.Registration {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []agent.Registration{}
	for _, r := range m.regs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// ListByAgent implements registrations.Repository.
func (m *Memory) ListByAgent(_ context.Context, agentID uuid.UUID) ([]agent.Registration, error) {
	return m.list(func(r agent.Registration) bool { return r.AgentID == agentID }), nil
}

// ListByGenerator implements registrations.Repository.
func (m *Memory) ListByGenerator(_ context.Context, generatorID uuid.UUID) ([]agent.Registration, error) {
	return m.list(func(r agent.Registration) bool { return r.GeneratorID == generatorID }), nil
}

// IsRegistered implements registrations.Repository.
func (m *Memory) IsRegistered(_ context.Context, agentID uuid.UUID, gen *uuid.UUID) (bool, error) {
	g := generatorOf(gen)
	return len(m.list(func(r agent.Registration) bool { return r.AgentID == agentID && r.GeneratorID == g })) > 0, nil
}
