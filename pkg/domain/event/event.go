// Package event describes domain events: what the outbox stores and webhooks
// deliver, with the original's type names and envelope.
package event

import (
	"time"

	"github.com/google/uuid"
)

// Event types (docs/webhooks.md#events).
const (
	AgentRegistered   = "agent.registered"
	AgentDeregistered = "agent.deregistered"
	StackCreated      = "stack.created"
	StackDeleted      = "stack.deleted"
	DeploymentCreated = "deployment.created"
	DeploymentApplied = "deployment.applied"
	DeploymentFailed  = "deployment.failed"
	DeploymentDeleted = "deployment.deleted"
	// DeploymentDrifted is new: an agent found a managed object changed by
	// hand (and, in correct mode, restored it).
	DeploymentDrifted = "deployment.drifted"

	WorkOrderCreated   = "workorder.created"
	WorkOrderClaimed   = "workorder.claimed"
	WorkOrderCompleted = "workorder.completed"
	WorkOrderFailed    = "workorder.failed"
	// Added: a failed attempt (or an expired claim) scheduled a retry, and
	// an admin (or a Replace schedule) cancelled an order.
	WorkOrderRetryScheduled = "workorder.retry_scheduled"
	WorkOrderCancelled      = "workorder.cancelled"

	// Added: work-order schedules changed.
	ScheduleCreated = "schedule.created"
	ScheduleUpdated = "schedule.updated"
	ScheduleDeleted = "schedule.deleted"

	// Added: progressive rollouts and rollback (docs/rollouts.md#events).
	RolloutWaveStarted = "rollout.wave_started"
	RolloutHalted      = "rollout.halted"
	RolloutCompleted   = "rollout.completed"
	StackRolledBack    = "stack.rolled_back"
)

// Event is a domain event recorded in the outbox.
type Event struct {
	ID        uuid.UUID      `json:"id"`
	Type      string         `json:"event_type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// New builds an event with a fresh id.
func New(typ string, data map[string]any) Event {
	return Event{ID: uuid.New(), Type: typ, Timestamp: time.Now().UTC(), Data: data}
}
