package tasks

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

type nopChanges struct{}

func (nopChanges) AgentChanged(context.Context, uuid.UUID)        {}
func (nopChanges) StackChanged(context.Context, uuid.UUID)        {}
func (nopChanges) StackLabelChanged(context.Context, string)      {}
func (nopChanges) StackAnnotationChanged(context.Context, string) {}

// TestRolloutWakeTask: with the periodic advance hourly (it runs once at
// start-up, before the object exists), a wake-up task enqueued as the api
// does after an agent report advances the stack's rollout through asynq.
func TestRolloutWakeTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setSettings(func(c *config.Settings) { c.Scheduler.RolloutIntervalSeconds = 3600 })
	st := stacks.NewService(postgres.StackRepos(e.store), nopChanges{})
	e.rollouts = rollouts.NewService(postgres.RolloutRepos(e.store), st, nopChanges{})
	s, err := st.Create(e.ctx, identity.Admin, stacks.CreateInput{Name: "waves"})
	if err != nil {
		t.Fatal(err)
	}
	a := agent.Agent{Name: "a", ClusterName: "c", Status: agent.StatusActive}
	agents := postgres.NewAgents(e.store)
	if err := agents.CreateAgent(e.ctx, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := agents.AddAgentTarget(e.ctx, a.ID, s.ID); err != nil {
		t.Fatal(err)
	}
	hundred := 100
	if _, err := e.rollouts.PutPolicy(e.ctx, identity.Admin, s.ID, rollout.Policy{Strategy: rollout.StrategyWaves,
		Waves: []rollout.Wave{{Percent: &hundred}}}); err != nil {
		t.Fatal(err)
	}
	rep := e.startReplica()
	e.eventually(10*time.Second, "the start-up advance", func() bool {
		return testutil.ToFloat64(rep.metrics.tasks.WithLabelValues(asynqadapter.TypeRolloutAdvance, "ok")) >= 1
	})
	if _, err := st.CreateDeploymentObject(e.ctx, identity.Admin, s.ID, stacks.DeploymentInput{YAMLContent: "k: v\n"}); err != nil {
		t.Fatal(err)
	}
	repo := postgres.NewRollouts(e.store)
	r, err := repo.Latest(e.ctx, s.ID)
	if err != nil || r.CurrentWave != -1 {
		t.Fatalf("rollout before the wake-up: %+v %v", r, err)
	}
	enq := asynqadapter.NewEnqueuer(e.conn, e.queue, e.log)
	t.Cleanup(func() { _ = enq.Close() })
	enq.WakeRollout(e.ctx, s.ID)
	e.eventually(10*time.Second, "the wake-up released the agent", func() bool {
		ags, err := repo.Agents(e.ctx, r.ID)
		return err == nil && len(ags) == 1 && ags[0].ReleasedAt != nil
	})
}
