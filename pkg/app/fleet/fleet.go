// Package fleet is the fleet record of 0.9.1 (GET /fleet, GET
// /agents/{id}/fleet-status) and the list of agents connected now (GET
// /admin/ws/connections): measured signals only, no verdict. It is its own
// package rather than part of overview because the two answer different
// questions: overview is the console's paginated page with derived states
// (online, stale, failing), the fleet record is a whole-fleet list of raw
// counts and ages whose names and meaning are fixed by 0.9.1's clients.
//
// Every signal is computed for the whole fleet by one grouped query (the
// Repository's Signals), never one query per agent, so a list costs the same
// few statements at 10 agents and at 10,000 (docs/operations.md#fleet-record).
package fleet

import (
	"context"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Agent is what the fleet record takes from the agent row itself.
type Agent struct {
	ID            uuid.UUID
	Name          string
	ClusterName   string
	Status        string
	LastHeartbeat *time.Time
}

// Signals are one agent's computed counts. An agent absent from the map
// Repository.Signals returns has all of them zero (and no event).
type Signals struct {
	// PendingObjects counts the objects of the agent's target state it has
	// not acknowledged with a SUCCESS event.
	PendingObjects int64
	// PendingWorkOrders counts PENDING work orders the agent may claim;
	// ClaimedWorkOrders those it holds CLAIMED.
	PendingWorkOrders, ClaimedWorkOrders int64
	// HealthFailing and HealthDegraded count its deployment-health records
	// by status.
	HealthFailing, HealthDegraded int64
	// LastEventAt is the time of its latest live event.
	LastEventAt *time.Time
}

// Repository reads the fleet from the store.
type Repository interface {
	// Agents lists the live agents by name and cluster; with a generator
	// id, only the agents that generator reaches (see AgentsOf in the
	// PostgreSQL adapter for the rule).
	Agents(ctx context.Context, generatorID *uuid.UUID) ([]Agent, error)
	// Agent returns one live agent or a domain not-found error.
	Agent(ctx context.Context, id uuid.UUID) (Agent, error)
	// Signals computes every agent's signals, one grouped query per
	// signal over the whole fleet.
	Signals(ctx context.Context) (map[uuid.UUID]Signals, error)
	// RecentEvents returns the agent's latest live events, newest first.
	RecentEvents(ctx context.Context, agentID uuid.UUID, limit int) ([]agent.Event, error)
}

// Presence says which agents are connected now and since when. With the
// long-poll transport "connected" means holding a target-state long-poll
// on some api replica (see Tracker and the Redis adapter).
type Presence interface {
	Connected(ctx context.Context) (map[uuid.UUID]time.Time, error)
}

// Record is one agent's fleet record (0.9.1's FleetAgentRecord).
type Record struct {
	AgentID             uuid.UUID
	Name                string
	ClusterName         string
	Status              string
	Connected           bool
	ConnectedSince      *time.Time
	LastHeartbeat       *time.Time
	HeartbeatAgeSeconds *int64
	Signals
	SecondsSinceLastEvent *int64
	// K8sReachable and K8sAPILatencyMS are what the agent reports about its
	// own cluster. Our agents do not report them yet, so they are always
	// nil ("never reported"), as 0.9.1 answers for an agent that has not.
	K8sReachable    *bool
	K8sAPILatencyMS *int64
}

// Status is one agent's record and its latest events.
type Status struct {
	Record       Record
	RecentEvents []agent.Event
}

// Connection is an agent connected now.
type Connection struct {
	AgentID        uuid.UUID
	ConnectedSince time.Time
}

// RecentEventsLimit caps Status.RecentEvents, as 0.9.1.
const RecentEventsLimit = 20

// AdminOnly is the fleet's policy: the record spans every tenant, so only
// the admin reads it (0.9.1's admin_required).
var AdminOnly = policy.Allow(domain.WithCode(domain.Forbidden("Admin access required"), "admin_required"), policy.Admin)

// Service assembles fleet records.
type Service struct {
	repo     Repository
	presence Presence
	now      func() time.Time
}

// NewService wires the use case.
func NewService(repo Repository, presence Presence) *Service {
	return &Service{repo: repo, presence: presence, now: time.Now}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// List returns one record per live agent, by name and cluster; a generator
// id narrows the list to that generator's agents (a view filter: the
// caller is admin and could omit it; an unknown id yields an empty list).
func (s *Service) List(ctx context.Context, p identity.Principal, generatorID *uuid.UUID) ([]Record, error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, err
	}
	return s.records(ctx, generatorID)
}

// records builds the records without a role check (List and Live).
func (s *Service) records(ctx context.Context, generatorID *uuid.UUID) ([]Record, error) {
	agents, err := s.repo.Agents(ctx, generatorID)
	if err != nil {
		return nil, err
	}
	if len(agents) == 0 {
		return []Record{}, nil
	}
	signals, conns, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]Record, len(agents))
	for i, a := range agents {
		out[i] = build(a, signals[a.ID], conns, now)
	}
	return out, nil
}

// Get returns one agent's record and its latest events.
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (Status, error) {
	if err := AdminOnly.Check(p); err != nil {
		return Status{}, err
	}
	a, err := s.repo.Agent(ctx, id)
	if err != nil {
		return Status{}, domain.WithCode(err, "agent_not_found")
	}
	signals, conns, err := s.load(ctx)
	if err != nil {
		return Status{}, err
	}
	events, err := s.repo.RecentEvents(ctx, id, RecentEventsLimit)
	if err != nil {
		return Status{}, err
	}
	if events == nil {
		events = []agent.Event{}
	}
	return Status{Record: build(a, signals[a.ID], conns, s.now()), RecentEvents: events}, nil
}

// Connections lists the agents connected now, oldest connection first.
func (s *Service) Connections(ctx context.Context, p identity.Principal) ([]Connection, error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, err
	}
	conns, err := s.presence.Connected(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(conns))
	for id, since := range conns {
		out = append(out, Connection{AgentID: id, ConnectedSince: since})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].ConnectedSince.Equal(out[j].ConnectedSince) {
			return out[i].ConnectedSince.Before(out[j].ConnectedSince)
		}
		return out[i].AgentID.String() < out[j].AgentID.String()
	})
	return out, nil
}

func (s *Service) load(ctx context.Context) (map[uuid.UUID]Signals, map[uuid.UUID]time.Time, error) {
	signals, err := s.repo.Signals(ctx)
	if err != nil {
		return nil, nil, err
	}
	conns, err := s.presence.Connected(ctx)
	if err != nil {
		return nil, nil, err
	}
	return signals, conns, nil
}

func build(a Agent, sig Signals, conns map[uuid.UUID]time.Time, now time.Time) Record {
	r := Record{AgentID: a.ID, Name: a.Name, ClusterName: a.ClusterName, Status: a.Status,
		LastHeartbeat: a.LastHeartbeat, Signals: sig}
	if since, ok := conns[a.ID]; ok {
		r.Connected, r.ConnectedSince = true, &since
	}
	r.HeartbeatAgeSeconds = ageSeconds(a.LastHeartbeat, now)
	r.SecondsSinceLastEvent = ageSeconds(sig.LastEventAt, now)
	return r
}

// ageSeconds is now - t in whole seconds, clamped at zero (clocks of
// replicas and database may disagree by a little); nil without t.
func ageSeconds(t *time.Time, now time.Time) *int64 {
	if t == nil {
		return nil
	}
	s := max(int64(now.Sub(*t)/time.Second), 0)
	return &s
}
