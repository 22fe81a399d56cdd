// Package overview holds the read models of the fleet console: a paginated
// fleet with per-agent deployment summaries and counts by state, an agent's
// stacks with the reason each is received, a stack's deployment objects by
// sequence, and the agents that applied an object. Every query is paginated
// or bounded in SQL, so a page costs the same at 10 agents and at 10,000.
//
// Scoping is the API's: the fleet and agents are the admin's (GET /agents is
// admin-only); a stack's objects are readable by whoever may read the stack,
// which the stacks use case decides (StackReader), so a generator sees only
// its own.
package overview

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Heartbeat states: what an agent's status and last heartbeat say, cheap
// enough to count and filter over the whole fleet.
const (
	StateOnline   = "online"   // ACTIVE, heartbeat within the stale window
	StateStale    = "stale"    // ACTIVE, heartbeat older than the window
	StateNever    = "never"    // ACTIVE, no heartbeat yet
	StateInactive = "inactive" // INACTIVE
	// StateFailing filters agents with a failing or degraded deployment or
	// whose latest event on an object is a FAILURE.
	StateFailing = "failing"
)

// Row states shown per agent (derived in Go from an AgentRow).
const (
	RowHealthy  = "healthy"
	RowPending  = "pending"
	RowFailing  = "failing"
	RowStale    = "stale"
	RowInactive = "inactive"
)

// Sort keys of the fleet.
const (
	SortName      = "name"
	SortCluster   = "cluster"
	SortHeartbeat = "heartbeat"
	SortCreated   = "created"
)

// FleetQuery selects one page of the fleet.
type FleetQuery struct {
	Text       string // substring of name or cluster (case-insensitive)
	Label      string // exact agent label
	State      string // one of the heartbeat states or StateFailing; "" = all
	Sort       string
	Desc       bool
	Limit      int
	Offset     int
	StaleAfter time.Duration
}

// AgentRow is one agent of the fleet with its summaries.
type AgentRow struct {
	ID            uuid.UUID
	Name          string
	ClusterName   string
	Status        string
	LastHeartbeat *time.Time
	CreatedAt     time.Time
	Labels        []string
	// Objects is the number of associated stacks with a live latest
	// object; Applied of those acknowledged with SUCCESS; Failing of those
	// whose latest event is a FAILURE or whose health is failing/degraded;
	// Healthy of those reported healthy.
	Objects, Applied, Failing, Healthy int
	// PendingWork counts active work orders targeting or claimed by the
	// agent plus its pending diagnostics.
	PendingWork int
}

// State is the row's state: inactive, stale, failing, pending (never seen
// or objects not yet applied) or healthy.
func (r AgentRow) State(now time.Time, staleAfter time.Duration) string {
	switch {
	case !strings.EqualFold(r.Status, "ACTIVE"):
		return RowInactive
	case r.LastHeartbeat != nil && now.Sub(*r.LastHeartbeat) > staleAfter:
		return RowStale
	case r.Failing > 0:
		return RowFailing
	case r.LastHeartbeat == nil || r.Applied < r.Objects:
		return RowPending
	}
	return RowHealthy
}

// Counts are the fleet's totals by heartbeat state, plus failing agents.
type Counts struct {
	Total, Online, Stale, Never, Inactive, Failing int
}

// FleetPage is one page and the totals.
type FleetPage struct {
	Rows    []AgentRow
	Matched int // rows matching the filter (for paging)
	Counts  Counts
	Query   FleetQuery
}

// AgentStack is a stack an agent receives, why, and how its latest object
// fares on that agent.
type AgentStack struct {
	StackID      uuid.UUID
	StackName    string
	ByTarget     bool
	ByLabel      []string
	ByAnnotation []string
	ObjectID     *uuid.UUID
	SequenceID   *int64
	Marker       bool
	Applied      bool
	EventStatus  *string
	EventMsg     *string
	Health       *string
}

// ObjectRow is a deployment object without its YAML (lists stay small).
type ObjectRow struct {
	ID               uuid.UUID
	SequenceID       int64
	YAMLChecksum     string
	SubmittedAt      time.Time
	IsDeletionMarker bool
	Size             int
	Applied          int
	Failed           int
	TemplateID       *uuid.UUID
	TemplateVersion  *int
}

// ObjectAgent is an agent's latest word on one object.
type ObjectAgent struct {
	AgentID     uuid.UUID
	AgentName   string
	ClusterName string
	EventStatus string
	EventType   string
	Message     *string
	At          time.Time
	Health      *string
}

