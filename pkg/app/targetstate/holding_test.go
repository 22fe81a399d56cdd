package targetstate

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// Holding is the fleet's "connected now" on one replica: an agent counts
// from its first held long-poll, through the short gaps between polls,
// until HoldGrace after its last one ended.
func TestHoldingFollowsLongPolls(t *testing.T) {
	i := NewIndex(nil, IndexOptions{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i.clock = func() time.Time { return now }
	a, b := uuid.New(), uuid.New()
	if len(i.Holding()) != 0 {
		t.Fatal("holders before any long-poll")
	}
	start := now
	_, cancelA, _ := i.Subscribe(a)
	_, cancelA2, _ := i.Subscribe(a) // a second poll of the same agent
	now = now.Add(time.Second)
	_, cancelB, _ := i.Subscribe(b)
	if h := i.Holding(); len(h) != 2 || !h[a].Equal(start) || !h[b].Equal(start.Add(time.Second)) {
		t.Fatalf("Holding = %v", h)
	}
	// a answers and polls again within the grace: same connection.
	cancelA()
	cancelA2()
	now = now.Add(HoldGrace - time.Second)
	if h := i.Holding(); !h[a].Equal(start) {
		t.Fatalf("a within grace: %v", h)
	}
	_, cancelA, _ = i.Subscribe(a)
	now = now.Add(time.Minute)
	if h := i.Holding(); !h[a].Equal(start) {
		t.Fatalf("a polling again keeps its start: %v", h)
	}
	// b's poll ended more than the grace ago: gone, and a new poll
	// starts a new connection.
	cancelB()
	now = now.Add(HoldGrace + time.Second)
	if h := i.Holding(); len(h) != 1 || h[b] != (time.Time{}) {
		t.Fatalf("b after grace: %v", h)
	}
	_, cancelB, _ = i.Subscribe(b)
	if h := i.Holding(); !h[b].Equal(now) {
		t.Fatalf("b reconnected: %v", h)
	}
	cancelA()
	cancelB()
}
