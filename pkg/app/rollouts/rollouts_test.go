package rollouts_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts/rolloutstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

func TestMemoryContract(t *testing.T) {
	rolloutstest.RunContract(t, func(*testing.T) rolloutstest.Subject {
		m := rolloutstest.NewMemory()
		return rolloutstest.Subject{Repo: m, Fixtures: rolloutstest.MemoryFixtures{M: m}}
	})
}

type memEnv struct {
	m     *rolloutstest.Memory
	notes *rolloutstest.Notes
	svc   *rollouts.Service
	now   time.Time
}

func newMemEnv() *memEnv {
	e := &memEnv{m: rolloutstest.NewMemory(), notes: &rolloutstest.Notes{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e.svc = rollouts.NewService(e.m.Repos(), e.m, e.notes).WithClock(func() time.Time { return e.now })
	return e
}

func TestRoleScopingAndValidation(t *testing.T) {
	ctx := context.Background()
	e := newMemEnv()
	gen, other := uuid.New(), uuid.New()
	st := e.m.NewStack(&gen)
	pol := rollout.Policy{Strategy: rollout.StrategyWaves, Waves: []rollout.Wave{{Percent: pct(10)}}}
	for _, p := range []identity.Principal{identity.Generator(other), identity.Agent(uuid.New())} {
		if _, err := e.svc.PutPolicy(ctx, p, st, pol); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("%v put a policy: %v", p.Role, err)
		}
		if _, err := e.svc.Status(ctx, p, st); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("%v read the rollout: %v", p.Role, err)
		}
		if _, err := e.svc.Control(ctx, p, st, rollout.ActionPause); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("%v paused: %v", p.Role, err)
		}
		if _, err := e.svc.Rollback(ctx, p, st, rollouts.RollbackInput{ToSequenceID: ptr64(1)}); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("%v rolled back: %v", p.Role, err)
		}
	}
	if _, err := e.svc.PutPolicy(ctx, identity.Generator(gen), st, rollout.Policy{Strategy: "x"}); domain.CodeOf(err) != "rollout_invalid_strategy" {
		t.Fatalf("invalid policy: %v", err)
	}
	if _, err := e.svc.PutPolicy(ctx, identity.Generator(gen), st, pol); err != nil {
		t.Fatal(err)
	}
	if len(e.m.Audits()) != 1 || e.m.Audits()[0].Action != rollouts.ActionPolicyUpdated {
		t.Fatalf("audits %+v", e.m.Audits())
	}
	if _, err := e.svc.Status(ctx, identity.Admin, st); !errors.Is(err, rollouts.ErrNoRollout) {
		t.Fatalf("status without rollout: %v", err)
	}
	if _, err := e.svc.Control(ctx, identity.Admin, st, "explode"); domain.CodeOf(err) != "rollout_action_unknown" {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestAdvanceEmitsEventsAndNotifies(t *testing.T) {
	ctx := context.Background()
	e := newMemEnv()
	st := e.m.NewStack(nil)
	var agents []uuid.UUID
	for range 4 {
		agents = append(agents, e.m.NewAgent(st, nil, nil))
	}
	if _, err := e.svc.PutPolicy(ctx, identity.Admin, st, rollout.Policy{Strategy: rollout.StrategyWaves,
		MaxUnavailable: rollout.MaxUnavailable{Count: 2}, Waves: []rollout.Wave{{Percent: pct(50)}}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.m.Deploy(ctx, identity.Admin, st, deployInput("v: 2\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 10; round++ {
		if _, err := e.svc.AdvanceAll(ctx); err != nil {
			t.Fatal(err)
		}
		for _, a := range e.notes.Agents {
			e.m.Report(a, d.ID, "SUCCESS", "", "healthy")
		}
		e.now = e.now.Add(time.Second)
	}
	r, _ := e.m.Latest(ctx, st)
	if r.State != rollout.StateComplete {
		t.Fatalf("state %s", r.State)
	}
	var types []string
	for _, ev := range e.m.Events() {
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{event.RolloutWaveStarted, event.RolloutWaveStarted, event.RolloutCompleted}) {
		t.Fatalf("events %v", types)
	}
	slices.SortFunc(agents, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	released := slices.Clone(e.notes.Agents)
	slices.SortFunc(released, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	if !slices.Equal(released, agents) {
		t.Fatalf("notified %v, want every agent once", e.notes.Agents)
	}
	if len(e.notes.Stacks) == 0 {
		t.Fatal("completion did not notify the stack (late joiners)")
	}
	log, _ := e.m.Log(ctx, r.ID)
	if log[0].Kind != rollout.KindWaveStarted {
		t.Fatalf("log %+v", log)
	}
}

func TestWakeups(t *testing.T) {
	ctx := context.Background()
	e := newMemEnv()
	st := e.m.NewStack(nil)
	a := e.m.NewAgent(st, nil, nil)
	if _, err := e.svc.PutPolicy(ctx, identity.Admin, st, rollout.Policy{Strategy: rollout.StrategyWaves,
		Waves: []rollout.Wave{{Percent: pct(100)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Deploy(ctx, identity.Admin, st, deployInput("v: 1\n"), nil); err != nil {
		t.Fatal(err)
	}
	w := &waker{}
	wk := rollouts.NewWakeups(e.m, w)
	wk.AgentReported(ctx, a)
	if len(w.stacks) != 0 {
		t.Fatal("woke a rollout that has not released the agent")
	}
	if _, err := e.svc.AdvanceAll(ctx); err != nil {
		t.Fatal(err)
	}
	wk.AgentReported(ctx, a)
	if len(w.stacks) != 1 || w.stacks[0] != st {
		t.Fatalf("woke %v", w.stacks)
	}
	if changed, err := e.svc.WakeStack(ctx, uuid.New()); changed || err != nil {
		t.Fatalf("waking a stack without rollout: %v %v", changed, err)
	}
}

type waker struct{ stacks []uuid.UUID }

func (w *waker) WakeRollout(_ context.Context, id uuid.UUID) { w.stacks = append(w.stacks, id) }

func ptr64(n int64) *int64 { return &n }
