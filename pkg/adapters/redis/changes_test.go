package redis

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
)

// TestChangesWatchSeesEveryKind: a watcher (the console's live view) is
// woken by agent, stack and "everything" notifications of its tenant from
// another replica, and by nothing once it stopped watching.
func TestChangesWatchSeesEveryKind(t *testing.T) {
	c := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenant := "test_" + uuid.NewString()[:8]
	hub := NewChanges(c, tenant, log)
	other := NewChanges(c, tenant, log) // another api replica
	go hub.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !hub.Healthy() && time.Now().Before(deadline) {
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
		"agent":      func() { other.AgentChanged(ctx, uuid.New()) },
		"stack":      func() { other.StackChanged(ctx, uuid.New()) },
		"everything": func() { other.EverythingChanged(ctx) },
	} {
		publish()
		select {
		case <-watch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake-up for a %s change", name)
		}
	}
	NewChanges(c, "other_"+uuid.NewString()[:8], log).EverythingChanged(ctx)
	select {
	case <-watch:
		t.Fatal("woken by another tenant's change")
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	other.EverythingChanged(ctx)
	select {
	case <-watch:
		t.Fatal("woken after stop")
	case <-time.After(300 * time.Millisecond):
	}
}
