package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
)

// Fleet reads the fleet record (pkg/app/fleet). Each signal is one grouped
// query over the whole fleet (fleetSignalQueries), so the statements a list
// costs do not grow with the number of agents; TestFleetQueryCount holds
// that.
type Fleet struct{ s *Store }

// NewFleet returns the fleet repository over s.
func NewFleet(s *Store) *Fleet { return &Fleet{s: s} }

var _ fleet.Repository = (*Fleet)(nil)

// generatorAgents is the agents registered with a generator ($1 =
// generator id), 0.9.1's meaning of pak_id (docs/compatibility.md#fleet-record).
const generatorAgents = `SELECT agent_id FROM agent_generator_registrations WHERE generator_id = $1`

// Agents lists live agents by name and cluster, optionally only a
// generator's.
func (r *Fleet) Agents(ctx context.Context, generatorID *uuid.UUID) ([]fleet.Agent, error) {
	if generatorID == nil {
		return selectAll[fleet.Agent](ctx, r.s.q(ctx), `SELECT id, name, cluster_name, status, last_heartbeat
			FROM agents WHERE deleted_at IS NULL ORDER BY name, cluster_name`)
	}
	return selectAll[fleet.Agent](ctx, r.s.q(ctx), `SELECT id, name, cluster_name, status, last_heartbeat
		FROM agents WHERE deleted_at IS NULL AND id IN (`+generatorAgents+`) ORDER BY name, cluster_name`, *generatorID)
}

// Agent returns one live agent.
func (r *Fleet) Agent(ctx context.Context, id uuid.UUID) (fleet.Agent, error) {
	var a fleet.Agent
	err := r.s.q(ctx).GetContext(ctx, &a, `SELECT id, name, cluster_name, status, last_heartbeat
		FROM agents WHERE id = $1 AND deleted_at IS NULL`, id)
	if isNoRows(err) {
		return fleet.Agent{}, domain.NotFound("Agent not found")
	}
	return a, mapErr(err)
}

// fleetSignalQueries are the grouped queries, one per signal, each
// answering (agent_id, n) or (agent_id, at) for the agents that have a
// non-zero value. They are the per-agent rules of the routes they mirror,
// rewritten over every agent at once.
var fleetSignalQueries = []struct {
	name  string
	query string
	set   func(s *fleet.Signals, n int64, at *time.Time)
}{
	// The agent's target state (docs/compatibility.md#target-state) less
	// what it acknowledged: the latest live object of each associated live
	// stack, or the deletion marker of a stack deleted since the agent
	// exists, for ACTIVE agents; see AgentState in target_state.go.
	{"pending objects", `
		WITH assoc AS (
			SELECT agent_id, stack_id FROM agent_targets
			UNION
			SELECT al.agent_id, sl.stack_id FROM stack_labels sl JOIN agent_labels al ON al.label = sl.label
			UNION
			SELECT aa.agent_id, sa.stack_id FROM stack_annotations sa
				JOIN agent_annotations aa ON aa.key = sa.key AND aa.value = sa.value
		), latest AS (
			SELECT DISTINCT ON (stack_id) stack_id, id, is_deletion_marker
			FROM deployment_objects WHERE deleted_at IS NULL ORDER BY stack_id, sequence_id DESC
		)
		SELECT a.id AS agent_id, count(*) AS n, NULL::timestamptz AS at
		FROM assoc
		JOIN agents a ON a.id = assoc.agent_id AND a.deleted_at IS NULL AND a.status = 'ACTIVE'
		JOIN stacks st ON st.id = assoc.stack_id
		JOIN latest l ON l.stack_id = st.id
		WHERE (st.deleted_at IS NULL OR (l.is_deletion_marker AND st.deleted_at >= a.created_at))
		  AND NOT EXISTS (SELECT 1 FROM agent_events e WHERE e.agent_id = a.id AND e.deployment_object_id = l.id
			AND e.deleted_at IS NULL AND e.status = 'SUCCESS')
		GROUP BY a.id`,
		func(s *fleet.Signals, n int64, _ *time.Time) { s.PendingObjects = n }},
	// PENDING orders the agent may claim: eligibleFor in workorders.go
	// over every agent (hard target, shared label, shared annotation pair;
	// live ACTIVE agents).
	{"pending work orders", `
		WITH elig AS (
			SELECT t.work_order_id, t.agent_id FROM work_order_targets t
			UNION
			SELECT l.work_order_id, al.agent_id FROM work_order_labels l JOIN agent_labels al ON al.label = l.label
			UNION
			SELECT x.work_order_id, aa.agent_id FROM work_order_annotations x
				JOIN agent_annotations aa ON aa.key = x.key AND aa.value = x.value
		)
		SELECT a.id AS agent_id, count(*) AS n, NULL::timestamptz AS at
		FROM elig JOIN work_orders wo ON wo.id = elig.work_order_id AND wo.status = 'PENDING'
		JOIN agents a ON a.id = elig.agent_id AND a.deleted_at IS NULL AND a.status = 'ACTIVE'
		GROUP BY a.id`,
		func(s *fleet.Signals, n int64, _ *time.Time) { s.PendingWorkOrders = n }},
	{"claimed work orders", `SELECT claimed_by AS agent_id, count(*) AS n, NULL::timestamptz AS at
		FROM work_orders WHERE status = 'CLAIMED' GROUP BY claimed_by`,
		func(s *fleet.Signals, n int64, _ *time.Time) { s.ClaimedWorkOrders = n }},
	{"last event", `SELECT agent_id, 0::bigint AS n, max(created_at) AS at
		FROM agent_events WHERE deleted_at IS NULL GROUP BY agent_id`,
		func(s *fleet.Signals, _ int64, at *time.Time) { s.LastEventAt = at }},
	// Failing and degraded come from one scan; each row sets both.
	{"health", `SELECT agent_id, count(*) FILTER (WHERE status = 'failing') AS n,
		NULL::timestamptz AS at, count(*) FILTER (WHERE status = 'degraded') AS m
		FROM deployment_health WHERE status IN ('failing', 'degraded') GROUP BY agent_id`, nil},
}

type fleetSignalRow struct {
	AgentID uuid.UUID  `db:"agent_id"`
	N       int64      `db:"n"`
	At      *time.Time `db:"at"`
	M       int64      `db:"m"`
}

// Signals runs the grouped queries and merges them by agent.
func (r *Fleet) Signals(ctx context.Context) (map[uuid.UUID]fleet.Signals, error) {
	out := map[uuid.UUID]fleet.Signals{}
	for _, q := range fleetSignalQueries {
		var rows []fleetSignalRow
		if err := r.s.q(ctx).SelectContext(ctx, &rows, q.query); err != nil {
			return nil, mapErr(err)
		}
		for _, row := range rows {
			s := out[row.AgentID]
			if q.set != nil {
				q.set(&s, row.N, row.At)
			} else {
				s.HealthFailing, s.HealthDegraded = row.N, row.M
			}
			out[row.AgentID] = s
		}
	}
	return out, nil
}

// RecentEvents returns the agent's latest live events, newest first.
func (r *Fleet) RecentEvents(ctx context.Context, agentID uuid.UUID, limit int) ([]agent.Event, error) {
	return selectAll[agent.Event](ctx, r.s.q(ctx), `SELECT `+eventCols+` FROM agent_events
		WHERE agent_id = $1 AND deleted_at IS NULL ORDER BY created_at DESC, id LIMIT $2`, agentID, limit)
}
