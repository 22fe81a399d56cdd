package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate/targetstatetest"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// pgTargetFixtures builds target-state rows with plain SQL and the stack
// repositories.
type pgTargetFixtures struct {
	s *postgres.Store
	pgAgents
}

func (f pgTargetFixtures) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.s.DB().ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func (f pgTargetFixtures) Stack(t *testing.T, labels []string, annotations map[string]string) uuid.UUID {
	t.Helper()
	st := stack.Stack{Name: "stack-" + uuid.NewString()}
	if err := postgres.NewStacks(f.s).CreateStack(context.Background(), &st); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		f.exec(t, `INSERT INTO stack_labels (stack_id, label) VALUES ($1, $2)`, st.ID, l)
	}
	for k, v := range annotations {
		f.exec(t, `INSERT INTO stack_annotations (stack_id, key, value) VALUES ($1, $2, $3)`, st.ID, k, v)
	}
	return st.ID
}

func (f pgTargetFixtures) Target(t *testing.T, agentID, stackID uuid.UUID) {
	f.exec(t, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, agentID, stackID)
}

func (f pgTargetFixtures) Object(t *testing.T, stackID uuid.UUID, yaml string) stack.DeploymentObject {
	t.Helper()
	d := stack.DeploymentObject{StackID: stackID, YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml)}
	if err := postgres.NewDeploymentObjects(f.s).CreateDeploymentObject(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func (f pgTargetFixtures) DeleteStack(t *testing.T, stackID uuid.UUID) stack.DeploymentObject {
	t.Helper()
	ctx := context.Background()
	if _, err := postgres.NewStacks(f.s).DeleteStack(ctx, stackID); err != nil {
		t.Fatal(err)
	}
	list, err := postgres.NewDeploymentObjects(f.s).ListDeploymentObjects(ctx, stackID)
	if err != nil || len(list) != 1 {
		t.Fatalf("after delete %+v, %v", list, err)
	}
	return list[0]
}

func (f pgTargetFixtures) Ack(t *testing.T, agentID, objectID uuid.UUID) {
	f.exec(t, `INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES ($1, $2, 'DEPLOY', 'SUCCESS')`,
		agentID, objectID)
}

func TestSnapshotReaderContract(t *testing.T) {
	t.Parallel()
	targetstatetest.RunSnapshotReaderContract(t, func(t *testing.T) (targetstate.SnapshotReader, targetstatetest.Fixtures) {
		s := postgres.NewStore(pgtest.New(t))
		return postgres.NewTargetStates(s), pgTargetFixtures{s: s, pgAgents: pgAgents{s}}
	})
}
