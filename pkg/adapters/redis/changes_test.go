package redis

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

type recordingSink struct {
	mu      sync.Mutex
	applied []targetstate.Change
	resyncs int
	trusted bool
}

func (s *recordingSink) Apply(_ context.Context, c targetstate.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, c)
}

func (s *recordingSink) SetTrusted(_ context.Context, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trusted = on
}

func (s *recordingSink) Resync(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resyncs++
}

func (s *recordingSink) counts() (applied, resyncs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.applied), s.resyncs
}

// Two replicas of one tenant over the real Redis: a change is applied
// locally at once and delivered to the other replica exactly once; a gap
// in the sequence numbers, or a number published but never received,
// triggers a resync.
func TestChangesDeliverInOrderAndResyncOnLoss(t *testing.T) {
	CheckEvery = 50 * time.Millisecond
	c := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tenant := "test_" + uuid.NewString()[:8]
	t.Cleanup(func() { _ = c.Del(context.Background(), "brokkr:"+tenant+":changes:seq").Err() })
	sa, sb := &recordingSink{}, &recordingSink{}
	a := NewChanges(c, tenant, sa, nil)
	b := NewChanges(c, tenant, sb, nil)
	go a.Run(ctx)
	go b.Run(ctx)
	testsupport.Eventually(t, 5*time.Second, "both subscribed", func() bool { return a.Subscribed() && b.Subscribed() })

	stack := uuid.New()
	a.StackChanged(ctx, stack)
	if n, _ := sa.counts(); n != 1 {
		t.Fatalf("publisher applied %d changes locally, want 1", n)
	}
	testsupport.Eventually(t, 5*time.Second, "the other replica to apply it", func() bool { n, _ := sb.counts(); return n == 1 })
	sb.mu.Lock()
	got := sb.applied[0]
	sb.mu.Unlock()
	if got.Kind != targetstate.ChangeStack || got.ID != stack {
		t.Fatalf("received %+v", got)
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ := sa.counts(); n != 1 {
		t.Fatalf("publisher applied its own echo: %d changes", n)
	}

	// A gap: a message numbered past the next one.
	n, err := c.Get(ctx, "brokkr:"+tenant+":changes:seq").Uint64()
	if err != nil {
		t.Fatal(err)
	}
	_, before := sb.counts()
	if err := c.Publish(ctx, "brokkr:"+tenant+":changes", fmt.Sprintf("%d other agent:%s", n+5, uuid.New())).Err(); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 5*time.Second, "a resync after a gap", func() bool { _, r := sb.counts(); return r > before })

	// A number taken but its message lost: noticed by the periodic check.
	_, beforeA := sa.counts()
	if err := c.IncrBy(ctx, "brokkr:"+tenant+":changes:seq", 10).Err(); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 5*time.Second, "a resync after a lost message", func() bool { _, r := sa.counts(); return r > beforeA })
}

func TestChangeWireFormat(t *testing.T) {
	t.Parallel()
	id, obj := uuid.New(), uuid.New()
	for _, c := range []targetstate.Change{
		{Kind: targetstate.ChangeAgent, ID: id},
		{Kind: targetstate.ChangeStack, ID: id},
		{Kind: targetstate.ChangeAck, ID: id, Object: obj},
		{Kind: targetstate.ChangeLabel, Key: "env:prod"},
		{Kind: targetstate.ChangeAnnotation, Key: "tier"},
		{Kind: targetstate.ChangeAll},
	} {
		got, ok := Decode(Encode(c))
		if !ok || got != c {
			t.Errorf("%+v → %q → %+v %v", c, Encode(c), got, ok)
		}
	}
	for _, bad := range []string{"", "agent:nope", "ack:" + id.String(), "unknown:x"} {
		if _, ok := Decode(bad); ok {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

// TestChangesWatchSeesEveryKind: a watcher (the console's live view) is
// woken by agent, stack and "everything" notifications of its tenant from
// another replica, and by nothing once it stopped watching.
func TestChangesWatchSeesEveryKind(t *testing.T) {
	c := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenant := "test_" + uuid.NewString()[:8]
	hub := NewChanges(c, tenant, nil, log)
	other := NewChanges(c, tenant, nil, log) // another api replica
	go hub.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !hub.Subscribed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	watch, stop := hub.Watch()
	drain := func() {
		select {
		case <-watch:
		case <-time.After(200 * time.Millisecond):
		}
	}
	drain() // the wake-up of the subscription itself
	for name, publish := range map[string]func(){
		"agent": func() { other.AgentChanged(ctx, uuid.New()) },
		"stack": func() { other.StackChanged(ctx, uuid.New()) },
		"label": func() { other.StackLabelChanged(ctx, "env=prod") },
	} {
		publish()
		select {
		case <-watch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake-up for a %s change", name)
		}
	}
	NewChanges(c, "other_"+uuid.NewString()[:8], nil, log).StackLabelChanged(ctx, "env=prod")
	select {
	case <-watch:
		t.Fatal("woken by another tenant's change")
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	other.StackLabelChanged(ctx, "env=prod")
	select {
	case <-watch:
		t.Fatal("woken after stop")
	case <-time.After(300 * time.Millisecond):
	}
}

// Notes wake every replica's watchers, are coalesced per publishing
// process, and are not changes: no index applies them.
func TestNotesWakeWatchersCoalesced(t *testing.T) {
	c := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenant := "test_" + uuid.NewString()[:8]
	seqKey := "brokkr:" + tenant + ":changes:seq"
	t.Cleanup(func() { _ = c.Del(context.Background(), seqKey).Err() })
	sink := &recordingSink{}
	hub := NewChanges(c, tenant, sink, log)
	go hub.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !hub.Subscribed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	watch, stop := hub.Watch()
	defer stop()
	select {
	case <-watch:
	case <-time.After(200 * time.Millisecond):
	}
	other := NewChanges(c, tenant, nil, log) // webhook-dispatch, publishing only
	for range 100 {
		other.Noted(ctx, "delivery")
	}
	select {
	case <-watch:
	case <-time.After(3 * time.Second):
		t.Fatal("a note did not wake the other replica's watchers")
	}
	time.Sleep(NoteEvery + 300*time.Millisecond) // the burst's trailing note
	n, err := c.Get(ctx, seqKey).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 || n > 2 {
		t.Fatalf("%d messages for a burst of 100 notes, want 1 (leading) or 2 (and trailing)", n)
	}
	if applied, resyncs := sink.counts(); applied != 0 || resyncs != 0 {
		t.Fatalf("notes reached the index: %d applied, %d resyncs", applied, resyncs)
	}
}
