// Package agent holds the agent aggregate: a cluster's identity, its
// explicit stack targets and the events it reports (its labels and
// annotations are pkg/domain/labels). The JSON tags are the wire format of
// the api, kept on the type on purpose (docs/architecture.md#persistence).
package agent

import (
	"time"

	"github.com/google/uuid"
)

// Status values. New agents are ACTIVE
// (docs/compatibility.md#agent-status-on-create); only ACTIVE agents
// receive target state.
const (
	StatusActive   = "ACTIVE"
	StatusInactive = "INACTIVE"
)

// StaleAfter is how old a heartbeat may be before the agent counts as stale
// (the console highlights it; a heartbeat after it is pushed to live views).
const StaleAfter = 5 * time.Minute

// Agent is a registered cluster agent.
type Agent struct {
	ID            uuid.UUID  `json:"id"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeletedAt     *time.Time `json:"deleted_at"`
	Name          string     `json:"name"`
	ClusterName   string     `json:"cluster_name"`
	LastHeartbeat *time.Time `json:"last_heartbeat"`
	Status        string     `json:"status"`
	PakHash       string     `json:"-"`
}

// Target binds an agent to a stack explicitly.
type Target struct {
	ID      uuid.UUID `json:"id"`
	AgentID uuid.UUID `json:"agent_id"`
	StackID uuid.UUID `json:"stack_id"`
}

// Event is what an agent reports about a deployment object.
type Event struct {
	ID                 uuid.UUID  `json:"id"`
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at"`
	DeletedAt          *time.Time `json:"deleted_at"`
	AgentID            uuid.UUID  `json:"agent_id"`
	DeploymentObjectID uuid.UUID  `json:"deployment_object_id"`
	EventType          string     `json:"event_type"`
	Status             string     `json:"status"`
	Message            *string    `json:"message"`
}

// Event status values the agent sends. Others are stored as given.
const (
	EventSuccess = "SUCCESS"
	EventFailure = "FAILURE"
)

// Event types the agent sends: DEPLOY for an apply (or deletion) outcome,
// DRIFT when a managed object no longer matches what was applied.
const (
	EventTypeDeploy = "DEPLOY"
	EventTypeDrift  = "DRIFT"
)
