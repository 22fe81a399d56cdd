package registrationstest_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/registrations/registrationstest"
)

func TestMemoryContract(t *testing.T) {
	registrationstest.RunRepositoryContract(t, func(*testing.T) registrationstest.Subject {
		m := registrationstest.NewMemory()
		return registrationstest.Subject{Repo: m,
			NewAgent:     func(*testing.T) uuid.UUID { return uuid.New() },
			NewGenerator: func(*testing.T) uuid.UUID { return uuid.New() },
			NewTarget: func(_ *testing.T, a uuid.UUID, gen *uuid.UUID) uuid.UUID {
				id := uuid.New()
				m.AddTarget(a, id, gen)
				return id
			},
			Targets: func(_ *testing.T, a uuid.UUID) []uuid.UUID { return m.Targets(a) }}
	})
}
