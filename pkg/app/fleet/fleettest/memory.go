// Package fleettest holds an in-memory fleet repository and presence, and
// the contract suite run on it and on the PostgreSQL adapter.
package fleettest

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Memory implements fleet.Repository and World: the World's calls add to
// the counts the way the corresponding rows add to the SQL's.
type Memory struct {
	mu      sync.Mutex
	agents  map[uuid.UUID]fleet.Agent
	signals map[uuid.UUID]fleet.Signals
	events  map[uuid.UUID][]agent.Event
	reach   map[uuid.UUID]map[uuid.UUID]bool // generator -> agents
}

var (
	_ fleet.Repository = (*Memory)(nil)
	_ World            = (*Memory)(nil)
)

// NewMemory returns an empty fleet.
func NewMemory() *Memory {
	return &Memory{agents: map[uuid.UUID]fleet.Agent{}, signals: map[uuid.UUID]fleet.Signals{},
		events: map[uuid.UUID][]agent.Event{}, reach: map[uuid.UUID]map[uuid.UUID]bool{}}
}

func (m *Memory) sig(id uuid.UUID, f func(*fleet.Signals)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.signals[id]
	f(&s)
	m.signals[id] = s
}

// AddAgent adds an agent.
func (m *Memory) AddAgent(_ *testing.T, a AgentSpec) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	status := agent.StatusActive
	if a.Inactive {
		status = agent.StatusInactive
	}
	var hb *time.Time
	if a.HeartbeatAgo != nil {
		t := time.Now().Add(-*a.HeartbeatAgo)
		hb = &t
	}
	m.agents[id] = fleet.Agent{ID: id, Name: a.Name, ClusterName: a.Cluster, Status: status, LastHeartbeat: hb}
	return id
}

// PendingObjects gives the agent n targeted stacks with an unacknowledged
// object each (none for an inactive agent, as target state).
func (m *Memory) PendingObjects(_ *testing.T, agentID uuid.UUID, n int) {
	if m.agents[agentID].Status != agent.StatusActive {
		return
	}
	m.sig(agentID, func(s *fleet.Signals) { s.PendingObjects += int64(n) })
}

// AckedObject gives the agent a targeted stack whose object it acknowledged.
func (m *Memory) AckedObject(_ *testing.T, agentID uuid.UUID) {
	m.sig(agentID, func(s *fleet.Signals) { now := time.Now(); s.LastEventAt = &now })
	m.mu.Lock()
	m.events[agentID] = append(m.events[agentID], agent.Event{ID: uuid.New(), AgentID: agentID, CreatedAt: time.Now(),
		EventType: "DEPLOY", Status: agent.EventSuccess})
	m.mu.Unlock()
}

// WorkOrders gives the agent pending orders targeted at it and claimed ones.
func (m *Memory) WorkOrders(_ *testing.T, agentID uuid.UUID, pending, claimed int) {
	m.sig(agentID, func(s *fleet.Signals) {
		if m.agents[agentID].Status == agent.StatusActive {
			s.PendingWorkOrders += int64(pending)
		}
		s.ClaimedWorkOrders += int64(claimed)
	})
}

// Health records a deployment-health status for a new object.
func (m *Memory) Health(_ *testing.T, agentID uuid.UUID, status string) {
	m.sig(agentID, func(s *fleet.Signals) {
		switch status {
		case "failing":
			s.HealthFailing++
		case "degraded":
			s.HealthDegraded++
		}
	})
}

// Events records n events, the latest at; they appear newest first.
func (m *Memory) Events(_ *testing.T, agentID uuid.UUID, n int, latest time.Time) {
	m.mu.Lock()
	for i := n - 1; i >= 0; i-- {
		m.events[agentID] = append(m.events[agentID], agent.Event{ID: uuid.New(), AgentID: agentID,
			CreatedAt: latest.Add(-time.Duration(i) * time.Minute), EventType: "DEPLOY", Status: agent.EventFailure})
	}
	m.mu.Unlock()
	m.sig(agentID, func(s *fleet.Signals) {
		if s.LastEventAt == nil || latest.After(*s.LastEventAt) {
			s.LastEventAt = &latest
		}
	})
}

// Registers returns a generator the agents are registered with.
func (m *Memory) Registers(_ *testing.T, agentIDs ...uuid.UUID) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := uuid.New()
	m.reach[g] = map[uuid.UUID]bool{}
	for _, id := range agentIDs {
		m.reach[g][id] = true
	}
	return g
}

// Agents lists agents by name and cluster.
func (m *Memory) Agents(_ context.Context, generatorID *uuid.UUID) ([]fleet.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []fleet.Agent{}
	for _, a := range m.agents {
		if generatorID == nil || m.reach[*generatorID][a.ID] {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ClusterName < out[j].ClusterName
	})
	return out, nil
}

// Agent returns one agent.
func (m *Memory) Agent(_ context.Context, id uuid.UUID) (fleet.Agent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return testsupport.Lookup(m.agents, id, domain.NotFound("Agent not found"))
}

// Signals returns a copy of the counts of agents that have any.
func (m *Memory) Signals(context.Context) (map[uuid.UUID]fleet.Signals, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[uuid.UUID]fleet.Signals, len(m.signals))
	for id, s := range m.signals {
		if (s != fleet.Signals{}) {
			out[id] = s
		}
	}
	return out, nil
}

// RecentEvents returns the agent's events newest first.
func (m *Memory) RecentEvents(_ context.Context, agentID uuid.UUID, limit int) ([]agent.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := append([]agent.Event(nil), m.events[agentID]...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].CreatedAt.After(evs[j].CreatedAt) })
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return evs, nil
}

// Presence is a fixed set of connections.
type Presence map[uuid.UUID]time.Time

// Connected returns a copy of p.
func (p Presence) Connected(context.Context) (map[uuid.UUID]time.Time, error) {
	out := make(map[uuid.UUID]time.Time, len(p))
	for id, t := range p {
		out[id] = t
	}
	return out, nil
}
