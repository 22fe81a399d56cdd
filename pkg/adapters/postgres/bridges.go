package postgres

import (
	"context"

	"github.com/google/uuid"
)

// These methods let ports of other contexts that are still one interface
// bound to Store (stacks.Store, templates.Store, health.Store) reach
// methods that moved to the repositories of agents, generators and labels.
// Each only delegates; once those ports are split, bind them to the
// repository and delete the method here.

// AgentMayReport delegates to AgentEvents.
func (s *Store) AgentMayReport(ctx context.Context, agentID, objectID uuid.UUID) (bool, error) {
	return NewAgentEvents(s).AgentMayReport(ctx, agentID, objectID)
}
