package generatorstest_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/generators/generatorstest"
)

func TestMemoryContract(t *testing.T) {
	generatorstest.RunGeneratorRepositoryContract(t, func(*testing.T) generatorstest.Subject {
		m := generatorstest.NewMemory()
		return generatorstest.Subject{Generators: m, Stacks: m,
			NewStack: func(_ *testing.T, gen uuid.UUID) uuid.UUID { return m.AddStack(gen) }}
	})
}
