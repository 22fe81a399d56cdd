package rollouts

import (
	"context"

	"github.com/google/uuid"
)

// Waker asks the work-order-scheduler to advance a stack's rollout now
// (an asynq task per stack, coalesced while one waits).
type Waker interface {
	WakeRollout(ctx context.Context, stackID uuid.UUID)
}

// AgentWaiters finds the rollouts an agent's report may move.
type AgentWaiters interface {
	// AwaitingAgent returns the stacks whose progressing rollout released
	// the agent and waits for it (neither healthy nor failed yet).
	AwaitingAgent(ctx context.Context, agentID uuid.UUID) ([]uuid.UUID, error)
}

// Wakeups turns agent reports into rollout wake-ups, so a wave moves on
// as soon as its agents are healthy rather than at the next periodic
// advance (docs/rollouts.md#advancing).
type Wakeups struct {
	repo  AgentWaiters
	waker Waker
}

// NewWakeups wires the wake-ups.
func NewWakeups(repo AgentWaiters, w Waker) *Wakeups { return &Wakeups{repo: repo, waker: w} }

// AgentReported wakes the rollouts waiting for the agent, after it
// reported an event or its deployment health. Best effort: errors are
// dropped, the periodic advance covers them.
func (w *Wakeups) AgentReported(ctx context.Context, agentID uuid.UUID) {
	stacks, err := w.repo.AwaitingAgent(ctx, agentID)
	if err != nil {
		return
	}
	for _, id := range stacks {
		w.waker.WakeRollout(ctx, id)
	}
}
