package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/labels"
)

// These methods let ports of other contexts that are still one interface
// bound to Store (stacks.Store, templates.Store, health.Store) reach
// methods that moved to the repositories of agents, generators and labels.
// Each only delegates; once those ports are split, bind them to the
// repository and delete the method here.

// GeneratorExists delegates to Generators.
func (s *Store) GeneratorExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return NewGenerators(s).GeneratorExists(ctx, id)
}

// AgentMayReport delegates to AgentEvents.
func (s *Store) AgentMayReport(ctx context.Context, agentID, objectID uuid.UUID) (bool, error) {
	return NewAgentEvents(s).AgentMayReport(ctx, agentID, objectID)
}

// ListStackLabels delegates to StackLabels.
func (s *Store) ListStackLabels(ctx context.Context, stackID uuid.UUID) ([]labels.Label, error) {
	return NewStackLabels(s).ListLabels(ctx, stackID)
}

// ListStackAnnotations delegates to StackLabels.
func (s *Store) ListStackAnnotations(ctx context.Context, stackID uuid.UUID) ([]labels.Annotation, error) {
	return NewStackLabels(s).ListAnnotations(ctx, stackID)
}
