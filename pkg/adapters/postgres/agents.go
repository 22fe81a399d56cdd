package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

var (
	_ agents.AgentRepository  = (*Agents)(nil)
	_ agents.TargetRepository = (*Agents)(nil)
	_ agents.EventRepository  = (*AgentEvents)(nil)
)

// Agents is the repository of the agent aggregate: the agents themselves,
// their heartbeats (grouped by Store's batcher) and their explicit stack
// targets. Labels and annotations are AgentLabels (labels.go); reported
// events are AgentEvents.
type Agents struct{ s *Store }

// NewAgents returns the agent repository on s.
func NewAgents(s *Store) *Agents { return &Agents{s: s} }

const agentCols = `id, created_at, updated_at, deleted_at, name, cluster_name, last_heartbeat, status, pak_hash`

// ListAgents returns live agents in creation order.
func (r *Agents) ListAgents(ctx context.Context) ([]agent.Agent, error) {
	return selectAll[agent.Agent](ctx, r.s.q(ctx), `SELECT `+agentCols+` FROM agents WHERE deleted_at IS NULL ORDER BY created_at, id`)
}

// ListRegisteredAgents lists the live agents registered with the generator,
// in ListAgents' order.
func (r *Agents) ListRegisteredAgents(ctx context.Context, generatorID uuid.UUID) ([]agent.Agent, error) {
	return selectAll[agent.Agent](ctx, r.s.q(ctx), `SELECT `+prefixed("a.", agentCols)+` FROM agents a
		JOIN agent_generator_registrations r ON r.agent_id = a.id AND r.generator_id = $1
		WHERE a.deleted_at IS NULL ORDER BY a.created_at, a.id`, generatorID)
}

// CreateAgent inserts a, filling id and timestamps, and registers it with
// the system generator in the same statement: every agent, however created
// (API or CLI), receives the system generator's stacks.
func (r *Agents) CreateAgent(ctx context.Context, a *agent.Agent) error {
	return insertInto(ctx, r.s.q(ctx), a, `WITH a AS (
			INSERT INTO agents (name, cluster_name, status, pak_hash)
			VALUES ($1, $2, $3, $4) RETURNING `+agentCols+`
		), reg AS (
			INSERT INTO agent_generator_registrations (agent_id, generator_id) SELECT id, $5 FROM a
		)
		SELECT `+agentCols+` FROM a`, a.Name, a.ClusterName, a.Status, a.PakHash, generator.SystemID)
}

// GetAgent returns a live agent.
func (r *Agents) GetAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error) {
	return getOne[agent.Agent](ctx, r.s.q(ctx), "agent_not_found", "Agent not found",
		`SELECT `+agentCols+` FROM agents WHERE id = $1 AND deleted_at IS NULL`, id)
}

// FindAgent looks an agent up by name and cluster.
func (r *Agents) FindAgent(ctx context.Context, name, cluster string) (agent.Agent, error) {
	return getOne[agent.Agent](ctx, r.s.q(ctx), "agent_not_found", "Agent not found",
		`SELECT `+agentCols+` FROM agents
		WHERE name = $1 AND cluster_name = $2 AND deleted_at IS NULL`, name, cluster)
}

// UpdateAgent locks the row, lets fn change it and writes it back.
func (r *Agents) UpdateAgent(ctx context.Context, id uuid.UUID, fn func(*agent.Agent) error) (agent.Agent, error) {
	return updateLocked(ctx, r.s, "agent_not_found", "Agent not found", `SELECT `+agentCols+` FROM agents
			WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id, fn,
		func(ctx context.Context, a agent.Agent, out *agent.Agent) error {
			return r.s.q(ctx).GetContext(ctx, out, `UPDATE agents SET name = $2, cluster_name = $3, status = $4, pak_hash = $5
			WHERE id = $1 RETURNING `+agentCols, id, a.Name, a.ClusterName, a.Status, a.PakHash)
		})
}

// DeleteAgent soft-deletes a live agent; the trigger soft-deletes its events.
func (r *Agents) DeleteAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error) {
	return getOne[agent.Agent](ctx, r.s.q(ctx), "agent_not_found", "Agent not found",
		`UPDATE agents SET deleted_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+agentCols, id)
}

// Heartbeat stamps last_heartbeat and returns the agent with the previous
// heartbeat (nil: never seen), in the same statement. Outside a transaction
// the stamp joins the next batch of heartbeats (see heartbeats); inside one
// it is part of it.
func (r *Agents) Heartbeat(ctx context.Context, id uuid.UUID) (agent.Agent, *time.Time, error) {
	if _, inTx := txFrom(ctx); !inTx {
		return r.s.beats.stamp(ctx, id)
	}
	var row beatRow
	err := r.s.q(ctx).GetContext(ctx, &row, heartbeatSQL, []string{id.String()})
	return row.Agent, row.Previous, notFound(err, "agent_not_found", "Agent not found")
}

