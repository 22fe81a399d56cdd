// Package overviewtest holds an in-memory implementation of the console's
// read model and the contract suite for its fleet queries, run on it and
// on the PostgreSQL adapter.
package overviewtest

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Agent describes one agent the World creates.
type Agent struct {
	Name, Cluster string
	Inactive      bool
	// HeartbeatAgo is how long ago the last heartbeat was; nil: never.
	HeartbeatAgo *time.Duration
	CreatedAgo   time.Duration
	Labels       []string
	// Failing gives the agent a failing deployment.
	Failing bool
}

type agentRow struct {
	overview.AgentRow
	failing bool
}

// Memory implements overview.ReadModel. The fleet queries follow the SQL's
// rules (filters, heartbeat states, sort keys with their tie-breakers,
// paging); the per-agent summaries are not computed (zero), and the agent,
// stack and object views return what Set* stored.
type Memory struct {
	mu           sync.Mutex
	agents       []agentRow
	agentStacks  map[uuid.UUID][]overview.AgentStack
	stackObjects map[uuid.UUID][]overview.ObjectRow
	objectAgents map[uuid.UUID][]overview.ObjectAgent
}

// NewMemory returns an empty read model.
func NewMemory() *Memory {
	return &Memory{agentStacks: map[uuid.UUID][]overview.AgentStack{}, stackObjects: map[uuid.UUID][]overview.ObjectRow{},
		objectAgents: map[uuid.UUID][]overview.ObjectAgent{}}
}

var (
	_ overview.ReadModel = (*Memory)(nil)
	_ World              = (*Memory)(nil)
)

// Agent adds an agent.
func (m *Memory) Agent(_ *testing.T, a Agent) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	r := agentRow{AgentRow: overview.AgentRow{ID: uuid.New(), Name: a.Name, ClusterName: a.Cluster, Status: "ACTIVE",
		CreatedAt: now.Add(-a.CreatedAgo)}, failing: a.Failing}
	if a.Inactive {
		r.Status = "INACTIVE"
	}
	if a.HeartbeatAgo != nil {
		hb := now.Add(-*a.HeartbeatAgo)
		r.LastHeartbeat = &hb
	}
	if len(a.Labels) > 0 {
		r.Labels = slices.Sorted(slices.Values(a.Labels))
	}
	m.agents = append(m.agents, r)
	return r.ID
}

// SetAgentStacks, SetStackObjects and SetObjectAgents store what the
// matching views return.
func (m *Memory) SetAgentStacks(id uuid.UUID, rows []overview.AgentStack) { m.agentStacks[id] = rows }

// SetStackObjects stores a stack's object rows (newest first).
func (m *Memory) SetStackObjects(id uuid.UUID, rows []overview.ObjectRow) { m.stackObjects[id] = rows }

// SetObjectAgents stores an object's agent rows.
func (m *Memory) SetObjectAgents(id uuid.UUID, rows []overview.ObjectAgent) {
	m.objectAgents[id] = rows
}

func state(r agentRow, now time.Time, stale time.Duration) map[string]bool {
	active := r.Status == "ACTIVE"
	return map[string]bool{
		overview.StateOnline:   active && r.LastHeartbeat != nil && !r.LastHeartbeat.Before(now.Add(-stale)),
		overview.StateStale:    active && r.LastHeartbeat != nil && r.LastHeartbeat.Before(now.Add(-stale)),
		overview.StateNever:    active && r.LastHeartbeat == nil,
		overview.StateInactive: !active,
		overview.StateFailing:  active && r.failing,
	}
}

