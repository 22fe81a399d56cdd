package stack

import "github.com/google/uuid"

// MaxDependencies bounds one stack's depends_on list.
const MaxDependencies = 50

// Why a dependency is not ready on an agent (docs/dependencies.md#explain).
const (
	// WaitNotApplied: the agent has reported neither SUCCESS nor FAILURE
	// for the dependency's latest object (or the dependency has no object).
	WaitNotApplied = "not_applied"
	// WaitFailed: the agent's newest report on that object is FAILURE.
	WaitFailed = "failed"
	// WaitUnhealthy: applied, but the agent's deployment health for it is
	// not healthy (degraded, failing, unknown, or not reported yet).
	WaitUnhealthy = "unhealthy"
	// WaitNotAssociated: the dependency is not associated with the agent.
	WaitNotAssociated = "not_associated"
)

// DependencyWait is one dependency an agent still waits for.
type DependencyWait struct {
	StackID uuid.UUID `json:"stack_id"`
	// DeploymentObjectID is the dependency's latest object (nil when it
	// has none).
	DeploymentObjectID *uuid.UUID `json:"deployment_object_id"`
	Reason             string     `json:"reason"`
	// Health is the agent's deployment health for that object (nil when
	// not reported).
	Health *string `json:"health"`
}

// Withheld is a stack whose latest object an agent does not receive yet
// because of its dependencies.
type Withheld struct {
	StackID            uuid.UUID        `json:"stack_id"`
	DeploymentObjectID uuid.UUID        `json:"deployment_object_id"`
	SequenceID         int64            `json:"sequence_id"`
	WaitingFor         []DependencyWait `json:"waiting_for"`
}
