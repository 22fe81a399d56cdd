package workorder

import "github.com/brokkr-go/brokkr/pkg/domain/event"

// Event types of work orders and schedules (the catalog lives in
// pkg/domain/event).
const (
	EventCreated         = event.WorkOrderCreated
	EventClaimed         = event.WorkOrderClaimed
	EventCompleted       = event.WorkOrderCompleted
	EventFailed          = event.WorkOrderFailed
	EventRetryScheduled  = event.WorkOrderRetryScheduled
	EventCancelled       = event.WorkOrderCancelled
	EventScheduleCreated = event.ScheduleCreated
	EventScheduleUpdated = event.ScheduleUpdated
	EventScheduleDeleted = event.ScheduleDeleted
)

// Audit actions. The original defines workorder.* but records none; here
// every state change is recorded with the real actor
// (docs/compatibility.md#audit).
const (
	ActionCreated        = "workorder.created"
	ActionClaimed        = "workorder.claimed"
	ActionCompleted      = "workorder.completed"
	ActionFailed         = "workorder.failed"
	ActionRetryScheduled = "workorder.retry"
	ActionClaimExpired   = "workorder.claim_expired"
	ActionCancelled      = "workorder.cancelled"

	ActionScheduleCreated  = "schedule.created"
	ActionScheduleUpdated  = "schedule.updated"
	ActionScheduleDeleted  = "schedule.deleted"
	ActionScheduleEnabled  = "schedule.enabled"
	ActionScheduleDisabled = "schedule.disabled"
)

// Audit resource types.
const (
	ResourceWorkOrder = "work_order"
	ResourceSchedule  = "work_order_schedule"
)
