package postgres

import (
	"time"

	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

const agentCols = `id, created_at, updated_at, deleted_at, name, cluster_name, last_heartbeat, status, pak_hash`

// ListAgents returns live agents in creation order.
func (s *Store) ListAgents(ctx context.Context) ([]agent.Agent, error) {
	out := []agent.Agent{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+agentCols+` FROM agents WHERE deleted_at IS NULL ORDER BY created_at, id`)
	return out, mapErr(err)
}

// CreateAgent inserts a, filling id and timestamps.
func (s *Store) CreateAgent(ctx context.Context, a *agent.Agent) error {
	err := s.q(ctx).GetContext(ctx, a, `INSERT INTO agents (name, cluster_name, status, pak_hash)
		VALUES ($1, $2, $3, $4) RETURNING `+agentCols, a.Name, a.ClusterName, a.Status, a.PakHash)
	return mapErr(err)
}

// GetAgent returns a live agent.
func (s *Store) GetAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error) {
	var a agent.Agent
	err := s.q(ctx).GetContext(ctx, &a, `SELECT `+agentCols+` FROM agents WHERE id = $1 AND deleted_at IS NULL`, id)
	return a, notFound(err, "Agent not found")
}

// FindAgent looks an agent up by name and cluster.
func (s *Store) FindAgent(ctx context.Context, name, cluster string) (agent.Agent, error) {
	var a agent.Agent
	err := s.q(ctx).GetContext(ctx, &a, `SELECT `+agentCols+` FROM agents
		WHERE name = $1 AND cluster_name = $2 AND deleted_at IS NULL`, name, cluster)
	return a, notFound(err, "Agent not found")
}

