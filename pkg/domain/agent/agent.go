// Package agent holds the agent aggregate: a cluster's identity, its labels,
// annotations, explicit stack targets and the events it reports.
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

// Agent is a registered cluster agent.
// StaleAfter is how old a heartbeat may be before the agent counts as stale
// (the console highlights it; a heartbeat after it is pushed to live views).
const StaleAfter = 5 * time.Minute

type Agent struct {
	ID            uuid.UUID  `json:"id" db:"id"`
	CreatedAt     time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at" db:"updated_at"`
	DeletedAt     *time.Time `json:"deleted_at" db:"deleted_at"`
	Name          string     `json:"name" db:"name"`
	ClusterName   string     `json:"cluster_name" db:"cluster_name"`
	LastHeartbeat *time.Time `json:"last_heartbeat" db:"last_heartbeat"`
	Status        string     `json:"status" db:"status"`
	PakHash       string     `json:"-" db:"pak_hash"`
}

// Label is one agent label.
type Label struct {
	ID      uuid.UUID `json:"id" db:"id"`
	AgentID uuid.UUID `json:"agent_id" db:"agent_id"`
	Label   string    `json:"label" db:"label"`
}

// Annotation is one agent annotation (one value per key).
type Annotation struct {
	ID      uuid.UUID `json:"id" db:"id"`
	AgentID uuid.UUID `json:"agent_id" db:"agent_id"`
	Key     string    `json:"key" db:"key"`
	Value   string    `json:"value" db:"value"`
}

// Target binds an agent to a stack explicitly.
type Target struct {
	ID      uuid.UUID `json:"id" db:"id"`
	AgentID uuid.UUID `json:"agent_id" db:"agent_id"`
	StackID uuid.UUID `json:"stack_id" db:"stack_id"`
}

// Event is what an agent reports about a deployment object.
type Event struct {
	ID                 uuid.UUID  `json:"id" db:"id"`
	CreatedAt          time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at" db:"updated_at"`
	DeletedAt          *time.Time `json:"deleted_at" db:"deleted_at"`
	AgentID            uuid.UUID  `json:"agent_id" db:"agent_id"`
	DeploymentObjectID uuid.UUID  `json:"deployment_object_id" db:"deployment_object_id"`
	EventType          string     `json:"event_type" db:"event_type"`
	Status             string     `json:"status" db:"status"`
	Message            *string    `json:"message" db:"message"`
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