func (m *Memory) matching(q overview.FleetQuery) ([]agentRow, error) {
	if q.State != "" {
		if _, ok := state(agentRow{}, time.Now(), 0)[q.State]; !ok {
			return nil, domain.Invalid("unknown state")
		}
	}
	now := time.Now()
	text := strings.ToLower(q.Text)
	var out []agentRow
	for _, r := range m.agents {
		if text != "" && !strings.Contains(strings.ToLower(r.Name), text) && !strings.Contains(strings.ToLower(r.ClusterName), text) {
			continue
		}
		if q.Label != "" && !slices.Contains(r.Labels, q.Label) {
			continue
		}
		if q.State != "" && !state(r, now, q.StaleAfter)[q.State] {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// less orders by a sort key ascending, as the SQL's ORDER BY.
var less = map[string]func(a, b agentRow) int{
	overview.SortName: func(a, b agentRow) int {
		return cmpChain(strings.Compare(a.Name, b.Name), strings.Compare(a.ClusterName, b.ClusterName))
	},
	overview.SortCluster: func(a, b agentRow) int {
		return cmpChain(strings.Compare(a.ClusterName, b.ClusterName), strings.Compare(a.Name, b.Name))
	},
	overview.SortCreated: func(a, b agentRow) int {
		return cmpChain(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID.String(), b.ID.String()))
	},
	overview.SortHeartbeat: func(a, b agentRow) int {
		// Never seen sorts as the oldest heartbeat.
		switch {
		case a.LastHeartbeat == nil && b.LastHeartbeat != nil:
			return -1
		case a.LastHeartbeat != nil && b.LastHeartbeat == nil:
			return 1
		case a.LastHeartbeat != nil:
			if c := a.LastHeartbeat.Compare(*b.LastHeartbeat); c != 0 {
				return c
			}
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	},
}

func cmpChain(cs ...int) int {
	for _, c := range cs {
		if c != 0 {
			return c
		}
	}
	return 0
}

// Fleet implements ReadModel.
func (m *Memory) Fleet(_ context.Context, q overview.FleetQuery) ([]overview.AgentRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmp, ok := less[q.Sort]
	if !ok {
		return nil, domain.Invalid("unknown sort")
	}
	rows, err := m.matching(q)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if q.Desc {
			return cmp(rows[j], rows[i]) < 0
		}
		return cmp(rows[i], rows[j]) < 0
	})
	rows = rows[min(q.Offset, len(rows)):]
	rows = rows[:min(q.Limit, len(rows))]
	out := make([]overview.AgentRow, len(rows))
	for i, r := range rows {
		out[i] = r.AgentRow
	}
	return out, nil
}

// CountFleet implements ReadModel.
func (m *Memory) CountFleet(_ context.Context, q overview.FleetQuery) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.matching(q)
	return len(rows), err
}

// FleetCounts implements ReadModel.
func (m *Memory) FleetCounts(_ context.Context, staleAfter time.Duration) (overview.Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var c overview.Counts
	now := time.Now()
	for _, r := range m.agents {
		s := state(r, now, staleAfter)
		c.Total++
		for k, n := range map[string]*int{overview.StateOnline: &c.Online, overview.StateStale: &c.Stale,
			overview.StateNever: &c.Never, overview.StateInactive: &c.Inactive, overview.StateFailing: &c.Failing} {
			if s[k] {
				*n++
			}
		}
	}
	return c, nil
}

// AgentStacks implements ReadModel with the stored rows.
func (m *Memory) AgentStacks(_ context.Context, agentID uuid.UUID) ([]overview.AgentStack, error) {
	return m.agentStacks[agentID], nil
}

// StackObjects implements ReadModel with the stored rows, paged.
func (m *Memory) StackObjects(_ context.Context, stackID uuid.UUID, limit, offset int) ([]overview.ObjectRow, int, error) {
	rows := m.stackObjects[stackID]
	page := rows[min(offset, len(rows)):]
	return page[:min(limit, len(page))], len(rows), nil
}

// ObjectAgents implements ReadModel with the stored rows.
func (m *Memory) ObjectAgents(_ context.Context, objectID uuid.UUID, limit int) ([]overview.ObjectAgent, error) {
	rows := m.objectAgents[objectID]
	return rows[:min(limit, len(rows))], nil
}
