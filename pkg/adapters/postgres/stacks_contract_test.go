package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/stacks/stackstest"
)

// pgFixtures inserts the rows other repositories own with plain SQL, so
// a contract depends only on the repository under test.
type pgFixtures struct{ s *postgres.Store }

func (f pgFixtures) Generator(t *testing.T) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := f.s.DB().GetContext(context.Background(), &id,
		`INSERT INTO generators (name) VALUES ($1) RETURNING id`, "gen-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f pgFixtures) Agent(t *testing.T) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := f.s.DB().GetContext(context.Background(), &id,
		`INSERT INTO agents (name, cluster_name) VALUES ($1, 'c') RETURNING id`, "agent-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f pgFixtures) TargetedAgent(t *testing.T, stackID uuid.UUID) uuid.UUID {
	t.Helper()
	id := f.Agent(t)
	if _, err := f.s.DB().ExecContext(context.Background(),
		`INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, id, stackID); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestStackRepositoryContract(t *testing.T) {
	t.Parallel()
	stackstest.RunStackRepositoryContract(t, func(t *testing.T) stackstest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		return stackstest.Subject{Tx: s, Stacks: postgres.NewStacks(s), Objects: postgres.NewDeploymentObjects(s),
			Fixtures: pgFixtures{s}}
	})
}

func (f pgFixtures) DeploymentObject(t *testing.T) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := f.s.DB().GetContext(context.Background(), &id, `WITH st AS (
			INSERT INTO stacks (name) VALUES ($1) RETURNING id)
		INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum) SELECT id, 'a: 1', 'x' FROM st RETURNING id`,
		"stack-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDependencyRepositoryContract(t *testing.T) {
	t.Parallel()
	stackstest.RunDependencyRepositoryContract(t, func(t *testing.T) stackstest.DependencySubject {
		s := postgres.NewStore(pgtest.New(t))
		return stackstest.DependencySubject{Subject: stackstest.Subject{Tx: s, Stacks: postgres.NewStacks(s),
			Objects: postgres.NewDeploymentObjects(s), Fixtures: pgFixtures{s}}, Dependencies: postgres.NewDependencies(s)}
	})
}
