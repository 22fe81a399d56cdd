package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Dependencies is the repository of stack dependencies
// (docs/dependencies.md): which stacks a stack depends on, who depends on
// a stack, and which stacks an agent does not receive yet because of them.
type Dependencies struct{ s *Store }

// NewDependencies returns the dependency repository over s.
func NewDependencies(s *Store) *Dependencies { return &Dependencies{s: s} }

// dependencyLockKey is the advisory lock that serialises changes to the
// dependency graph with each other and with stack deletions, so two
// concurrent updates cannot close a cycle the other did not see.
const dependencyLockKey int64 = 0x62726f6b6b72_14

// dependsOnCol selects a stack's dependencies as a JSON array (NULL when
// none), for every statement that reads stacks (stackCols): the stacks
// row must be reachable as "stacks".
const dependsOnCol = `(SELECT to_json(array_agg(sd.depends_on ORDER BY sd.depends_on))
	FROM stack_dependencies sd WHERE sd.stack_id = stacks.id) AS depends_on`

// dependencyWaits lists, for the stack st (a row of stacks in the
// enclosing statement) and agent $1, every live dependency with why it is
// not ready on that agent (reason NULL when it is): it must be associated
// with the agent, and the agent's newest SUCCESS/FAILURE report on its
// latest live object must be SUCCESS and its deployment health for that
// object healthy. Association uses the plain rule: a dependency has the
// same owner as st, so under the consent boundary an agent that receives
// st is registered with the dependency's generator too.
const dependencyWaits = `
	SELECT sd.depends_on AS dep_id, lo.id AS dep_object_id, dh.status AS health,
	       CASE
	         WHEN sd.depends_on NOT IN (` + associatedStackIDs + `) THEN 'not_associated'
	         WHEN lo.id IS NULL OR ev.status IS NULL THEN 'not_applied'
	         WHEN ev.status <> 'SUCCESS' THEN 'failed'
	         WHEN dh.status IS DISTINCT FROM 'healthy' THEN 'unhealthy'
	       END AS reason
	FROM stack_dependencies sd
	JOIN stacks ds ON ds.id = sd.depends_on AND ds.deleted_at IS NULL
	LEFT JOIN LATERAL (
		SELECT o.id FROM deployment_objects o
		WHERE o.stack_id = ds.id AND o.deleted_at IS NULL
		ORDER BY o.sequence_id DESC LIMIT 1) lo ON TRUE
	LEFT JOIN LATERAL (
		SELECT e.status FROM agent_events e
		WHERE e.agent_id = $1 AND e.deployment_object_id = lo.id AND e.deleted_at IS NULL
		  AND e.status IN ('SUCCESS', 'FAILURE')
		ORDER BY e.created_at DESC, e.id DESC LIMIT 1) ev ON TRUE
	LEFT JOIN deployment_health dh ON dh.agent_id = $1 AND dh.deployment_object_id = lo.id
	WHERE sd.stack_id = st.id`

// dependenciesReady is the dependency conjunct of the target state's
// deliverable (target_state.go): object d of stack st reaches agent $1
// when every dependency of st is ready there, or when the agent already
// reported on d (it was delivered once; a dependency turning unhealthy
// later does not take it back, so the agent never loses an object).
const dependenciesReady = `(NOT EXISTS (SELECT 1 FROM (` + dependencyWaits + `) w WHERE w.reason IS NOT NULL)
	OR EXISTS (SELECT 1 FROM agent_events de WHERE de.agent_id = $1 AND de.deployment_object_id = d.id AND de.deleted_at IS NULL))`

// hasDependencies is the dependency conjunct of the target state's gated:
// a stack with dependencies may differ between agents.
const hasDependencies = `(EXISTS (SELECT 1 FROM stack_dependencies gd WHERE gd.stack_id = st.id))`

// LockDependencies takes the transaction-scoped dependency lock. It must
// run inside InTx.
func (r *Dependencies) LockDependencies(ctx context.Context) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, dependencyLockKey)
	return mapErr(err)
}

// Dependencies returns what each of ids depends on; stacks without
// dependencies are absent from the map.
func (r *Dependencies) Dependencies(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error) {
	var rows []struct {
		StackID   uuid.UUID `db:"stack_id"`
		DependsOn uuid.UUID `db:"depends_on"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT stack_id, depends_on FROM stack_dependencies
		WHERE stack_id = ANY($1::uuid[]) ORDER BY stack_id, depends_on`, uuidStrings(ids))
	if err != nil {
		return nil, mapErr(err)
	}
	out := map[uuid.UUID][]uuid.UUID{}
	for _, row := range rows {
		out[row.StackID] = append(out[row.StackID], row.DependsOn)
	}
	return out, nil
}

