package fleet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/app/fleet/fleettest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

func TestLiveSendsChangedRecordsOnly(t *testing.T) {
	ctx := context.Background()
	m := fleettest.NewMemory()
	a := m.AddAgent(t, fleettest.AgentSpec{Name: "a", Cluster: "c", HeartbeatAgo: ago(time.Minute)})
	b := m.AddAgent(t, fleettest.AgentSpec{Name: "b", Cluster: "c"})
	presence := fleettest.Presence{}
	live := fleet.NewLive(fleet.NewService(m, presence), time.Hour, nil)

	if _, _, err := live.Subscribe(identity.Agent(a)); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent subscribed: %v", err)
	}
	ch, cancel, err := live.Subscribe(identity.Admin)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	none := func(what string) {
		t.Helper()
		select {
		case r := <-ch:
			t.Fatalf("%s: unexpected frame for %s", what, r.Name)
		default:
		}
	}
	live.Sweep(ctx) // baseline
	none("baseline")
	live.Sweep(ctx) // ages grew, nothing else
	none("only ages changed")

	m.PendingObjects(t, a, 1)
	presence[b] = time.Now()
	live.Sweep(ctx)
	got := map[uuid.UUID]fleet.Record{}
	for range 2 {
		select {
		case r := <-ch:
			got[r.AgentID] = r
		case <-time.After(time.Second):
			t.Fatalf("frames %v, want a and b", got)
		}
	}
	if got[a].PendingObjects != 1 || got[a].HeartbeatAgeSeconds == nil || !got[b].Connected {
		t.Errorf("frames %+v", got)
	}
	none("after the two changes")

	// A subscriber that never reads loses frames, never blocks the sweep.
	_, cancelSlow, _ := live.Subscribe(identity.Admin)
	defer cancelSlow()
	done := make(chan struct{})
	go func() {
		for i := range fleet.LiveBuffer + 10 {
			m.WorkOrders(t, a, 1, 0)
			live.Sweep(ctx)
			_ = i
		}
		close(done)
	}()
	for {
		select {
		case <-ch:
			continue
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("sweep blocked by a slow subscriber")
		}
		break
	}
}