// ReadModel runs the read models' queries.
type ReadModel interface {
	Fleet(ctx context.Context, q FleetQuery) ([]AgentRow, error)
	CountFleet(ctx context.Context, q FleetQuery) (int, error)
	FleetCounts(ctx context.Context, staleAfter time.Duration) (Counts, error)
	AgentStacks(ctx context.Context, agentID uuid.UUID) ([]AgentStack, error)
	StackObjects(ctx context.Context, stackID uuid.UUID, limit, offset int) ([]ObjectRow, int, error)
	ObjectAgents(ctx context.Context, objectID uuid.UUID, limit int) ([]ObjectAgent, error)
}

// StackReader is the stacks use case's scoped read (it decides who may see a
// stack and its objects).
type StackReader interface {
	Get(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error)
	GetDeploymentObject(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.DeploymentObject, error)
}

// Service implements the read models.
type Service struct {
	store  ReadModel
	stacks StackReader
}

// NewService wires the read models.
func NewService(store ReadModel, stacks StackReader) *Service {
	return &Service{store: store, stacks: stacks}
}

var errAdminOnly = domain.ForbiddenCode("admin_required", "Admin access required")

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	// DefaultStaleAfter is used when the caller gives no window.
	DefaultStaleAfter = agent.StaleAfter
)

func clampPage(limit, offset int) (int, int, error) {
	if limit < 0 || offset < 0 {
		return 0, 0, domain.Invalid("limit and offset must not be negative")
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	return min(limit, MaxLimit), offset, nil
}

// Fleet returns one page of agents with their summaries (admin only).
func (s *Service) Fleet(ctx context.Context, p identity.Principal, q FleetQuery) (FleetPage, error) {
	if !p.IsAdmin() {
		return FleetPage{}, errAdminOnly
	}
	var err error
	if q.Limit, q.Offset, err = clampPage(q.Limit, q.Offset); err != nil {
		return FleetPage{}, err
	}
	switch q.Sort {
	case "":
		q.Sort = SortName
	case SortName, SortCluster, SortHeartbeat, SortCreated:
	default:
		return FleetPage{}, domain.Invalid("sort must be name, cluster, heartbeat or created")
	}
	switch q.State {
	case "", StateOnline, StateStale, StateNever, StateInactive, StateFailing:
	default:
		return FleetPage{}, domain.Invalid("state must be online, stale, never, inactive or failing")
	}
	if q.StaleAfter <= 0 {
		q.StaleAfter = DefaultStaleAfter
	}
	q.Text = strings.TrimSpace(q.Text)
	q.Label = strings.TrimSpace(q.Label)
	if len(q.Text) > 255 || len(q.Label) > 255 {
		return FleetPage{}, domain.Invalid("filters cannot exceed 255 characters")
	}
	rows, err := s.store.Fleet(ctx, q)
	if err != nil {
		return FleetPage{}, err
	}
	counts, err := s.store.FleetCounts(ctx, q.StaleAfter)
	if err != nil {
		return FleetPage{}, err
	}
	// Without a text or label filter the counts already say how many match.
	matched := map[string]int{"": counts.Total, StateOnline: counts.Online, StateStale: counts.Stale,
		StateNever: counts.Never, StateInactive: counts.Inactive, StateFailing: counts.Failing}[q.State]
	if q.Text != "" || q.Label != "" {
		if matched, err = s.store.CountFleet(ctx, q); err != nil {
			return FleetPage{}, err
		}
	}
	return FleetPage{Rows: rows, Matched: matched, Counts: counts, Query: q}, nil
}

// AgentStacks lists the stacks the agent receives and why (admin only, as
// the fleet).
func (s *Service) AgentStacks(ctx context.Context, p identity.Principal, agentID uuid.UUID) ([]AgentStack, error) {
	if !p.IsAdmin() {
		return nil, errAdminOnly
	}
	return s.store.AgentStacks(ctx, agentID)
}

// StackObjects lists one page of a stack's live objects, newest sequence
// first, for whoever may read the stack.
func (s *Service) StackObjects(ctx context.Context, p identity.Principal, stackID uuid.UUID, limit, offset int) ([]ObjectRow, int, error) {
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return nil, 0, err
	}
	limit, offset, err := clampPage(limit, offset)
	if err != nil {
		return nil, 0, err
	}
	return s.store.StackObjects(ctx, stackID, limit, offset)
}

// ObjectAgents lists the agents that reported on an object, with their
// latest event and health (admin only, as GET /deployment-objects/{id}/health).
func (s *Service) ObjectAgents(ctx context.Context, p identity.Principal, objectID uuid.UUID) ([]ObjectAgent, error) {
	if !p.IsAdmin() {
		return nil, errAdminOnly
	}
	if _, err := s.stacks.GetDeploymentObject(ctx, p, objectID); err != nil {
		return nil, err
	}
	return s.store.ObjectAgents(ctx, objectID, MaxLimit)
}