// UpdateAgent locks the row, lets fn change it and writes it back.
func (s *Store) UpdateAgent(ctx context.Context, id uuid.UUID, fn func(*agent.Agent) error) (agent.Agent, error) {
	var out agent.Agent
	err := s.InTx(ctx, func(ctx context.Context) error {
		var a agent.Agent
		err := s.q(ctx).GetContext(ctx, &a, `SELECT `+agentCols+` FROM agents
			WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id)
		if err != nil {
			return notFound(err, "Agent not found")
		}
		if err := fn(&a); err != nil {
			return err
		}
		err = s.q(ctx).GetContext(ctx, &out, `UPDATE agents SET name = $2, cluster_name = $3, status = $4, pak_hash = $5
			WHERE id = $1 RETURNING `+agentCols, id, a.Name, a.ClusterName, a.Status, a.PakHash)
		return mapErr(err)
	})
	return out, err
}

// DeleteAgent soft-deletes a live agent; the trigger soft-deletes its events.
func (s *Store) DeleteAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error) {
	var a agent.Agent
	err := s.q(ctx).GetContext(ctx, &a, `UPDATE agents SET deleted_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+agentCols, id)
	return a, notFound(err, "Agent not found")
}

// Heartbeat stamps last_heartbeat and returns the agent with the previous
// heartbeat (nil: never seen), in the same statement. Outside a transaction
// the stamp joins the next batch of heartbeats (see heartbeats); inside one
// it is part of it.
func (s *Store) Heartbeat(ctx context.Context, id uuid.UUID) (agent.Agent, *time.Time, error) {
	if _, inTx := txFrom(ctx); !inTx {
		return s.beats.stamp(ctx, id)
	}
	var row beatRow
	err := s.q(ctx).GetContext(ctx, &row, heartbeatSQL, []string{id.String()})
	return row.Agent, row.Previous, notFound(err, "Agent not found")
}

// ListAgentLabels returns the agent's labels.
func (s *Store) ListAgentLabels(ctx context.Context, agentID uuid.UUID) ([]agent.Label, error) {
	out := []agent.Label{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT id, agent_id, label FROM agent_labels WHERE agent_id = $1 ORDER BY label`, agentID)
	return out, mapErr(err)
}

// AddAgentLabel inserts a label.
func (s *Store) AddAgentLabel(ctx context.Context, agentID uuid.UUID, label string) (agent.Label, error) {
	var l agent.Label
	err := s.q(ctx).GetContext(ctx, &l, `INSERT INTO agent_labels (agent_id, label) VALUES ($1, $2)
		RETURNING id, agent_id, label`, agentID, label)
	return l, mapErr(err)
}

// RemoveAgentLabel deletes a label; 404 when absent.
func (s *Store) RemoveAgentLabel(ctx context.Context, agentID uuid.UUID, label string) error {
	return s.deleteOne(ctx, "Label not found", `DELETE FROM agent_labels WHERE agent_id = $1 AND label = $2`, agentID, label)
}

// ListAgentAnnotations returns the agent's annotations.
func (s *Store) ListAgentAnnotations(ctx context.Context, agentID uuid.UUID) ([]agent.Annotation, error) {
	out := []agent.Annotation{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT id, agent_id, key, value FROM agent_annotations WHERE agent_id = $1 ORDER BY key`, agentID)
	return out, mapErr(err)
}

// AddAgentAnnotation inserts an annotation; the key is unique per agent.
func (s *Store) AddAgentAnnotation(ctx context.Context, agentID uuid.UUID, key, value string) (agent.Annotation, error) {
	var a agent.Annotation
	err := s.q(ctx).GetContext(ctx, &a, `INSERT INTO agent_annotations (agent_id, key, value) VALUES ($1, $2, $3)
		RETURNING id, agent_id, key, value`, agentID, key, value)
	return a, mapErr(err)
}

// RemoveAgentAnnotation deletes an annotation by key; 404 when absent.
func (s *Store) RemoveAgentAnnotation(ctx context.Context, agentID uuid.UUID, key string) error {
	return s.deleteOne(ctx, "Annotation not found", `DELETE FROM agent_annotations WHERE agent_id = $1 AND key = $2`, agentID, key)
}

// ListAgentTargets returns the agent's explicit targets.
func (s *Store) ListAgentTargets(ctx context.Context, agentID uuid.UUID) ([]agent.Target, error) {
	out := []agent.Target{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT id, agent_id, stack_id FROM agent_targets WHERE agent_id = $1 ORDER BY stack_id`, agentID)
	return out, mapErr(err)
}

// AddAgentTarget binds an agent to a live stack.
func (s *Store) AddAgentTarget(ctx context.Context, agentID, stackID uuid.UUID) (agent.Target, error) {
	var live bool
	if err := s.q(ctx).GetContext(ctx, &live, `SELECT EXISTS (SELECT 1 FROM stacks WHERE id = $1 AND deleted_at IS NULL)`, stackID); err != nil {
		return agent.Target{}, mapErr(err)
	}
	if !live {
		return agent.Target{}, domain.Unprocessable("Stack not found")
	}
	var t agent.Target
	err := s.q(ctx).GetContext(ctx, &t, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)
		RETURNING id, agent_id, stack_id`, agentID, stackID)
	return t, mapErr(err)
}

// RemoveAgentTarget deletes a target; 404 when absent.
func (s *Store) RemoveAgentTarget(ctx context.Context, agentID, stackID uuid.UUID) error {
	return s.deleteOne(ctx, "Target not found", `DELETE FROM agent_targets WHERE agent_id = $1 AND stack_id = $2`, agentID, stackID)
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

// AgentMayReport reports whether the agent may report events or health on
// the deployment object: its stack is associated with the agent now
// (target, label or annotation; deleted stacks included, for their deletion
// markers), or was, which the agent's earlier events or health reports on
// that stack's objects prove. false when the object does not exist.
func (s *Store) AgentMayReport(ctx context.Context, agentID, objectID uuid.UUID) (bool, error) {
	var ok bool
	err := s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (
		SELECT 1 FROM deployment_objects d WHERE d.id = $2 AND (
			d.stack_id IN (`+associatedStackIDs+`)
			OR EXISTS (SELECT 1 FROM agent_events e JOIN deployment_objects o ON o.id = e.deployment_object_id
			           WHERE e.agent_id = $1 AND o.stack_id = d.stack_id)
			OR EXISTS (SELECT 1 FROM deployment_health h JOIN deployment_objects o ON o.id = h.deployment_object_id
			           WHERE h.agent_id = $1 AND o.stack_id = d.stack_id)))`, agentID, objectID)
	return ok, mapErr(err)
}

// AssociatedStacks returns the live stacks associated with the agent.
func (s *Store) AssociatedStacks(ctx context.Context, agentID uuid.UUID) ([]stack.Stack, error) {
	rows := []stackRow{}
	err := s.q(ctx).SelectContext(ctx, &rows, `SELECT `+stackCols+` FROM stacks
		WHERE deleted_at IS NULL AND id IN (`+associatedStackIDs+`) ORDER BY id`, agentID)
	return stacksToDomain(rows), mapErr(err)
}

const eventCols = `id, created_at, updated_at, deleted_at, agent_id, deployment_object_id, event_type, status, message`

// ListAgentEvents returns the agent's live events, newest first.
func (s *Store) ListAgentEvents(ctx context.Context, agentID uuid.UUID) ([]agent.Event, error) {
	out := []agent.Event{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+eventCols+` FROM agent_events
		WHERE agent_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id`, agentID)
	return out, mapErr(err)
}

// ListEvents returns live events within scope, newest first.
func (s *Store) ListEvents(ctx context.Context, scope agents.EventScope) ([]agent.Event, error) {
	var (
		where = []string{"e.deleted_at IS NULL"}
		args  []any
	)
	if scope.AgentID != nil {
		args = append(args, *scope.AgentID)
		where = append(where, "e.agent_id = $1")
	}
	if scope.GeneratorID != nil {
		args = append(args, *scope.GeneratorID)
		where = append(where, `e.deployment_object_id IN (SELECT d.id FROM deployment_objects d
			JOIN stacks st ON st.id = d.stack_id WHERE st.generator_id = $1)`)
	}
	out := []agent.Event{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+prefixed("e.", eventCols)+` FROM agent_events e
		WHERE `+strings.Join(where, " AND ")+` ORDER BY e.created_at DESC, e.id`, args...)
	return out, mapErr(err)
}

// GetEvent returns one live event.
func (s *Store) GetEvent(ctx context.Context, id uuid.UUID) (agent.Event, error) {
	var e agent.Event
	err := s.q(ctx).GetContext(ctx, &e, `SELECT `+eventCols+` FROM agent_events WHERE id = $1 AND deleted_at IS NULL`, id)
	return e, notFound(err, "Agent event not found")
}

// CreateAgentEvent inserts an event; a missing deployment object is a 422.
func (s *Store) CreateAgentEvent(ctx context.Context, e *agent.Event) error {
	err := s.q(ctx).GetContext(ctx, e, `INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status, message)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+eventCols, e.AgentID, e.DeploymentObjectID, e.EventType, e.Status, e.Message)
	return domain.Rephrase(mapErr(err), domain.ErrUnprocessable, "Deployment object not found")
}

// GeneratorOwnsObject reports whether gen owns the stack of the object.
func (s *Store) GeneratorOwnsObject(ctx context.Context, gen, objectID uuid.UUID) (bool, error) {
	var ok bool
	err := s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM deployment_objects d
		JOIN stacks st ON st.id = d.stack_id WHERE d.id = $1 AND st.generator_id = $2)`, objectID, gen)
	return ok, mapErr(err)
}

// deleteOne runs a DELETE and maps "no row" to a 404 with msg.
func (s *Store) deleteOne(ctx context.Context, msg, query string, args ...any) error {
	res, err := s.q(ctx).ExecContext(ctx, query, args...)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.NotFound(msg)
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
