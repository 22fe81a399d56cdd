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

func ago(d time.Duration) *time.Duration { return &d }

func TestOnlyAdmin(t *testing.T) {
	ctx := context.Background()
	m := fleettest.NewMemory()
	id := m.AddAgent(t, fleettest.AgentSpec{Name: "a", Cluster: "c"})
	s := fleet.NewService(m, fleettest.Presence{})
	for _, p := range []identity.Principal{identity.Agent(id), identity.Generator(uuid.New()), {}} {
		_, err1 := s.List(ctx, p, nil)
		_, err2 := s.Get(ctx, p, id)
		_, err3 := s.Connections(ctx, p)
		for _, err := range []error{err1, err2, err3} {
			var de *domain.Error
			if !errors.Is(err, domain.ErrForbidden) || !errors.As(err, &de) || de.Code != "admin_required" {
				t.Errorf("%v: %v, want forbidden admin_required", p.Role, err)
			}
		}
	}
}

func TestRecords(t *testing.T) {
	ctx := context.Background()
	m := fleettest.NewMemory()
	now := time.Date(2026, 6, 14, 9, 15, 0, 0, time.UTC)
	quiet := m.AddAgent(t, fleettest.AgentSpec{Name: "quiet", Cluster: "c"})
	busy := m.AddAgent(t, fleettest.AgentSpec{Name: "busy", Cluster: "c", HeartbeatAgo: ago(time.Hour)})
	m.PendingObjects(t, busy, 2)
	m.WorkOrders(t, busy, 3, 1)
	m.Health(t, busy, "failing")
	m.Health(t, busy, "degraded")
	m.Events(t, busy, 30, now.Add(-10*time.Second))
	since := now.Add(-5 * time.Minute)
	s := fleet.NewService(m, fleettest.Presence{busy: since})
	// The clock the ages are computed against; a heartbeat "in the future"
	// (clock skew) clamps to zero.
	s.SetClock(func() time.Time { return now })

	recs, err := s.List(ctx, identity.Admin, nil)
	if err != nil || len(recs) != 2 || recs[0].AgentID != busy || recs[1].AgentID != quiet {
		t.Fatalf("List = %+v, %v", recs, err)
	}
	b, q := recs[0], recs[1]
	if !b.Connected || b.ConnectedSince == nil || !b.ConnectedSince.Equal(since) {
		t.Errorf("busy connection %v %v", b.Connected, b.ConnectedSince)
	}
	if b.PendingObjects != 2 || b.PendingWorkOrders != 3 || b.ClaimedWorkOrders != 1 || b.HealthFailing != 1 || b.HealthDegraded != 1 {
		t.Errorf("busy signals %+v", b.Signals)
	}
	if b.SecondsSinceLastEvent == nil || *b.SecondsSinceLastEvent != 10 {
		t.Errorf("seconds since last event %v", b.SecondsSinceLastEvent)
	}
	// The memory's heartbeat is an hour before the real clock, which is
	// far after the fixed one: the age clamps at zero.
	if b.HeartbeatAgeSeconds == nil || *b.HeartbeatAgeSeconds != 0 {
		t.Errorf("heartbeat age %v, want clamped 0", b.HeartbeatAgeSeconds)
	}
	if q.Connected || q.ConnectedSince != nil || q.HeartbeatAgeSeconds != nil || q.SecondsSinceLastEvent != nil ||
		q.LastEventAt != nil || q.PendingObjects != 0 || q.K8sReachable != nil || q.K8sAPILatencyMS != nil {
		t.Errorf("quiet %+v", q)
	}

	s.SetClock(time.Now)
	st, err := s.Get(ctx, identity.Admin, busy)
	if err != nil || st.Record.AgentID != busy || len(st.RecentEvents) != fleet.RecentEventsLimit {
		t.Fatalf("Get = %+v, %v", st.Record, err)
	}
	if a := *st.Record.HeartbeatAgeSeconds; a < 3599 || a > 3601 {
		t.Errorf("heartbeat age %d, want about 3600", a)
	}
	if st, err := s.Get(ctx, identity.Admin, quiet); err != nil || st.RecentEvents == nil || len(st.RecentEvents) != 0 {
		t.Errorf("quiet events %v %v (want empty, not nil)", st.RecentEvents, err)
	}
	_, err = s.Get(ctx, identity.Admin, uuid.New())
	var de *domain.Error
	if !errors.Is(err, domain.ErrNotFound) || !errors.As(err, &de) || de.Code != "agent_not_found" {
		t.Errorf("unknown agent: %v", err)
	}

	g := m.Registers(t, quiet)
	if recs, err := s.List(ctx, identity.Admin, &g); err != nil || len(recs) != 1 || recs[0].AgentID != quiet {
		t.Errorf("filtered %+v %v", recs, err)
	}
	unknown := uuid.New()
	if recs, err := s.List(ctx, identity.Admin, &unknown); err != nil || recs == nil || len(recs) != 0 {
		t.Errorf("unknown generator %+v %v (want empty, not nil)", recs, err)
	}

	conns, err := s.Connections(ctx, identity.Admin)
	if err != nil || len(conns) != 1 || conns[0].AgentID != busy || !conns[0].ConnectedSince.Equal(since) {
		t.Errorf("Connections = %+v %v", conns, err)
	}
}