// ListAgentTargets returns the agent's explicit targets.
func (r *Agents) ListAgentTargets(ctx context.Context, agentID uuid.UUID) ([]agent.Target, error) {
	return selectAll[agent.Target](ctx, r.s.q(ctx), `SELECT id, agent_id, stack_id FROM agent_targets WHERE agent_id = $1 ORDER BY stack_id`, agentID)
}

// AddAgentTarget binds an agent to a live stack.
func (r *Agents) AddAgentTarget(ctx context.Context, agentID, stackID uuid.UUID) (agent.Target, error) {
	var live bool
	if err := r.s.q(ctx).GetContext(ctx, &live, `SELECT EXISTS (SELECT 1 FROM stacks WHERE id = $1 AND deleted_at IS NULL)`, stackID); err != nil {
		return agent.Target{}, mapErr(err)
	}
	if !live {
		return agent.Target{}, domain.Unprocessable("Stack not found")
	}
	if err := r.consented(ctx, agentID, stackID); err != nil {
		return agent.Target{}, err
	}
	var t agent.Target
	err := r.s.q(ctx).GetContext(ctx, &t, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)
		RETURNING id, agent_id, stack_id`, agentID, stackID)
	return t, mapErr(err)
}

// RemoveAgentTarget deletes a target; 404 when absent.
func (r *Agents) RemoveAgentTarget(ctx context.Context, agentID, stackID uuid.UUID) error {
	if err := r.consented(ctx, agentID, stackID); err != nil {
		return err
	}
	return r.s.deleteOne(ctx, "agent_target_not_found", "Target not found", `DELETE FROM agent_targets WHERE agent_id = $1 AND stack_id = $2`, agentID, stackID)
}

// consented enforces the consent boundary on explicit target changes, as
// 0.9.1 does: with the boundary on, the agent must be registered with the
// stack's generator (admins included). Off, it checks nothing.
func (r *Agents) consented(ctx context.Context, agentID, stackID uuid.UUID) error {
	if !r.s.registrationRequired {
		return nil
	}
	var ok bool
	// An unknown stack passes: the caller's own not-found answer follows.
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT NOT EXISTS (SELECT 1 FROM stacks s WHERE s.id = $2
		AND NOT EXISTS (SELECT 1 FROM agent_generator_registrations g
		                 WHERE g.agent_id = $1 AND g.generator_id = COALESCE(s.generator_id, $3)))`,
		agentID, stackID, generator.SystemID)
	if err != nil {
		return mapErr(err)
	}
	if !ok {
		return registrations.NotRegistered()
	}
	return nil
}

// associatedStackIDs is the association rule as SQL
// (docs/compatibility.md#stack-association): explicit
// targets, any shared label, any shared annotation pair. $1 is the agent id.
const associatedStackIDs = `
	SELECT stack_id FROM agent_targets WHERE agent_id = $1
	UNION
	SELECT sl.stack_id FROM stack_labels sl JOIN agent_labels al ON al.label = sl.label WHERE al.agent_id = $1
	UNION
	SELECT sa.stack_id FROM stack_annotations sa
	  JOIN agent_annotations aa ON aa.key = sa.key AND aa.value = sa.value WHERE aa.agent_id = $1`

// consentedStackIDs narrows associatedStackIDs to stacks whose generator
// (the system generator for a system stack) the agent is registered with:
// the consent boundary, on every association path, in the same statement.
const consentedStackIDs = `
	SELECT x.stack_id FROM (` + associatedStackIDs + `) x
	  JOIN stacks cs ON cs.id = x.stack_id
	  JOIN agent_generator_registrations cr ON cr.agent_id = $1
	   AND cr.generator_id = COALESCE(cs.generator_id, '00000000-0000-4000-8000-000000000001'::uuid)`

// association returns the association rule under the store's consent
// boundary.
func (s *Store) association() string {
	if s.registrationRequired {
		return consentedStackIDs
	}
	return associatedStackIDs
}

// AssociatedStacks returns the live stacks associated with the agent.
func (r *Agents) AssociatedStacks(ctx context.Context, agentID uuid.UUID) ([]stack.Stack, error) {
	return selectAs[stackRow](ctx, r.s.q(ctx), `SELECT `+stackCols+` FROM stacks
		WHERE deleted_at IS NULL AND id IN (`+r.s.association()+`) ORDER BY id`, agentID)
}

