package postgres_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/agents/agentstest"
)

// The agent repositories meet the same contracts as the in-memory ones the
// use-case tests use.
func pgAgentSubject(t *testing.T) agentstest.Subject {
	db := pgtest.New(t)
	s := postgres.NewStore(db)
	return agentstest.Subject{
		Agents: postgres.NewAgents(s), Targets: postgres.NewAgents(s), Events: postgres.NewAgentEvents(s),
		Registrations: postgres.NewRegistrations(s), Generators: postgres.NewGenerators(s),
		NewGenerator: func(t *testing.T) uuid.UUID {
			var id uuid.UUID
			if err := db.Get(&id, `INSERT INTO generators (name) VALUES ($1) RETURNING id`, "g-"+uuid.NewString()); err != nil {
				t.Fatal(err)
			}
			return id
		},
		NewStack: func(t *testing.T, gen *uuid.UUID) uuid.UUID {
			if gen != nil {
				db.MustExec(`INSERT INTO generators (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, *gen, "g-"+gen.String())
			}
			var id uuid.UUID
			if err := db.Get(&id, `INSERT INTO stacks (name, generator_id) VALUES ($1, $2) RETURNING id`,
				"s-"+uuid.NewString(), gen); err != nil {
				t.Fatal(err)
			}
			return id
		},
		NewObject: func(t *testing.T, stackID uuid.UUID) uuid.UUID {
			var id uuid.UUID
			if err := db.Get(&id, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum)
				VALUES ($1, 'a: 1', 'x') RETURNING id`, stackID); err != nil {
				t.Fatal(err)
			}
			return id
		},
	}
}

func TestAgentRepositoryContract(t *testing.T) {
	agentstest.RunAgentRepositoryContract(t, pgAgentSubject)
}

func TestTargetRepositoryContract(t *testing.T) {
	agentstest.RunTargetRepositoryContract(t, pgAgentSubject)
}

func TestEventRepositoryContract(t *testing.T) {
	agentstest.RunEventRepositoryContract(t, pgAgentSubject)
}
