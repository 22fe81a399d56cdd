package targetstate

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// fakeStore is an in-memory SnapshotReader for the index's pure logic; the real
// PostgreSQL store is exercised through the api's HTTP tests.
type fakeStore struct {
	mu     sync.Mutex
	agents map[uuid.UUID]Snapshot
	heads  map[uuid.UUID]stack.DeploymentObject
	loads  atomic.Int64
	headN  atomic.Int64
	// during runs inside AgentState, after the snapshot was taken.
	during func()
}

func (f *fakeStore) AgentState(_ context.Context, id uuid.UUID) (Snapshot, error) {
	f.loads.Add(1)
	f.mu.Lock()
	s, ok := f.agents[id]
	during := f.during
	f.during = nil
	f.mu.Unlock()
	if during != nil {
		during()
	}
	if !ok {
		return Snapshot{}, domain.NotFound("Agent not found")
	}
	return s, nil
}

func (f *fakeStore) StackHead(_ context.Context, id uuid.UUID) (stack.DeploymentObject, bool, error) {
	f.headN.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.heads[id]
	return o, ok, nil
}

func obj(stackID uuid.UUID, seq int64) stack.DeploymentObject {
	return stack.DeploymentObject{ID: uuid.New(), StackID: stackID, SequenceID: seq, YAMLContent: "kind: ConfigMap"}
}

func newFixture(t *testing.T) (*Index, *fakeStore) {
	t.Helper()
	f := &fakeStore{agents: map[uuid.UUID]Snapshot{}, heads: map[uuid.UUID]stack.DeploymentObject{}}
	i := NewIndex(f, IndexOptions{MaxLoads: 2})
	i.SetTrusted(context.Background(), true)
	return i, f
}

func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(50 * time.Millisecond):
		return false
	}
}

