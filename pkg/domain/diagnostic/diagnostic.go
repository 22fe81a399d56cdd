// Package diagnostic describes on-demand diagnostic requests: an admin asks
// an agent to collect pod statuses, events and log tails for a deployment
// object; the agent claims, collects and submits the result.
package diagnostic

import (
	"time"

	"github.com/google/uuid"
)

// Request statuses: pending → claimed → completed | failed; pending →
// expired when nobody claims it in time.
const (
	Pending   = "pending"
	Claimed   = "claimed"
	Completed = "completed"
	Failed    = "failed"
	Expired   = "expired"
)

// Retention bounds, in minutes.
const (
	DefaultRetentionMinutes = 60
	MaxRetentionMinutes     = 1440
)

// Request is one diagnostic request.
type Request struct {
	ID                 uuid.UUID  `json:"id"`
	AgentID            uuid.UUID  `json:"agent_id"`
	DeploymentObjectID uuid.UUID  `json:"deployment_object_id"`
	Status             string     `json:"status"`
	RequestedBy        *string    `json:"requested_by"`
	CreatedAt          time.Time  `json:"created_at"`
	ClaimedAt          *time.Time `json:"claimed_at"`
	CompletedAt        *time.Time `json:"completed_at"`
	ExpiresAt          time.Time  `json:"expires_at"`
}

// Result is what the agent collected. The three data fields are JSON
// documents carried as strings, as the original's API returns them.
type Result struct {
	ID          uuid.UUID `json:"id"`
	RequestID   uuid.UUID `json:"request_id"`
	PodStatuses string    `json:"pod_statuses"`
	Events      string    `json:"events"`
	LogTails    *string   `json:"log_tails"`
	Error       *string   `json:"error"`
	CollectedAt time.Time `json:"collected_at"`
	CreatedAt   time.Time `json:"created_at"`
}
