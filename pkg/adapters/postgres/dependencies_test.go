package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// The target-state reader holds a dependent stack's new object per agent
// until its dependency is SUCCESS and healthy there, keeps what the agent
// already reported on, and gives a stack with dependencies no shared head
// (so the index reloads each agent instead of patching one in).
func TestTargetStateDependencyGate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := postgres.NewStore(pgtest.New(t))
	f := pgTargetFixtures{s: s, pgAgents: pgAgents{s}}
	ts, deps := postgres.NewTargetStates(s), postgres.NewDependencies(s)
	db, app := f.Stack(t, nil, nil), f.Stack(t, nil, nil)
	agentID := f.pgAgents.Agent(t, true, nil, nil)
	f.Target(t, agentID, db)
	f.Target(t, agentID, app)
	db1, app1 := f.Object(t, db, "db: 1\n"), f.Object(t, app, "app: 1\n")

	objects := func() map[uuid.UUID]uuid.UUID {
		t.Helper()
		snap, err := ts.AgentState(ctx, agentID)
		if err != nil {
			t.Fatal(err)
		}
		out := map[uuid.UUID]uuid.UUID{}
		for _, o := range snap.Objects {
			out[o.StackID] = o.ID
		}
		return out
	}
	head := func(id uuid.UUID) (stack.DeploymentObject, bool) {
		t.Helper()
		o, ok, err := ts.StackHead(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return o, ok
	}
	if _, ok := head(app); !ok {
		t.Fatal("a stack without dependencies has a head")
	}
	if err := deps.SetDependencies(ctx, app, []uuid.UUID{db}); err != nil {
		t.Fatal(err)
	}
	if _, ok := head(app); ok {
		t.Fatal("a stack with dependencies must have no shared head")
	}
	if o, ok := head(db); !ok || o.ID != db1.ID {
		t.Fatalf("the dependency's head %v, %v", o.ID, ok)
	}
	if got := objects(); got[db] != db1.ID || got[app] != uuid.Nil {
		t.Fatalf("nothing applied: %v", got)
	}
	withheld, err := deps.Withheld(ctx, agentID)
	if err != nil || len(withheld) != 1 || withheld[0].DeploymentObjectID != app1.ID ||
		withheld[0].WaitingFor[0].Reason != stack.WaitNotApplied {
		t.Fatalf("withheld %+v, %v", withheld, err)
	}
	f.exec(t, `INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES ($1, $2, 'DEPLOY', 'SUCCESS')`, agentID, db1.ID)
	if got := objects(); got[app] != uuid.Nil {
		t.Fatalf("applied but health not reported: %v", got)
	}
	f.exec(t, `INSERT INTO deployment_health (agent_id, deployment_object_id, status, checked_at) VALUES ($1, $2, 'healthy', now())`, agentID, db1.ID)
	if got := objects(); got[app] != app1.ID {
		t.Fatalf("ready: %v", got)
	}
	// The agent reports on app1; db then fails health and app moves on:
	// app2 waits, app1 stays.
	f.exec(t, `INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES ($1, $2, 'DEPLOY', 'SUCCESS')`, agentID, app1.ID)
	f.exec(t, `UPDATE deployment_health SET status = 'failing' WHERE agent_id = $1`, agentID)
	app2 := f.Object(t, app, "app: 2\n")
	if got := objects(); got[app] != app1.ID {
		t.Fatalf("app2 must wait, app1 stay: %v (app2 %s)", got, app2.ID)
	}
	withheld, err = deps.Withheld(ctx, agentID)
	if err != nil || len(withheld) != 1 || withheld[0].DeploymentObjectID != app2.ID ||
		withheld[0].WaitingFor[0].Reason != stack.WaitUnhealthy || *withheld[0].WaitingFor[0].Health != "failing" {
		t.Fatalf("withheld %+v, %v", withheld, err)
	}
	if ok, err := deps.ObjectDependedOn(ctx, db1.ID); err != nil || !ok {
		t.Fatalf("db1 depended on: %v, %v", ok, err)
	}
	if ok, err := deps.ObjectDependedOn(ctx, app1.ID); err != nil || ok {
		t.Fatalf("app1 depended on: %v, %v", ok, err)
	}
}
