package redis

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
)

func TestOutboxSignalWakesTheRelay(t *testing.T) {
	c := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tenant := "test_" + uuid.NewString()[:8]
	relay := NewOutboxSignal(c, tenant, nil)
	api := NewOutboxSignal(c, tenant, nil) // another process, same tenant
	other := NewOutboxSignal(c, "other_"+uuid.NewString()[:8], nil)
	go api.Run(ctx)
	go other.Run(ctx)
	wake := relay.Wake(ctx)
	wait := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake-up for %s", what)
		}
	}
	wait("the first subscription") // anything published before it is lost
	if !relay.Subscribed() {
		t.Fatal("the subscription is up but Subscribed says no")
	}
	for range 5 {
		api.Notify() // a burst of commits coalesces
	}
	wait("a commit")
	// Drain a trailing message of the burst, then another tenant's commit
	// must not wake this relay.
	select {
	case <-wake:
	case <-time.After(300 * time.Millisecond):
	}
	other.Notify()
	select {
	case <-wake:
		t.Fatal("woken by another tenant's commit")
	case <-time.After(300 * time.Millisecond):
	}
	// The next commit wakes it again.
	api.Notify()
	wait("a second commit")
}
