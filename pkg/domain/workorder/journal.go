package workorder

// Event types (spec/api.md §5.2) and the ones this implementation adds.
const (
	EventCreated   = "workorder.created"
	EventClaimed   = "workorder.claimed"
	EventCompleted = "workorder.completed"
	EventFailed    = "workorder.failed"
	// Added: a failed attempt (or an expired claim) scheduled a retry, and
	// an admin (or a Replace schedule) cancelled an order.
	EventRetryScheduled = "workorder.retry_scheduled"
	EventCancelled      = "workorder.cancelled"

	EventScheduleCreated = "schedule.created"
	EventScheduleUpdated = "schedule.updated"
	EventScheduleDeleted = "schedule.deleted"
)

// Audit actions. The original defines workorder.* but records none; here
// every state change is recorded with the real actor (DECISIONS 32).
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