func TestIndexServesUnchangedAgentsFromMemory(t *testing.T) {
	t.Parallel()
	i, f := newFixture(t)
	s := uuid.New()
	a := uuid.New()
	f.agents[a] = Snapshot{Status: agent.StatusActive, Stacks: []uuid.UUID{s}, Objects: []Object{{DeploymentObject: obj(s, 1)}}}
	ctx := context.Background()
	v1, err := i.Get(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	r1 := v1.Result(false, "")
	for range 100 {
		v, _ := i.Get(ctx, a)
		if r := v.Result(false, r1.ETag); !r.NotModified {
			t.Fatal("unchanged agent: ETag changed")
		}
	}
	if n := f.loads.Load(); n != 1 {
		t.Fatalf("101 requests made %d loads, want 1", n)
	}
	if _, err := i.Get(ctx, uuid.New()); !domainIs(err, domain.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
}

func domainIs(err error, kind error) bool {
	de, ok := err.(*domain.Error)
	return ok && de.Kind == kind
}

func TestIndexStackChangePatchesOnlyAffectedAgents(t *testing.T) {
	t.Parallel()
	i, f := newFixture(t)
	ctx := context.Background()
	s1, s2 := uuid.New(), uuid.New()
	var holders []uuid.UUID
	for n := range 50 {
		a := uuid.New()
		stacks := []uuid.UUID{s2}
		if n%2 == 0 {
			stacks = []uuid.UUID{s1, s2}
			holders = append(holders, a)
		}
		f.agents[a] = Snapshot{Status: agent.StatusActive, Stacks: stacks}
		if _, err := i.Get(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	other := uuid.New()
	f.agents[other] = Snapshot{Status: agent.StatusActive, Stacks: []uuid.UUID{s2}}
	v, _ := i.Get(ctx, other)
	otherETag := v.Result(false, "").ETag
	chOther, cancelOther, ok := i.Subscribe(other)
	defer cancelOther()
	chHolder, cancelHolder, _ := i.Subscribe(holders[0])
	defer cancelHolder()
	if !ok {
		t.Fatal("trusted index must not ask to poll")
	}
	loads := f.loads.Load()

	head := obj(s1, 7)
	f.heads[s1] = head
	i.Apply(ctx, Change{Kind: ChangeStack, ID: s1})

	if f.headN.Load() != 1 {
		t.Fatalf("stack head read %d times, want once", f.headN.Load())
	}
	if f.loads.Load() != loads {
		t.Fatalf("a stack change reloaded %d agents, want 0 (patched in place)", f.loads.Load()-loads)
	}
	if !woken(chHolder) {
		t.Fatal("agent holding the stack was not woken")
	}
	if woken(chOther) {
		t.Fatal("agent without the stack was woken")
	}
	for _, a := range holders {
		v, _ := i.Get(ctx, a)
		r := v.Result(false, "")
		if len(r.Objects) != 1 || r.Objects[0].ID != head.ID {
			t.Fatalf("holder %s target state = %+v, want the new head", a, r.Objects)
		}
	}
	if v, _ := i.Get(ctx, other); v.Result(false, "").ETag != otherETag {
		t.Fatal("unaffected agent's ETag moved")
	}
	// An older head (a late, reordered notification) never replaces a newer one.
	f.heads[s1] = obj(s1, 3)
	i.Apply(ctx, Change{Kind: ChangeStack, ID: s1})
	v, _ = i.Get(ctx, holders[0])
	if r := v.Result(false, ""); r.Objects[0].ID != head.ID {
		t.Fatal("an older head replaced a newer one")
	}
	// A deleted stack drops its agents, which reload.
	delete(f.heads, s1)
	i.Apply(ctx, Change{Kind: ChangeStack, ID: s1})
	if got := i.Len(); got != 51-len(holders) {
		t.Fatalf("after deleting the stack %d entries left, want %d", got, 51-len(holders))
	}
}

func TestIndexLabelAnnotationAndAckChanges(t *testing.T) {
	t.Parallel()
	i, f := newFixture(t)
	ctx := context.Background()
	s := uuid.New()
	prod, dev, annotated := uuid.New(), uuid.New(), uuid.New()
	o := obj(s, 1)
	f.agents[prod] = Snapshot{Status: agent.StatusActive, Labels: []string{"env:prod"}, Stacks: []uuid.UUID{s},
		Objects: []Object{{DeploymentObject: o}}}
	f.agents[dev] = Snapshot{Status: agent.StatusActive, Labels: []string{"env:dev"}}
	f.agents[annotated] = Snapshot{Status: agent.StatusActive, AnnotationKeys: []string{"tier"}}
	for _, a := range []uuid.UUID{prod, dev, annotated} {
		if _, err := i.Get(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	chDev, cancel, _ := i.Subscribe(dev)
	defer cancel()
	chProd, cancelProd, _ := i.Subscribe(prod)
	defer cancelProd()

	i.Apply(ctx, Change{Kind: ChangeLabel, Key: "env:prod"})
	if !woken(chProd) || woken(chDev) {
		t.Fatal("label change must wake exactly the agents carrying the label")
	}
	if i.Len() != 2 {
		t.Fatalf("label change left %d entries, want 2", i.Len())
	}
	i.Apply(ctx, Change{Kind: ChangeAnnotation, Key: "tier"})
	if i.Len() != 1 {
		t.Fatalf("annotation change left %d entries, want 1", i.Len())
	}

	// An acknowledgement hides the object without a reload.
	v, _ := i.Get(ctx, prod)
	before := v.Result(false, "")
	full := v.Result(true, "")
	loads := f.loads.Load()
	i.Apply(ctx, Change{Kind: ChangeAck, ID: prod, Object: o.ID})
	if !woken(chProd) {
		t.Fatal("ack did not wake the agent")
	}
	v, _ = i.Get(ctx, prod)
	after := v.Result(false, "")
	if len(after.Objects) != 0 || after.ETag == before.ETag {
		t.Fatalf("after ack: %+v", after)
	}
	if r := v.Result(true, full.ETag); !r.NotModified {
		t.Fatal("mode=full must still carry the acknowledged object")
	}
	if f.loads.Load() != loads {
		t.Fatal("ack caused a reload")
	}
}

// A change applied while an agent is being loaded must not leave the
// pre-change snapshot cached.
func TestIndexLoadRacingAChangeIsNotCached(t *testing.T) {
	t.Parallel()
	i, f := newFixture(t)
	ctx := context.Background()
	s := uuid.New()
	a := uuid.New()
	f.agents[a] = Snapshot{Status: agent.StatusActive, Stacks: []uuid.UUID{s}}
	newer := Snapshot{Status: agent.StatusActive, Stacks: []uuid.UUID{s}, Objects: []Object{{DeploymentObject: obj(s, 2)}}}
	f.during = func() {
		// The commit lands after the read: the store now holds the new
		// state and the notification is applied before the load finishes.
		f.mu.Lock()
		f.agents[a] = newer
		f.mu.Unlock()
		i.Apply(ctx, Change{Kind: ChangeAgent, ID: a})
	}
	v, err := i.Get(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if r := v.Result(false, ""); len(r.Objects) != 1 {
		t.Fatalf("load that raced a change returned the stale snapshot: %+v", r.Objects)
	}
	if f.loads.Load() != 2 {
		t.Fatalf("loads = %d, want 2 (the racing one discarded)", f.loads.Load())
	}
}

func TestIndexResyncWakesOnlyChangedAgents(t *testing.T) {
	t.Parallel()
	i, f := newFixture(t)
	ctx := context.Background()
	s := uuid.New()
	same, moved := uuid.New(), uuid.New()
	f.agents[same] = Snapshot{Status: agent.StatusActive}
	f.agents[moved] = Snapshot{Status: agent.StatusActive}
	for _, a := range []uuid.UUID{same, moved} {
		if _, err := i.Get(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	chSame, c1, _ := i.Subscribe(same)
	defer c1()
	chMoved, c2, _ := i.Subscribe(moved)
	defer c2()
	// A change whose notification was lost.
	f.mu.Lock()
	f.agents[moved] = Snapshot{Status: agent.StatusActive, Stacks: []uuid.UUID{s}, Objects: []Object{{DeploymentObject: obj(s, 1)}}}
	f.mu.Unlock()
	i.Apply(ctx, Change{Kind: ChangeAll})
	if !woken(chMoved) {
		t.Fatal("resync did not wake the agent whose answer changed")
	}
	if woken(chSame) {
		t.Fatal("resync woke an agent whose answer did not change")
	}
	// Untrusted: every request reads the store and waiters are told to poll.
	i.SetTrusted(ctx, false)
	if !woken(chSame) {
		t.Fatal("losing notifications must wake waiters so they poll")
	}
	loads := f.loads.Load()
	_, _ = i.Get(ctx, same)
	_, _ = i.Get(ctx, same)
	if f.loads.Load()-loads != 2 {
		t.Fatal("an untrusted index must not answer from memory")
	}
	if _, _, ok := i.Subscribe(same); ok {
		t.Fatal("untrusted Subscribe must ask to poll")
	}
}

// TestWakeObserverMeasuresPatchedAnswers: a long-poll woken by a stack
// change reports its fan-out latency once; an answer that was already new
// when asked (no wait) reports nothing.
func TestWakeObserverMeasuresPatchedAnswers(t *testing.T) {
	t.Parallel()
	i, f := newFixture(t)
	var mu sync.Mutex
	var seen []time.Duration
	i.SetWakeObserver(func(d time.Duration) {
		mu.Lock()
		seen = append(seen, d)
		mu.Unlock()
	})
	svc := NewService(i)
	ctx := context.Background()
	s := uuid.New()
	a := uuid.New()
	f.agents[a] = Snapshot{Status: agent.StatusActive, Stacks: []uuid.UUID{s}, Objects: []Object{{DeploymentObject: obj(s, 1)}}}
	p := identity.Agent(a)
	first, err := svc.Get(ctx, p, Query{AgentID: a})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Result, 1)
	go func() {
		r, err := svc.Get(ctx, p, Query{AgentID: a, IfNoneMatch: first.ETag, Wait: 10 * time.Second})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	for i.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.mu.Lock()
	f.heads[s] = obj(s, 2)
	f.mu.Unlock()
	i.Apply(ctx, Change{Kind: ChangeStack, ID: s})
	select {
	case r := <-done:
		if r.NotModified || r.ETag == first.ETag {
			t.Fatal("woken long-poll answered the old state")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll not woken by the stack change")
	}
	// Asked without waiting: nothing to measure.
	if _, err := svc.Get(ctx, p, Query{AgentID: a, IfNoneMatch: first.ETag}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] < 0 || seen[0] > 5*time.Second {
		t.Fatalf("observed %v, want one fan-out latency", seen)
	}
}
