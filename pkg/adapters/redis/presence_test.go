package redis

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
)

type holders struct {
	mu sync.Mutex
	m  map[uuid.UUID]time.Time
}

func (h *holders) get() map[uuid.UUID]time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[uuid.UUID]time.Time{}
	for k, v := range h.m {
		out[k] = v
	}
	return out
}

// Two replicas see each other's long-poll holders through Redis; a
// replica's own holders need no Redis; expired reports are dropped.
func TestPresenceAcrossReplicas(t *testing.T) {
	c := redistest.New(t)
	key := redistest.Namespace(t, c) + "presence"
	ctx := context.Background()
	a, b, both := uuid.New(), uuid.New(), uuid.New()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond).UTC()
	h1 := &holders{m: map[uuid.UUID]time.Time{a: t0, both: t0.Add(time.Minute)}}
	h2 := &holders{m: map[uuid.UUID]time.Time{b: t0, both: t0}}
	r1 := NewPresence(c, "", h1.get, nil).WithKey(key)
	r2 := NewPresence(c, "", h2.get, nil).WithKey(key)

	got, err := r1.Connected(ctx)
	if err != nil || len(got) != 2 || !got[a].Equal(t0) {
		t.Fatalf("before any publish, r1 sees its own: %v %v", got, err)
	}
	if err := r2.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = r1.Connected(ctx)
	if err != nil || len(got) != 3 || !got[b].Equal(t0) || !got[both].Equal(t0) {
		t.Fatalf("r1 after r2 published: %v %v (want a, b and the earliest time of both)", got, err)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 2*PresenceTTL {
		t.Errorf("key TTL %v", ttl)
	}
	// An expired report (a replica that died) no longer counts and is
	// removed.
	dead := uuid.New()
	c.HSet(ctx, key, dead.String(), "1|1", "garbage", "x")
	got, _ = r1.Connected(ctx)
	if _, ok := got[dead]; ok || len(got) != 3 {
		t.Errorf("expired report counted: %v", got)
	}
	if n := c.HExists(ctx, key, dead.String()).Val(); n {
		t.Error("expired field kept")
	}
	// Redis unreachable: this replica's own holders, no error.
	closed := redistest.New(t)
	_ = closed.Close()
	got, err = NewPresence(closed, "", h1.get, nil).Connected(ctx)
	if err != nil || len(got) != 2 {
		t.Errorf("without Redis: %v %v", got, err)
	}
}
