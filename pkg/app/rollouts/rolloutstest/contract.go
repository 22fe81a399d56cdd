package rolloutstest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// Fixtures makes the rows the contract needs that other repositories own.
type Fixtures interface {
	// Stack returns a new live stack.
	Stack(t *testing.T) uuid.UUID
	// Agent returns a new ACTIVE agent associated with the stack.
	Agent(t *testing.T, stackID uuid.UUID, labels ...string) uuid.UUID
	// Object creates a deployment object on the stack (rolledBackFrom
	// non-nil: a rollback object) and returns its id.
	Object(t *testing.T, stackID uuid.UUID, rolledBackFrom *uuid.UUID) uuid.UUID
	// Report records the agent's event status and health for the object.
	Report(t *testing.T, agentID, objectID uuid.UUID, status, health string)
}

// Repository is everything the contract checks.
type Repository interface {
	rollouts.PolicyRepository
	rollouts.RolloutRepository
	rollouts.AgentWaiters
}

// Subject is one implementation under test, with its fixtures.
type Subject struct {
	Repo     Repository
	Fixtures Fixtures
}

// RunContract checks the rules every implementation of the rollout ports
// keeps; newSubject returns a fresh, empty one.
func RunContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	waves := rollout.Policy{Strategy: rollout.StrategyWaves, MaxUnavailable: rollout.MaxUnavailable{Count: 1},
		OnFailure: rollout.OnFailureHalt, Waves: []rollout.Wave{{Name: "one", Percent: ptr(50)}}}

	t.Run("policy defaults, put and get", func(t *testing.T) {
		s := newSubject(t)
		st := s.Fixtures.Stack(t)
		p, err := s.Repo.Policy(ctx, st)
		if err != nil || p.Strategy != rollout.StrategyAll {
			t.Fatalf("default %+v %v", p, err)
		}
		if err := s.Repo.PutPolicy(ctx, st, waves); err != nil {
			t.Fatal(err)
		}
		p, err = s.Repo.Policy(ctx, st)
		if err != nil || p.Strategy != rollout.StrategyWaves || len(p.Waves) != 1 || *p.Waves[0].Percent != 50 {
			t.Fatalf("stored %+v %v", p, err)
		}
	})

	t.Run("objects start rollouts only under strategy waves", func(t *testing.T) {
		s := newSubject(t)
		st := s.Fixtures.Stack(t)
		first := s.Fixtures.Object(t, st, nil)
		if _, err := s.Repo.Latest(ctx, st); !errors.Is(err, rollouts.ErrNoRollout) {
			t.Fatalf("rollout without a policy: %v", err)
		}
		if err := s.Repo.PutPolicy(ctx, st, waves); err != nil {
			t.Fatal(err)
		}
		second := s.Fixtures.Object(t, st, nil)
		r, err := s.Repo.Latest(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if r.DeploymentObjectID != second || r.PreviousObjectID == nil || *r.PreviousObjectID != first ||
			r.State != rollout.StateProgressing || r.CurrentWave != -1 || r.Policy.Waves[0].Name != "one" {
			t.Fatalf("rollout %+v", r)
		}
		ids, err := s.Repo.Progressing(ctx, uuid.Nil, 10)
		if err != nil || !slices.Contains(ids, r.ID) {
			t.Fatalf("progressing %v %v", ids, err)
		}
		if after, _ := s.Repo.Progressing(ctx, r.ID, 10); slices.Contains(after, r.ID) {
			t.Fatalf("progressing after its own id lists it: %v", after)
		}
		third := s.Fixtures.Object(t, st, nil)
		old, _, ok, err := s.Repo.Lock(ctx, r.ID, false)
		if err != nil || !ok || old.State != rollout.StateSuperseded || old.FinishedAt == nil {
			t.Fatalf("superseded rollout %+v %v", old, err)
		}
		latest, _ := s.Repo.Latest(ctx, st)
		if latest.DeploymentObjectID != third {
			t.Fatal("the newest object has no rollout")
		}
		rb := s.Fixtures.Object(t, st, &third)
		after, _ := s.Repo.Latest(ctx, st)
		if after.ID != latest.ID || after.State != rollout.StateRolledBack {
			t.Fatalf("after a rollback object (%s): %+v", rb, after)
		}
	})

	t.Run("save, lock with observations, agents, awaiting", func(t *testing.T) {
		s := newSubject(t)
		st := s.Fixtures.Stack(t)
		a1, a2 := s.Fixtures.Agent(t, st, "canary"), s.Fixtures.Agent(t, st)
		if err := s.Repo.PutPolicy(ctx, st, waves); err != nil {
			t.Fatal(err)
		}
		obj := s.Fixtures.Object(t, st, nil)
		r, _ := s.Repo.Latest(ctx, st)
		cands, err := s.Repo.Candidates(ctx, st)
		if err != nil || len(cands) != 2 {
			t.Fatalf("candidates %+v %v", cands, err)
		}
		for _, c := range cands {
			if c.ID == a1 && !slices.Contains(c.Labels, "canary") {
				t.Fatalf("labels of %s: %v", a1, c.Labels)
			}
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		reason := "why"
		step := rollout.Step{State: rollout.StateProgressing, CurrentWave: 0,
			Agents: []rollout.Agent{{AgentID: a1, Wave: 0, ReleasedAt: &now}, {AgentID: a2, Wave: 1}},
			Transitions: []rollout.Transition{{Kind: rollout.KindWaveStarted, Wave: 0, At: now},
				{Kind: rollout.KindReleased, AgentID: &a1, Wave: 0, At: now}}}
		if err := s.Repo.Save(ctx, r.ID, step); err != nil {
			t.Fatal(err)
		}
		s.Fixtures.Report(t, a1, obj, "SUCCESS", "healthy")
		got, agents, ok, err := s.Repo.Lock(ctx, r.ID, true)
		if err != nil || !ok || got.CurrentWave != 0 || len(agents) != 2 {
			t.Fatalf("lock %+v %v %v", got, agents, err)
		}
		if agents[0].AgentID != a1 || agents[0].LastEvent != "SUCCESS" || agents[0].Health != "healthy" ||
			agents[0].ReleasedAt == nil || !agents[0].ReleasedAt.Equal(now) || agents[1].LastEvent != "" {
			t.Fatalf("agents %+v", agents)
		}
		waiting, err := s.Repo.AwaitingAgent(ctx, a1)
		if err != nil || len(waiting) != 1 || waiting[0] != st {
			t.Fatalf("awaiting %v %v", waiting, err)
		}
		if w, _ := s.Repo.AwaitingAgent(ctx, a2); len(w) != 0 {
			t.Fatalf("an unreleased agent awaited: %v", w)
		}
		agents[0].HealthyAt = &now
		if err := s.Repo.Save(ctx, r.ID, rollout.Step{State: rollout.StateHalted, CurrentWave: 0, Reason: &reason,
			Agents: agents[:1]}); err != nil {
			t.Fatal(err)
		}
		plain, err := s.Repo.Agents(ctx, r.ID)
		if err != nil || len(plain) != 2 || plain[0].HealthyAt == nil || plain[0].LastEvent != "" {
			t.Fatalf("agents after save %+v %v", plain, err)
		}
		halted, _ := s.Repo.Latest(ctx, st)
		if halted.State != rollout.StateHalted || halted.Reason == nil || *halted.Reason != reason || halted.FinishedAt != nil {
			t.Fatalf("halted %+v", halted)
		}
		if ids, _ := s.Repo.Progressing(ctx, uuid.Nil, 10); slices.Contains(ids, r.ID) {
			t.Fatal("a halted rollout is listed as progressing")
		}
	})

	t.Run("lock of an unknown rollout", func(t *testing.T) {
		s := newSubject(t)
		if _, _, ok, err := s.Repo.Lock(ctx, uuid.New(), true); ok || err != nil {
			t.Fatalf("skip-locked: %v %v", ok, err)
		}
		if _, _, _, err := s.Repo.Lock(ctx, uuid.New(), false); !errors.Is(err, rollouts.ErrNoRollout) {
			t.Fatalf("waiting lock: %v", err)
		}
	})
}

func ptr(n int) *int { return &n }

// MemoryFixtures are the fixtures over a Memory.
type MemoryFixtures struct{ M *Memory }

// Stack adds a stack.
func (f MemoryFixtures) Stack(*testing.T) uuid.UUID { return f.M.NewStack(nil) }

// Agent adds an agent associated with the stack.
func (f MemoryFixtures) Agent(_ *testing.T, stackID uuid.UUID, labels ...string) uuid.UUID {
	return f.M.NewAgent(stackID, labels, map[string]string{})
}

// Object deploys an object.
func (f MemoryFixtures) Object(t *testing.T, stackID uuid.UUID, from *uuid.UUID) uuid.UUID {
	d, err := f.M.Deploy(context.Background(), adminPrincipal, stackID, deployInput("k: v\n", from), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// Report records an observation.
func (f MemoryFixtures) Report(_ *testing.T, agentID, objectID uuid.UUID, status, health string) {
	f.M.Report(agentID, objectID, status, "", health)
}
