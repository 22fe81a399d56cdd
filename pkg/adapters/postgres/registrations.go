package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

var _ registrations.Repository = (*Registrations)(nil)

// Registrations is the repository of generator registrations
// (agent_generator_registrations, migration 0011).
type Registrations struct{ s *Store }

// NewRegistrations returns the registration repository on s.
func NewRegistrations(s *Store) *Registrations { return &Registrations{s: s} }

const registrationCols = `id, agent_id, generator_id, registered_at`

// Register records the pair; ErrConflict when it exists (the unique
// constraint).
func (r *Registrations) Register(ctx context.Context, agentID, generatorID uuid.UUID) (agent.Registration, error) {
	var reg agent.Registration
	err := r.s.q(ctx).GetContext(ctx, &reg, `INSERT INTO agent_generator_registrations (agent_id, generator_id)
		VALUES ($1, $2) RETURNING `+registrationCols, agentID, generatorID)
	return reg, mapErr(err)
}

// Deregister removes the pair and, in the same statement, the agent's
// explicit targets on the generator's stacks (a system stack belongs to the
// system generator).
func (r *Registrations) Deregister(ctx context.Context, agentID, generatorID uuid.UUID) (bool, error) {
	var removed bool
	err := r.s.q(ctx).GetContext(ctx, &removed, `WITH reg AS (
			DELETE FROM agent_generator_registrations WHERE agent_id = $1 AND generator_id = $2 RETURNING 1
		), tgt AS (
			DELETE FROM agent_targets t USING stacks s
			 WHERE t.agent_id = $1 AND s.id = t.stack_id AND COALESCE(s.generator_id, $3) = $2 RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM reg)`, agentID, generatorID, generator.SystemID)
	return removed, mapErr(err)
}

// ListByAgent lists the agent's registrations, oldest first.
func (r *Registrations) ListByAgent(ctx context.Context, agentID uuid.UUID) ([]agent.Registration, error) {
	return selectAll[agent.Registration](ctx, r.s.q(ctx), `SELECT `+registrationCols+` FROM agent_generator_registrations
		WHERE agent_id = $1 ORDER BY registered_at, id`, agentID)
}

// ListByGenerator lists the registrations of live agents with the
// generator, oldest first.
func (r *Registrations) ListByGenerator(ctx context.Context, generatorID uuid.UUID) ([]agent.Registration, error) {
	return selectAll[agent.Registration](ctx, r.s.q(ctx), `SELECT `+prefixed("r.", registrationCols)+` FROM agent_generator_registrations r
		JOIN agents a ON a.id = r.agent_id AND a.deleted_at IS NULL
		WHERE r.generator_id = $1 ORDER BY r.registered_at, r.id`, generatorID)
}

// IsRegistered reports whether the agent is registered with gen (nil: the
// system generator).
func (r *Registrations) IsRegistered(ctx context.Context, agentID uuid.UUID, gen *uuid.UUID) (bool, error) {
	g := generator.SystemID
	if gen != nil {
		g = *gen
	}
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM agent_generator_registrations
		WHERE agent_id = $1 AND generator_id = $2)`, agentID, g)
	return ok, mapErr(err)
}
