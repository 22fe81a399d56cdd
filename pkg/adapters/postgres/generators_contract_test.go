package postgres_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/generators/generatorstest"
)

func TestGeneratorRepositoryContract(t *testing.T) {
	generatorstest.RunGeneratorRepositoryContract(t, func(t *testing.T) generatorstest.Subject {
		db := pgtest.New(t)
		s := postgres.NewStore(db)
		return generatorstest.Subject{Generators: postgres.NewGenerators(s), Stacks: postgres.NewStacks(s),
			NewStack: func(t *testing.T, gen uuid.UUID) uuid.UUID {
				var id uuid.UUID
				if err := db.Get(&id, `INSERT INTO stacks (name, generator_id) VALUES ($1, $2) RETURNING id`,
					"s-"+uuid.NewString(), gen); err != nil {
					t.Fatal(err)
				}
				return id
			}}
	})
}
