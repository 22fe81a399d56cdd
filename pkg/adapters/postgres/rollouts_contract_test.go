package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts/rolloutstest"
)

// rolloutFixtures writes the rows other repositories own with plain SQL;
// objects go through the deployment_objects trigger that starts rollouts.
type rolloutFixtures struct{ s *postgres.Store }

func (f rolloutFixtures) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.s.DB().ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func (f rolloutFixtures) id(t *testing.T, q string, args ...any) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := f.s.DB().GetContext(context.Background(), &id, q, args...); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f rolloutFixtures) Stack(t *testing.T) uuid.UUID {
	return f.id(t, `INSERT INTO stacks (name) VALUES ($1) RETURNING id`, "stack-"+uuid.NewString())
}

func (f rolloutFixtures) Agent(t *testing.T, stackID uuid.UUID, labels ...string) uuid.UUID {
	id := f.id(t, `INSERT INTO agents (name, cluster_name, status) VALUES ($1, 'c', 'ACTIVE') RETURNING id`, "agent-"+uuid.NewString())
	f.exec(t, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, id, stackID)
	for _, l := range labels {
		f.exec(t, `INSERT INTO agent_labels (agent_id, label) VALUES ($1, $2)`, id, l)
	}
	return id
}

func (f rolloutFixtures) Object(t *testing.T, stackID uuid.UUID, from *uuid.UUID) uuid.UUID {
	return f.id(t, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum, rolled_back_from)
		VALUES ($1, 'k: v', 'x', $2) RETURNING id`, stackID, from)
}

func (f rolloutFixtures) Report(t *testing.T, agentID, objectID uuid.UUID, status, health string) {
	f.exec(t, `INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES ($1, $2, 'DEPLOY', $3)`,
		agentID, objectID, status)
	f.exec(t, `INSERT INTO deployment_health (agent_id, deployment_object_id, status, checked_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (agent_id, deployment_object_id) DO UPDATE SET status = EXCLUDED.status`, agentID, objectID, health)
}

func TestRolloutRepositoryContract(t *testing.T) {
	t.Parallel()
	rolloutstest.RunContract(t, func(t *testing.T) rolloutstest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		return rolloutstest.Subject{Repo: rolloutRepo{postgres.NewRolloutPolicies(s), postgres.NewRollouts(s)},
			Fixtures: rolloutFixtures{s}}
	})
}

type rolloutRepo struct {
	*postgres.RolloutPolicies
	*postgres.Rollouts
}
