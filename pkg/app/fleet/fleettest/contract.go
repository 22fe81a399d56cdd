package fleettest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// AgentSpec describes one agent the World creates.
type AgentSpec struct {
	Name, Cluster string
	Inactive      bool
	// HeartbeatAgo is how long ago the last heartbeat was; nil: never.
	HeartbeatAgo *time.Duration
}

// World creates the rows behind each signal in the store under test.
type World interface {
	AddAgent(t *testing.T, a AgentSpec) uuid.UUID
	// PendingObjects targets n new stacks, one object each, at the agent.
	PendingObjects(t *testing.T, agentID uuid.UUID, n int)
	// AckedObject targets a new stack whose object the agent acknowledged
	// with a SUCCESS event (not pending; it is the agent's latest event).
	AckedObject(t *testing.T, agentID uuid.UUID)
	// WorkOrders creates pending orders targeted at the agent and orders
	// it claimed.
	WorkOrders(t *testing.T, agentID uuid.UUID, pending, claimed int)
	// Health records status for the agent on a new object.
	Health(t *testing.T, agentID uuid.UUID, status string)
	// Events records n events, the latest at latest, one minute apart.
	Events(t *testing.T, agentID uuid.UUID, n int, latest time.Time)
	// Registers returns a new generator the agents are registered with.
	Registers(t *testing.T, agentIDs ...uuid.UUID) uuid.UUID
}

// Repos is one implementation under test.
type Repos struct {
	Repo  fleet.Repository
	World World
}

func ago(d time.Duration) *time.Duration { return &d }

// RunContract checks the listing, the filter, not-found, every signal and
// the event tail.
func RunContract(t *testing.T, newRepos func(t *testing.T) Repos) {
	ctx := context.Background()

	t.Run("agents by name and cluster, filter by generator", func(t *testing.T) {
		r := newRepos(t)
		b := r.World.AddAgent(t, AgentSpec{Name: "b", Cluster: "x"})
		a2 := r.World.AddAgent(t, AgentSpec{Name: "a", Cluster: "y", Inactive: true})
		a1 := r.World.AddAgent(t, AgentSpec{Name: "a", Cluster: "x", HeartbeatAgo: ago(time.Minute)})
		all, err := r.Repo.Agents(ctx, nil)
		if err != nil || len(all) != 3 || all[0].ID != a1 || all[1].ID != a2 || all[2].ID != b {
			t.Fatalf("Agents = %+v, %v", all, err)
		}
		if all[0].LastHeartbeat == nil || all[2].LastHeartbeat != nil || all[1].Status != "INACTIVE" || all[0].Status != "ACTIVE" {
			t.Errorf("agent fields %+v", all)
		}
		g := r.World.Registers(t, b, a2)
		got, err := r.Repo.Agents(ctx, &g)
		if err != nil || len(got) != 2 || got[0].ID != a2 || got[1].ID != b {
			t.Errorf("Agents(generator) = %+v, %v", got, err)
		}
		unknown := uuid.New()
		if got, err := r.Repo.Agents(ctx, &unknown); err != nil || len(got) != 0 {
			t.Errorf("Agents(unknown generator) = %+v, %v", got, err)
		}
		if a, err := r.Repo.Agent(ctx, a1); err != nil || a.Name != "a" || a.ClusterName != "x" {
			t.Errorf("Agent = %+v, %v", a, err)
		}
		if _, err := r.Repo.Agent(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Errorf("Agent(unknown) = %v", err)
		}
	})

	t.Run("signals", func(t *testing.T) {
		r := newRepos(t)
		busy := r.World.AddAgent(t, AgentSpec{Name: "busy", Cluster: "c"})
		idle := r.World.AddAgent(t, AgentSpec{Name: "idle", Cluster: "c"})
		off := r.World.AddAgent(t, AgentSpec{Name: "off", Cluster: "c", Inactive: true})
		r.World.PendingObjects(t, busy, 3)
		r.World.AckedObject(t, busy)
		r.World.WorkOrders(t, busy, 2, 1)
		r.World.Health(t, busy, "failing")
		r.World.Health(t, busy, "failing")
		r.World.Health(t, busy, "degraded")
		r.World.Health(t, busy, "healthy")
		// An inactive agent has no target state and may claim nothing,
		// but keeps what it claimed.
		r.World.PendingObjects(t, off, 2)
		r.World.WorkOrders(t, off, 2, 1)
		latest := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		r.World.Events(t, idle, 2, latest)

		got, err := r.Repo.Signals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := got[busy]
		if b.PendingObjects != 3 || b.PendingWorkOrders != 2 || b.ClaimedWorkOrders != 1 ||
			b.HealthFailing != 2 || b.HealthDegraded != 1 || b.LastEventAt == nil {
			t.Errorf("busy = %+v", b)
		}
		if o := got[off]; o.PendingObjects != 0 || o.PendingWorkOrders != 0 || o.ClaimedWorkOrders != 1 {
			t.Errorf("inactive = %+v", o)
		}
		i := got[idle]
		if i.PendingObjects != 0 || i.HealthFailing != 0 || i.LastEventAt == nil || !i.LastEventAt.Equal(latest) {
			t.Errorf("idle = %+v, want last event %v", i, latest)
		}
	})

	t.Run("recent events newest first, bounded", func(t *testing.T) {
		r := newRepos(t)
		a := r.World.AddAgent(t, AgentSpec{Name: "a", Cluster: "c"})
		other := r.World.AddAgent(t, AgentSpec{Name: "o", Cluster: "c"})
		latest := time.Now().Truncate(time.Millisecond)
		r.World.Events(t, a, 25, latest)
		r.World.Events(t, other, 1, latest.Add(time.Hour))
		evs, err := r.Repo.RecentEvents(ctx, a, fleet.RecentEventsLimit)
		if err != nil || len(evs) != fleet.RecentEventsLimit {
			t.Fatalf("RecentEvents = %d, %v", len(evs), err)
		}
		for i, e := range evs {
			if e.AgentID != a || (i > 0 && e.CreatedAt.After(evs[i-1].CreatedAt)) {
				t.Fatalf("event %d %+v out of order or not the agent's", i, e)
			}
		}
		if !evs[0].CreatedAt.Equal(latest) {
			t.Errorf("newest %v, want %v", evs[0].CreatedAt, latest)
		}
		if evs, err := r.Repo.RecentEvents(ctx, uuid.New(), 5); err != nil || len(evs) != 0 {
			t.Errorf("unknown agent: %v %v", evs, err)
		}
	})
}