// SetDependencies replaces stackID's dependencies with deps.
func (r *Dependencies) SetDependencies(ctx context.Context, stackID uuid.UUID, deps []uuid.UUID) error {
	return r.s.InTx(ctx, func(ctx context.Context) error {
		if _, err := r.s.q(ctx).ExecContext(ctx, `DELETE FROM stack_dependencies WHERE stack_id = $1`, stackID); err != nil {
			return mapErr(err)
		}
		if len(deps) == 0 {
			return nil
		}
		_, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO stack_dependencies (stack_id, depends_on)
			SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`, stackID, uuidStrings(deps))
		return mapErr(err)
	})
}

// Dependents returns the live stacks that depend on stackID, by id.
func (r *Dependencies) Dependents(ctx context.Context, stackID uuid.UUID) ([]uuid.UUID, error) {
	out := []uuid.UUID{}
	err := r.s.q(ctx).SelectContext(ctx, &out, `SELECT sd.stack_id FROM stack_dependencies sd
		JOIN stacks st ON st.id = sd.stack_id AND st.deleted_at IS NULL
		WHERE sd.depends_on = $1 ORDER BY sd.stack_id`, stackID)
	return out, mapErr(err)
}

// ObjectDependedOn reports whether the stack of deployment object objectID
// is a dependency of some live stack: an agent's report on it may release
// another stack's object to that agent.
func (r *Dependencies) ObjectDependedOn(ctx context.Context, objectID uuid.UUID) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM deployment_objects o
		JOIN stack_dependencies sd ON sd.depends_on = o.stack_id
		JOIN stacks st ON st.id = sd.stack_id AND st.deleted_at IS NULL
		WHERE o.id = $1)`, objectID)
	return ok, mapErr(err)
}

// withheldRow is one (withheld stack, dependency it waits for) pair.
type withheldRow struct {
	StackID     uuid.UUID  `db:"stack_id"`
	ObjectID    uuid.UUID  `db:"object_id"`
	SequenceID  int64      `db:"sequence_id"`
	DepID       uuid.UUID  `db:"dep_id"`
	DepObjectID *uuid.UUID `db:"dep_object_id"`
	Health      *string    `db:"health"`
	Reason      string     `db:"reason"`
}

// Withheld returns the live stacks associated with agentID whose latest
// object the agent does not receive because of their dependencies, with
// the dependencies each waits for, by stack and dependency id. The
// agent's association follows the store's rule (consent boundary
// included), as its target state does.
func (r *Dependencies) Withheld(ctx context.Context, agentID uuid.UUID) ([]stack.Withheld, error) {
	var rows []withheldRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `
		WITH heads AS (
			SELECT st.id AS stack_id, h.id AS object_id, h.sequence_id
			FROM (`+r.s.association()+`) a
			JOIN stacks st ON st.id = a.stack_id AND st.deleted_at IS NULL
			CROSS JOIN LATERAL (
				SELECT d.id, d.sequence_id, d.is_deletion_marker FROM deployment_objects d
				WHERE d.stack_id = st.id AND d.deleted_at IS NULL
				ORDER BY d.sequence_id DESC LIMIT 1) h
			WHERE NOT h.is_deletion_marker
			  AND NOT EXISTS (SELECT 1 FROM agent_events de WHERE de.agent_id = $1
			                  AND de.deployment_object_id = h.id AND de.deleted_at IS NULL)
		)
		SELECT heads.stack_id, heads.object_id, heads.sequence_id, w.dep_id, w.dep_object_id, w.health, w.reason
		FROM heads JOIN stacks st ON st.id = heads.stack_id
		CROSS JOIN LATERAL (`+dependencyWaits+`) w
		WHERE w.reason IS NOT NULL
		ORDER BY heads.stack_id, w.dep_id`, agentID)
	if err != nil {
		return nil, mapErr(err)
	}
	out := []stack.Withheld{}
	for _, row := range rows {
		if n := len(out); n == 0 || out[n-1].StackID != row.StackID {
			out = append(out, stack.Withheld{StackID: row.StackID, DeploymentObjectID: row.ObjectID, SequenceID: row.SequenceID})
		}
		w := &out[len(out)-1]
		w.WaitingFor = append(w.WaitingFor, stack.DependencyWait{StackID: row.DepID,
			DeploymentObjectID: row.DepObjectID, Health: row.Health, Reason: row.Reason})
	}
	return out, nil
}