// AgentEvents is the repository of what agents report about deployment
// objects, and of who may see or report them.
type AgentEvents struct{ s *Store }

// NewAgentEvents returns the agent event repository on s.
func NewAgentEvents(s *Store) *AgentEvents { return &AgentEvents{s: s} }

const eventCols = `id, created_at, updated_at, deleted_at, agent_id, deployment_object_id, event_type, status, message`

// AgentMayReport reports whether the agent may report events or health on
// the deployment object: its stack is associated with the agent now
// (target, label or annotation; deleted stacks included, for their deletion
// markers), or was, which the agent's earlier events or health reports on
// that stack's objects prove. false when the object does not exist.
func (r *AgentEvents) AgentMayReport(ctx context.Context, agentID, objectID uuid.UUID) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (
		SELECT 1 FROM deployment_objects d WHERE d.id = $2 AND (
			d.stack_id IN (`+r.s.association()+`)
			OR EXISTS (SELECT 1 FROM agent_events e JOIN deployment_objects o ON o.id = e.deployment_object_id
			           WHERE e.agent_id = $1 AND o.stack_id = d.stack_id)
			OR EXISTS (SELECT 1 FROM deployment_health h JOIN deployment_objects o ON o.id = h.deployment_object_id
			           WHERE h.agent_id = $1 AND o.stack_id = d.stack_id)))`, agentID, objectID)
	return ok, mapErr(err)
}

// ListAgentEvents returns the agent's live events, newest first.
func (r *AgentEvents) ListAgentEvents(ctx context.Context, agentID uuid.UUID) ([]agent.Event, error) {
	return selectAll[agent.Event](ctx, r.s.q(ctx), `SELECT `+eventCols+` FROM agent_events
		WHERE agent_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id`, agentID)
}

// ListEvents returns live events within scope, newest first.
func (r *AgentEvents) ListEvents(ctx context.Context, scope agents.EventScope) ([]agent.Event, error) {
	var (
		where = []string{"e.deleted_at IS NULL"}
		args  []any
	)
	arg := func(v uuid.UUID) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if scope.AgentID != nil {
		where = append(where, "e.agent_id = "+arg(*scope.AgentID))
	}
	if scope.GeneratorID != nil {
		where = append(where, `e.deployment_object_id IN (SELECT d.id FROM deployment_objects d
			JOIN stacks st ON st.id = d.stack_id WHERE st.generator_id = `+arg(*scope.GeneratorID)+`)`)
	}
	if scope.RegisteredWith != nil {
		where = append(where, `e.agent_id IN (SELECT agent_id FROM agent_generator_registrations
			WHERE generator_id = `+arg(*scope.RegisteredWith)+`)`)
	}
	return selectAll[agent.Event](ctx, r.s.q(ctx), `SELECT `+prefixed("e.", eventCols)+` FROM agent_events e
		WHERE `+strings.Join(where, " AND ")+` ORDER BY e.created_at DESC, e.id`, args...)
}

// GetEvent returns one live event.
func (r *AgentEvents) GetEvent(ctx context.Context, id uuid.UUID) (agent.Event, error) {
	return getOne[agent.Event](ctx, r.s.q(ctx), "agent_event_not_found", "Agent event not found",
		`SELECT `+eventCols+` FROM agent_events WHERE id = $1 AND deleted_at IS NULL`, id)
}

// CreateAgentEvent inserts an event; a missing deployment object is a 422.
func (r *AgentEvents) CreateAgentEvent(ctx context.Context, e *agent.Event) error {
	err := insertInto(ctx, r.s.q(ctx), e, `INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status, message)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+eventCols, e.AgentID, e.DeploymentObjectID, e.EventType, e.Status, e.Message)
	if err != nil {
		return domain.Rephrase(err, domain.ErrUnprocessable, "Deployment object not found")
	}
	return nil
}

// GeneratorOwnsObject reports whether gen owns the stack of the object.
func (r *AgentEvents) GeneratorOwnsObject(ctx context.Context, gen, objectID uuid.UUID) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM deployment_objects d
		JOIN stacks st ON st.id = d.stack_id WHERE d.id = $1 AND st.generator_id = $2)`, objectID, gen)
	return ok, mapErr(err)
}

// deleteOne runs a DELETE and maps "no row" to a 404 with its stable code
// and msg.
func (s *Store) deleteOne(ctx context.Context, code, msg, query string, args ...any) error {
	res, err := s.q(ctx).ExecContext(ctx, query, args...)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.NotFoundCode(code, msg)
	}
	return nil
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
