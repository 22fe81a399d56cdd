package rollouts_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/health"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// These tests run the rollout use cases on PostgreSQL with a fleet of
// simulated agents: each round every agent reads its target state from
// the same query the api serves (postgres.TargetStates), applies what is
// new and reports SUCCESS or FAILURE and its deployment health, then the
// scheduler's pass (AdvanceAll) runs. Time is a manual clock.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type notes struct {
	mu     sync.Mutex
	agents map[uuid.UUID]int
	stacks int
}

func (n *notes) AgentChanged(_ context.Context, id uuid.UUID) {
	n.mu.Lock()
	n.agents[id]++
	n.mu.Unlock()
}
func (n *notes) StackChanged(context.Context, uuid.UUID)        { n.mu.Lock(); n.stacks++; n.mu.Unlock() }
func (n *notes) StackLabelChanged(context.Context, string)      {}
func (n *notes) StackAnnotationChanged(context.Context, string) {}

type fleet struct {
	t      *testing.T
	ctx    context.Context
	store  *postgres.Store
	svc    *rollouts.Service
	stacks *stacks.Service
	ts     *postgres.TargetStates
	repo   *postgres.Rollouts
	notes  *notes
	clock  *clock
	stack  uuid.UUID
	agents []uuid.UUID
	// seen records every object each agent's target state ever held.
	seen map[uuid.UUID]map[uuid.UUID]bool
	// bad objects fail on apply; sick ones report failing health.
	bad, sick map[uuid.UUID]bool
	// silent agents never report (to hold a wave).
	silent map[uuid.UUID]bool
}

