package agentstest_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents/agentstest"
)

func memorySubject(t *testing.T) agentstest.Subject {
	m := agentstest.NewMemory()
	return agentstest.Subject{Agents: m, Targets: m, Events: m, Registrations: m, Generators: m,
		NewGenerator: func(*testing.T) uuid.UUID { return m.AddGenerator() },
		NewStack:     func(_ *testing.T, gen *uuid.UUID) uuid.UUID { return m.AddStack(gen) },
		NewObject:    func(_ *testing.T, st uuid.UUID) uuid.UUID { return m.AddObject(st, false) }}
}

func TestMemoryAgentRepository(t *testing.T) { agentstest.RunAgentRepositoryContract(t, memorySubject) }
func TestMemoryTargetRepository(t *testing.T) {
	agentstest.RunTargetRepositoryContract(t, memorySubject)
}
func TestMemoryEventRepository(t *testing.T) { agentstest.RunEventRepositoryContract(t, memorySubject) }