func newFleet(t *testing.T, n int, label func(i int) string) *fleet {
	t.Helper()
	ctx := context.Background()
	store := postgres.NewStore(pgtest.New(t))
	nt := &notes{agents: map[uuid.UUID]int{}}
	st := stacks.NewService(postgres.StackRepos(store), nt)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := &fleet{t: t, ctx: ctx, store: store, stacks: st, ts: postgres.NewTargetStates(store),
		repo: postgres.NewRollouts(store), notes: nt, clock: c,
		svc:  rollouts.NewService(postgres.RolloutRepos(store), st, nt).WithClock(c.now),
		seen: map[uuid.UUID]map[uuid.UUID]bool{}, bad: map[uuid.UUID]bool{}, sick: map[uuid.UUID]bool{},
		silent: map[uuid.UUID]bool{}}
	s, err := st.Create(ctx, identity.Admin, stacks.CreateInput{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	f.stack = s.ID
	agents, labels := postgres.NewAgents(store), postgres.NewAgentLabels(store)
	for i := range n {
		a := agent.Agent{Name: fmt.Sprintf("a%03d", i), ClusterName: "c", Status: agent.StatusActive}
		if err := agents.CreateAgent(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if _, err := agents.AddAgentTarget(ctx, a.ID, s.ID); err != nil {
			t.Fatal(err)
		}
		if l := label(i); l != "" {
			if _, err := labels.AddLabel(ctx, a.ID, l); err != nil {
				t.Fatal(err)
			}
		}
		f.agents = append(f.agents, a.ID)
		f.seen[a.ID] = map[uuid.UUID]bool{}
	}
	return f
}

func (f *fleet) policy(p rollout.Policy) {
	f.t.Helper()
	if _, err := f.svc.PutPolicy(f.ctx, identity.Admin, f.stack, p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) deploy(yaml string) stack.DeploymentObject {
	f.t.Helper()
	d, err := f.stacks.CreateDeploymentObject(f.ctx, identity.Admin, f.stack, stacks.DeploymentInput{YAMLContent: yaml})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// current is the object of the stack in the agent's target state.
func (f *fleet) current(id uuid.UUID) (stack.DeploymentObject, bool) {
	f.t.Helper()
	snap, err := f.ts.AgentState(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, o := range snap.Objects {
		if o.StackID == f.stack {
			return o.DeploymentObject, true
		}
	}
	return stack.DeploymentObject{}, false
}

// round: every agent applies its target state and reports, then the
// scheduler's pass runs.
func (f *fleet) round() {
	f.t.Helper()
	events, hr := postgres.NewAgentEvents(f.store), postgres.NewDeploymentHealth(f.store)
	for _, id := range f.agents {
		o, ok := f.current(id)
		if !ok {
			continue
		}
		f.seen[id][o.ID] = true
		if f.silent[id] {
			continue
		}
		status, hs := "SUCCESS", "healthy"
		switch {
		case f.bad[o.ID]:
			status, hs = "FAILURE", "failing"
		case f.sick[o.ID]:
			hs = "failing"
		}
		msg := "simulated"
		if err := events.CreateAgentEvent(f.ctx, &agent.Event{AgentID: id, DeploymentObjectID: o.ID,
			EventType: "DEPLOY", Status: status, Message: &msg}); err != nil {
			f.t.Fatal(err)
		}
		if _, err := hr.UpsertHealth(f.ctx, health.Record{AgentID: id, DeploymentObjectID: o.ID, Status: hs,
			CheckedAt: f.clock.now()}); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := f.svc.AdvanceAll(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

// runUntil runs rounds (each a second later) until the rollout of d is
// no longer progressing; at most limit rounds.
func (f *fleet) runUntil(d stack.DeploymentObject, limit int) rollout.Rollout {
	f.t.Helper()
	for range limit {
		f.round()
		f.clock.add(time.Second)
		r := f.rollout()
		if r.DeploymentObjectID == d.ID && r.State != rollout.StateProgressing {
			return r
		}
	}
	f.t.Fatalf("rollout of %d still progressing after %d rounds", d.SequenceID, limit)
	return rollout.Rollout{}
}

func (f *fleet) rollout() rollout.Rollout {
	f.t.Helper()
	r, err := f.repo.Latest(f.ctx, f.stack)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fleet) log(id uuid.UUID) []rollout.Transition {
	f.t.Helper()
	l, err := f.repo.Log(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return l
}

// checkLog replays the event log: waves start in order, agents are
// released only in the current wave, and the unavailable agents of a
// wave (released, neither healthy nor failed) never exceed the limit.
func checkLog(t *testing.T, p rollout.Policy, waveSize map[int]int, log []rollout.Transition) {
	t.Helper()
	current := -1
	unavailable := map[int]int{}
	state := map[uuid.UUID]string{}
	for i, e := range log {
		switch e.Kind {
		case rollout.KindWaveStarted:
			if e.Wave != current+1 {
				t.Fatalf("entry %d: wave %d started after wave %d", i, e.Wave, current)
			}
			current = e.Wave
		case rollout.KindReleased:
			if e.Wave != current {
				t.Fatalf("entry %d: agent released in wave %d while wave %d is current", i, e.Wave, current)
			}
			if state[*e.AgentID] != "" {
				t.Fatalf("entry %d: agent %s released twice", i, e.AgentID)
			}
			state[*e.AgentID] = "released"
			unavailable[e.Wave]++
			if limit := p.MaxUnavailable.Of(waveSize[e.Wave]); unavailable[e.Wave] > limit {
				t.Fatalf("entry %d: wave %d has %d unavailable agents, max_unavailable %d", i, e.Wave, unavailable[e.Wave], limit)
			}
		case rollout.KindApplied:
			if state[*e.AgentID] != "released" {
				t.Fatalf("entry %d: applied before released", i)
			}
			state[*e.AgentID] = "applied"
		case rollout.KindHealthy, rollout.KindFailed:
			if s := state[*e.AgentID]; s != "released" && s != "applied" {
				t.Fatalf("entry %d: %s from state %q", i, e.Kind, s)
			}
			state[*e.AgentID] = e.Kind
			unavailable[e.Wave]--
		}
	}
}

func waveSizes(t *testing.T, f *fleet, id uuid.UUID) map[int]int {
	t.Helper()
	agents, err := f.repo.Agents(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, a := range agents {
		out[a.Wave]++
	}
	return out
}

func pct(n int) *int { return &n }

func TestWavesReleaseInOrderWithinMaxUnavailable(t *testing.T) {
	f := newFleet(t, 40, func(i int) string {
		if i < 3 {
			return "canary"
		}
		return ""
	})
	v1 := f.deploy("kind: ConfigMap\nmetadata: {name: v1}\n")
	pol := rollout.Policy{Strategy: rollout.StrategyWaves, MaxUnavailable: rollout.MaxUnavailable{Count: 25, Percent: true},
		MinHealthySeconds: 2, Waves: []rollout.Wave{
			{Name: "canary", Selector: &rollout.Selector{Labels: []string{"canary"}}},
			{Name: "half", Percent: pct(50)},
		}}
	f.policy(pol)
	// v1 predates the policy: every agent has it.
	for _, id := range f.agents {
		if o, ok := f.current(id); !ok || o.ID != v1.ID {
			t.Fatalf("agent %s: want v1 before the rollout, got %v", id, o.SequenceID)
		}
	}
	v2 := f.deploy("kind: ConfigMap\nmetadata: {name: v2}\n")
	// No agent is released yet: all keep v1 (never a gap).
	for _, id := range f.agents {
		if o, _ := f.current(id); o.ID != v1.ID {
			t.Fatalf("agent %s got v2 before any wave", id)
		}
	}
	r := f.runUntil(v2, 200)
	if r.State != rollout.StateComplete {
		t.Fatalf("state %s (%v)", r.State, r.Reason)
	}
	sizes := waveSizes(t, f, r.ID)
	if sizes[0] != 3 || sizes[1] != 19 || sizes[2] != 18 {
		t.Fatalf("wave sizes %v, want canary 3, half 19 (50%% of 37 rounded up), remaining 18", sizes)
	}
	log := f.log(r.ID)
	checkLog(t, r.Policy, sizes, log)
	if !slices.ContainsFunc(log, func(e rollout.Transition) bool { return e.Kind == rollout.KindCompleted }) {
		t.Fatal("no completed entry")
	}
	for _, id := range f.agents {
		if o, _ := f.current(id); o.ID != v2.ID {
			t.Fatalf("agent %s ends on %d, want v2", id, o.SequenceID)
		}
		if f.notes.agents[id] == 0 {
			t.Fatalf("agent %s was released without a change notification", id)
		}
	}
}

func TestFailureHaltsAndLaterWavesNeverSeeTheObject(t *testing.T) {
	f := newFleet(t, 12, func(i int) string {
		if i < 2 {
			return "canary"
		}
		return ""
	})
	v1 := f.deploy("v: 1\n")
	f.policy(rollout.Policy{Strategy: rollout.StrategyWaves, MaxUnavailable: rollout.MaxUnavailable{Count: 2},
		Waves: []rollout.Wave{{Name: "canary", Selector: &rollout.Selector{Labels: []string{"canary"}}}}})
	v2 := f.deploy("v: 2\n")
	f.bad[v2.ID] = true
	r := f.runUntil(v2, 50)
	if r.State != rollout.StateHalted || r.Reason == nil {
		t.Fatalf("state %s, want halted with a reason", r.State)
	}
	for i, id := range f.agents {
		if i < 2 {
			if !f.seen[id][v2.ID] {
				t.Fatalf("canary %d never received v2", i)
			}
			continue
		}
		if f.seen[id][v2.ID] {
			t.Fatalf("agent %d outside the canary wave saw the bad object", i)
		}
		if o, _ := f.current(id); o.ID != v1.ID {
			t.Fatalf("agent %d lost v1", i)
		}
	}
	checkLog(t, r.Policy, waveSizes(t, f, r.ID), f.log(r.ID))
	// More rounds change nothing: halted stays halted.
	f.round()
	if got := f.rollout(); got.State != rollout.StateHalted {
		t.Fatalf("state %s after a halted round", got.State)
	}
	// Rollback restores v1 everywhere as a new object.
	seq := v1.SequenceID
	rb, err := f.svc.Rollback(f.ctx, identity.Admin, f.stack, rollouts.RollbackInput{ToSequenceID: &seq})
	if err != nil {
		t.Fatal(err)
	}
	if rb.YAMLContent != v1.YAMLContent || rb.RolledBackFrom == nil || *rb.RolledBackFrom != v2.ID || rb.SequenceID <= v2.SequenceID {
		t.Fatalf("rollback object %+v", rb)
	}
	if got, _ := f.repo.Latest(f.ctx, f.stack); got.State != rollout.StateRolledBack {
		t.Fatalf("the halted rollout is %s after the rollback, want rolled_back", got.State)
	}
	for i, id := range f.agents {
		if o, _ := f.current(id); o.ID != rb.ID {
			t.Fatalf("agent %d: target state %d, want the rollback object", i, o.SequenceID)
		}
	}
}

func TestOnFailureRollback(t *testing.T) {
	f := newFleet(t, 6, func(i int) string { return "" })
	v1 := f.deploy("v: 1\n")
	f.policy(rollout.Policy{Strategy: rollout.StrategyWaves, OnFailure: rollout.OnFailureRollback,
		Waves: []rollout.Wave{{Name: "first", Percent: pct(34)}}})
	v2 := f.deploy("v: 2\n")
	f.sick[v2.ID] = true
	r := f.runUntil(v2, 50)
	if r.State != rollout.StateRolledBack {
		t.Fatalf("state %s, want rolled_back", r.State)
	}
	objs, err := f.stacks.DeploymentObjects(f.ctx, identity.Admin, f.stack)
	if err != nil {
		t.Fatal(err)
	}
	rb := objs[0]
	if rb.YAMLContent != v1.YAMLContent || rb.RolledBackFrom == nil || *rb.RolledBackFrom != v2.ID {
		t.Fatalf("newest object %+v, want the rollback to v1", rb)
	}
	sizes := waveSizes(t, f, r.ID)
	for i, id := range f.agents {
		if o, _ := f.current(id); o.ID != rb.ID {
			t.Fatalf("agent %d: %d, want the rollback object", i, o.SequenceID)
		}
	}
	checkLog(t, r.Policy, sizes, f.log(r.ID))
}

func TestPauseResumePromoteAbort(t *testing.T) {
	f := newFleet(t, 8, func(i int) string { return "" })
	f.deploy("v: 1\n")
	f.policy(rollout.Policy{Strategy: rollout.StrategyWaves, Waves: []rollout.Wave{{Name: "a", Percent: pct(25)}, {Name: "b", Percent: pct(50)}}})
	v2 := f.deploy("v: 2\n")
	ctl := func(action string, want string) rollouts.Status {
		t.Helper()
		st, err := f.svc.Control(f.ctx, identity.Admin, f.stack, action)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if st.State != want {
			t.Fatalf("%s: state %s, want %s", action, st.State, want)
		}
		return st
	}
	ctl(rollout.ActionPause, rollout.StatePaused)
	f.round()
	for _, id := range f.agents {
		if f.seen[id][v2.ID] {
			t.Fatal("a paused rollout released an agent")
		}
	}
	if _, err := f.svc.Control(f.ctx, identity.Admin, f.stack, rollout.ActionPause); err == nil {
		t.Fatal("pausing a paused rollout succeeded")
	}
	ctl(rollout.ActionResume, rollout.StateProgressing)
	// Promote wave a at once (released whatever their health): wave b starts.
	st := ctl(rollout.ActionPromote, rollout.StateProgressing)
	if st.CurrentWave != 1 || st.Waves[0].Counts["pending"] != 0 {
		t.Fatalf("after promote: wave %d, wave a %v", st.CurrentWave, st.Waves[0].Counts)
	}
	ctl(rollout.ActionAbort, rollout.StateAborted)
	released := map[uuid.UUID]bool{}
	agents, _ := f.repo.Agents(f.ctx, st.ID)
	for _, a := range agents {
		if a.ReleasedAt != nil {
			released[a.AgentID] = true
		}
	}
	f.round()
	f.round()
	for _, id := range f.agents {
		o, _ := f.current(id)
		if released[id] != (o.ID == v2.ID) {
			t.Fatalf("after abort agent %s holds %d (released %v)", id, o.SequenceID, released[id])
		}
	}
	if _, err := f.svc.Control(f.ctx, identity.Admin, f.stack, rollout.ActionResume); err == nil {
		t.Fatal("resuming an aborted rollout succeeded")
	}
}

// Two scheduler replicas advance the same rollouts concurrently; one is
// cancelled mid-way. Nothing is lost or done twice: the log is
// consistent and the rollout completes.
func TestReplicasAdvanceConcurrently(t *testing.T) {
	f := newFleet(t, 30, func(i int) string { return "" })
	f.deploy("v: 1\n")
	f.policy(rollout.Policy{Strategy: rollout.StrategyWaves, MaxUnavailable: rollout.MaxUnavailable{Count: 3},
		Waves: []rollout.Wave{{Percent: pct(10)}, {Percent: pct(50)}}})
	v2 := f.deploy("v: 2\n")
	other := rollouts.NewService(postgres.RolloutRepos(f.store), f.stacks, f.notes).WithClock(f.clock.now)
	killed, kill := context.WithCancel(f.ctx)
	defer kill()
	for round := 0; round < 100; round++ {
		f.round() // replica one, inside
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() { _, _ = f.svc.AdvanceAll(f.ctx) })
		}
		wg.Go(func() { _, _ = other.AdvanceAll(killed) })
		if round == 5 {
			kill()
		}
		wg.Wait()
		f.clock.add(time.Second)
		if f.rollout().State != rollout.StateProgressing {
			break
		}
	}
	r := f.rollout()
	if r.DeploymentObjectID != v2.ID || r.State != rollout.StateComplete {
		t.Fatalf("state %s", r.State)
	}
	checkLog(t, r.Policy, waveSizes(t, f, r.ID), f.log(r.ID))
}

func TestNewObjectSupersedesRollout(t *testing.T) {
	f := newFleet(t, 4, func(i int) string { return "" })
	v1 := f.deploy("v: 1\n")
	f.policy(rollout.Policy{Strategy: rollout.StrategyWaves, Waves: []rollout.Wave{{Percent: pct(25)}}})
	v2 := f.deploy("v: 2\n")
	f.silent[f.agents[0]], f.silent[f.agents[1]], f.silent[f.agents[2]], f.silent[f.agents[3]] = true, true, true, true
	f.round()
	first, _ := f.repo.Latest(f.ctx, f.stack)
	v3 := f.deploy("v: 3\n")
	old, _, _, err := f.repo.Lock(f.ctx, first.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if old.State != rollout.StateSuperseded {
		t.Fatalf("old rollout %s", old.State)
	}
	// The agent released in v2's wave keeps v2, the others v1, until v3's
	// waves reach them.
	for _, id := range f.agents {
		o, _ := f.current(id)
		if o.ID != v1.ID && o.ID != v2.ID {
			t.Fatalf("agent holds %d", o.SequenceID)
		}
	}
	clear(f.silent)
	if r := f.runUntil(v3, 50); r.State != rollout.StateComplete {
		t.Fatalf("v3 rollout %s", r.State)
	}
}

func deployInput(yaml string) stacks.DeploymentInput {
	return stacks.DeploymentInput{YAMLContent: yaml}
}
