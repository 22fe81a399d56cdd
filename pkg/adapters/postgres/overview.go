package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Overview answers the console's read models: the fleet page, an agent's
// stacks, a stack's objects and an object's agents.
type Overview struct{ s *Store }

// NewOverview returns the console's read-model queries over s.
func NewOverview(s *Store) *Overview { return &Overview{s: s} }

var _ overview.ReadModel = (*Overview)(nil)

// fleetOrder maps a sort key and direction to its ORDER BY. Each matches an
// index on live agents (name and cluster are unique together; migration 0009
// adds the others), so the first page is an index range scan that stops
// after LIMIT rows instead of a sort of the whole fleet. Agents never seen
// sort as the oldest heartbeats.
var fleetOrder = map[string][2]string{
	overview.SortName:      {"a.name, a.cluster_name", "a.name DESC, a.cluster_name DESC"},
	overview.SortCluster:   {"a.cluster_name, a.name", "a.cluster_name DESC, a.name DESC"},
	overview.SortHeartbeat: {"a.last_heartbeat NULLS FIRST, a.id", "a.last_heartbeat DESC NULLS LAST, a.id DESC"},
	overview.SortCreated:   {"a.created_at, a.id", "a.created_at DESC, a.id DESC"},
}

// failingAgent is true when one of the agent's objects is failing: its
// health is failing or degraded, or its latest word on it is a FAILURE not
// followed by a SUCCESS. The SUCCESS probe is a LIMIT 1 subquery on
// idx_agent_events_ack per failure, so the cost follows the number of
// failures rather than the size of the event history.
const failingAgent = `a.id IN (` + failingAgentIDs + `)`

const failingAgentIDs = `SELECT h.agent_id FROM deployment_health h WHERE h.status IN ('failing', 'degraded')
	UNION
	SELECT e.agent_id FROM agent_events e WHERE e.deleted_at IS NULL AND e.status = 'FAILURE'
		AND (SELECT 1 FROM agent_events ok WHERE ok.agent_id = e.agent_id AND ok.deployment_object_id = e.deployment_object_id
			AND ok.deleted_at IS NULL AND ok.status = 'SUCCESS' LIMIT 1) IS NULL`

// heartbeatState is the SQL of each heartbeat state ($1 = stale window in
// seconds).
var heartbeatState = map[string]string{
	overview.StateOnline:   `a.status = 'ACTIVE' AND a.last_heartbeat >= now() - $1 * interval '1 second'`,
	overview.StateStale:    `a.status = 'ACTIVE' AND a.last_heartbeat < now() - $1 * interval '1 second'`,
	overview.StateNever:    `a.status = 'ACTIVE' AND a.last_heartbeat IS NULL`,
	overview.StateInactive: `a.status <> 'ACTIVE'`,
	overview.StateFailing:  `a.status = 'ACTIVE' AND (` + failingAgent + `)`,
}

// fleetSummary computes a page's per-agent summaries. The latest live
// object of every associated stack (target, label or annotation, as target
// state) is judged on this agent: acknowledged (a SUCCESS event), latest
// event a FAILURE, and reported health.
const fleetSummary = `
SELECT p.id, p.name, p.cluster_name, p.status, p.last_heartbeat, p.created_at,
	(SELECT to_json(array_agg(l.label ORDER BY l.label)) FROM agent_labels l WHERE l.agent_id = p.id) AS labels,
	COALESCE(s.objects, 0) AS objects, COALESCE(s.applied, 0) AS applied,
	COALESCE(s.failing, 0) AS failing, COALESCE(s.healthy, 0) AS healthy,
	(SELECT count(*) FROM work_orders w WHERE w.claimed_by = p.id)
	+ (SELECT count(*) FROM work_order_targets t JOIN work_orders w ON w.id = t.work_order_id
	   WHERE t.agent_id = p.id AND w.status <> 'CLAIMED')
	+ (SELECT count(*) FROM diagnostic_requests d WHERE d.agent_id = p.id AND d.status = 'pending') AS pending_work
FROM page p
LEFT JOIN LATERAL (
	SELECT count(*) AS objects,
		count(*) FILTER (WHERE x.ack) AS applied,
		count(*) FILTER (WHERE x.last_status = 'FAILURE' OR x.health IN ('failing', 'degraded')) AS failing,
		count(*) FILTER (WHERE x.health = 'healthy') AS healthy
	FROM (
		SELECT
			EXISTS (SELECT 1 FROM agent_events e WHERE e.agent_id = p.id AND e.deployment_object_id = d.id
				AND e.deleted_at IS NULL AND e.status = 'SUCCESS') AS ack,
			(SELECT e.status FROM agent_events e WHERE e.agent_id = p.id AND e.deployment_object_id = d.id
				AND e.deleted_at IS NULL ORDER BY e.created_at DESC LIMIT 1) AS last_status,
			(SELECT h.status FROM deployment_health h WHERE h.agent_id = p.id AND h.deployment_object_id = d.id) AS health
		FROM (
			SELECT stack_id FROM agent_targets WHERE agent_id = p.id
			UNION
			SELECT sl.stack_id FROM stack_labels sl JOIN agent_labels al ON al.label = sl.label WHERE al.agent_id = p.id
			UNION
			SELECT sa.stack_id FROM stack_annotations sa
				JOIN agent_annotations aa ON aa.key = sa.key AND aa.value = sa.value WHERE aa.agent_id = p.id
		) assoc
		JOIN stacks st ON st.id = assoc.stack_id AND st.deleted_at IS NULL
		CROSS JOIN LATERAL (SELECT o.id FROM deployment_objects o
			WHERE o.stack_id = assoc.stack_id AND o.deleted_at IS NULL
			ORDER BY o.sequence_id DESC LIMIT 1) d
	) x
) s ON true`

// fleetRow is one row of fleetSummary: labels come as JSON (jsonStrings);
// every other column scans into the embedded overview.AgentRow by name.
type fleetRow struct {
	overview.AgentRow
	Labels jsonStrings
}

func (r fleetRow) domain() overview.AgentRow {
	a := r.AgentRow
	a.Labels = r.Labels
	return a
}

// fleetWhere builds the filter of q; $1 is always the stale window.
func fleetWhere(q overview.FleetQuery) (string, []any, error) {
	args := []any{int64(q.StaleAfter / time.Second)}
	where := []string{"a.deleted_at IS NULL", "$1::bigint IS NOT NULL"}
	if q.Text != "" {
		args = append(args, "%"+likeEscape(q.Text)+"%")
		where = append(where, fmt.Sprintf("(a.name ILIKE $%[1]d OR a.cluster_name ILIKE $%[1]d)", len(args)))
	}
	if q.Label != "" {
		args = append(args, q.Label)
		where = append(where, fmt.Sprintf("EXISTS (SELECT 1 FROM agent_labels l WHERE l.agent_id = a.id AND l.label = $%d)", len(args)))
	}
	if q.State != "" {
		cond, ok := heartbeatState[q.State]
		if !ok {
			return "", nil, domain.Invalid("unknown state")
		}
		where = append(where, cond)
	}
	return strings.Join(where, " AND "), args, nil
}

// Fleet returns one page of live agents with their summaries.
func (r *Overview) Fleet(ctx context.Context, q overview.FleetQuery) ([]overview.AgentRow, error) {
	orders, ok := fleetOrder[q.Sort]
	if !ok {
		return nil, domain.Invalid("unknown sort")
	}
	order := orders[0]
	if q.Desc {
		order = orders[1]
	}
	where, args, err := fleetWhere(q)
	if err != nil {
		return nil, err
	}
	args = append(args, q.Limit, q.Offset)
	query := fmt.Sprintf(`WITH page AS (
		SELECT a.id, a.name, a.cluster_name, a.status, a.last_heartbeat, a.created_at
		FROM agents a WHERE %s ORDER BY %s LIMIT $%d OFFSET $%d)`, where, order, len(args)-1, len(args)) +
		fleetSummary + " ORDER BY " + strings.ReplaceAll(order, "a.", "p.")
	return selectAs[fleetRow](ctx, r.s.q(ctx), query, args...)
}

// CountFleet counts the live agents matching q's filters.
func (r *Overview) CountFleet(ctx context.Context, q overview.FleetQuery) (int, error) {
	where, args, err := fleetWhere(q)
	if err != nil {
		return 0, err
	}
	var n int
	err = r.s.q(ctx).GetContext(ctx, &n, `SELECT count(*) FROM agents a WHERE `+where, args...)
	return n, mapErr(err)
}

// likeEscape makes s match literally inside a LIKE pattern.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// FleetCounts counts live agents by heartbeat state, and those failing.
func (r *Overview) FleetCounts(ctx context.Context, staleAfter time.Duration) (overview.Counts, error) {
	var c struct {
		Total    int `db:"total"`
		Online   int `db:"online"`
		Stale    int `db:"stale"`
		Never    int `db:"never"`
		Inactive int `db:"inactive"`
		Failing  int `db:"failing"`
	}
	err := r.s.q(ctx).GetContext(ctx, &c, `SELECT count(*) AS total,
		count(*) FILTER (WHERE `+heartbeatState[overview.StateOnline]+`) AS online,
		count(*) FILTER (WHERE `+heartbeatState[overview.StateStale]+`) AS stale,
		count(*) FILTER (WHERE `+heartbeatState[overview.StateNever]+`) AS never,
		count(*) FILTER (WHERE `+heartbeatState[overview.StateInactive]+`) AS inactive,
		count(*) FILTER (WHERE a.status = 'ACTIVE' AND f.agent_id IS NOT NULL) AS failing
		FROM agents a LEFT JOIN (`+failingAgentIDs+`) f ON f.agent_id = a.id
		WHERE a.deleted_at IS NULL`, int64(staleAfter/time.Second))
	return overview.Counts(c), mapErr(err)
}

// agentStackRow is one row of AgentStacks' query.
type agentStackRow struct {
	StackID      uuid.UUID   `db:"stack_id"`
	StackName    string      `db:"stack_name"`
	ByTarget     bool        `db:"by_target"`
	ByLabel      jsonStrings `db:"by_label"`
	ByAnnotation jsonStrings `db:"by_annotation"`
	ObjectID     *uuid.UUID  `db:"object_id"`
	SequenceID   *int64      `db:"sequence_id"`
	Marker       bool        `db:"marker"`
	Applied      bool        `db:"applied"`
	EventStatus  *string     `db:"event_status"`
	EventMsg     *string     `db:"event_message"`
	Health       *string     `db:"health"`
}

// overviewObjectRow is one row of StackObjects' query.
type overviewObjectRow struct {
	ID               uuid.UUID  `db:"id"`
	SequenceID       int64      `db:"sequence_id"`
	YAMLChecksum     string     `db:"yaml_checksum"`
	SubmittedAt      time.Time  `db:"submitted_at"`
	IsDeletionMarker bool       `db:"is_deletion_marker"`
	Size             int        `db:"size"`
	Applied          int        `db:"applied"`
	Failed           int        `db:"failed"`
	TemplateID       *uuid.UUID `db:"template_id"`
	TemplateVersion  *int       `db:"template_version"`
}

// objectAgentRow is one row of ObjectAgents' query.
type objectAgentRow struct {
	AgentID     uuid.UUID `db:"agent_id"`
	AgentName   string    `db:"agent_name"`
	ClusterName string    `db:"cluster_name"`
	EventStatus string    `db:"event_status"`
	EventType   string    `db:"event_type"`
	Message     *string   `db:"message"`
	At          time.Time `db:"at"`
	Health      *string   `db:"health"`
}

// AgentStacks lists the live stacks associated with the agent, the reasons,
// and the agent's view of each stack's latest object.
func (r *Overview) AgentStacks(ctx context.Context, agentID uuid.UUID) ([]overview.AgentStack, error) {
	var rows []agentStackRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `
	SELECT st.id AS stack_id, st.name AS stack_name,
		EXISTS (SELECT 1 FROM agent_targets t WHERE t.agent_id = $1 AND t.stack_id = st.id) AS by_target,
		(SELECT to_json(array_agg(sl.label ORDER BY sl.label)) FROM stack_labels sl JOIN agent_labels al ON al.label = sl.label
			WHERE al.agent_id = $1 AND sl.stack_id = st.id) AS by_label,
		(SELECT to_json(array_agg(sa.key || '=' || sa.value ORDER BY sa.key)) FROM stack_annotations sa
			JOIN agent_annotations aa ON aa.key = sa.key AND aa.value = sa.value WHERE aa.agent_id = $1 AND sa.stack_id = st.id) AS by_annotation,
		d.id AS object_id, d.sequence_id, COALESCE(d.is_deletion_marker, false) AS marker,
		COALESCE(EXISTS (SELECT 1 FROM agent_events e WHERE e.agent_id = $1 AND e.deployment_object_id = d.id
			AND e.deleted_at IS NULL AND e.status = 'SUCCESS'), false) AS applied,
		ev.status AS event_status, ev.message AS event_message,
		(SELECT h.status FROM deployment_health h WHERE h.agent_id = $1 AND h.deployment_object_id = d.id) AS health
	FROM stacks st
	LEFT JOIN LATERAL (SELECT o.id, o.sequence_id, o.is_deletion_marker FROM deployment_objects o
		WHERE o.stack_id = st.id AND o.deleted_at IS NULL ORDER BY o.sequence_id DESC LIMIT 1) d ON true
	LEFT JOIN LATERAL (SELECT e.status, e.message FROM agent_events e WHERE e.agent_id = $1 AND e.deployment_object_id = d.id
		AND e.deleted_at IS NULL ORDER BY e.created_at DESC LIMIT 1) ev ON true
	WHERE st.deleted_at IS NULL AND st.id IN (`+r.s.association()+`)
	ORDER BY st.name
	LIMIT 500`, agentID)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]overview.AgentStack, len(rows))
	for i, row := range rows {
		out[i] = overview.AgentStack{StackID: row.StackID, StackName: row.StackName, ByTarget: row.ByTarget,
			ByLabel: []string(row.ByLabel), ByAnnotation: []string(row.ByAnnotation), ObjectID: row.ObjectID,
			SequenceID: row.SequenceID, Marker: row.Marker, Applied: row.Applied, EventStatus: row.EventStatus,
			EventMsg: row.EventMsg, Health: row.Health}
	}
	return out, nil
}

// StackObjects lists one page of a stack's live objects, newest first,
// with how many agents applied or failed each, and template provenance.
func (r *Overview) StackObjects(ctx context.Context, stackID uuid.UUID, limit, offset int) ([]overview.ObjectRow, int, error) {
	var total int
	if err := r.s.q(ctx).GetContext(ctx, &total, `SELECT count(*) FROM deployment_objects
		WHERE stack_id = $1 AND deleted_at IS NULL`, stackID); err != nil {
		return nil, 0, mapErr(err)
	}
	var rows []overviewObjectRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `
	SELECT o.id, o.sequence_id, o.yaml_checksum, o.submitted_at, o.is_deletion_marker, octet_length(o.yaml_content) AS size,
		(SELECT count(DISTINCT e.agent_id) FROM agent_events e WHERE e.deployment_object_id = o.id
			AND e.deleted_at IS NULL AND e.status = 'SUCCESS') AS applied,
		(SELECT count(DISTINCT e.agent_id) FROM agent_events e WHERE e.deployment_object_id = o.id
			AND e.deleted_at IS NULL AND e.status = 'FAILURE') AS failed,
		r.template_id, r.template_version
	FROM deployment_objects o
	LEFT JOIN rendered_deployment_objects r ON r.deployment_object_id = o.id
	WHERE o.stack_id = $1 AND o.deleted_at IS NULL
	ORDER BY o.sequence_id DESC LIMIT $2 OFFSET $3`, stackID, limit, offset)
	out := make([]overview.ObjectRow, len(rows))
	for i, o := range rows {
		out[i] = overview.ObjectRow{ID: o.ID, SequenceID: o.SequenceID, YAMLChecksum: o.YAMLChecksum,
			SubmittedAt: o.SubmittedAt, IsDeletionMarker: o.IsDeletionMarker, Size: o.Size, Applied: o.Applied,
			Failed: o.Failed, TemplateID: o.TemplateID, TemplateVersion: o.TemplateVersion}
	}
	return out, total, mapErr(err)
}

// ObjectAgents lists each agent's latest event on the object and its
// health, newest first.
func (r *Overview) ObjectAgents(ctx context.Context, objectID uuid.UUID, limit int) ([]overview.ObjectAgent, error) {
	var rows []objectAgentRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `
	SELECT * FROM (
		SELECT DISTINCT ON (e.agent_id) e.agent_id, a.name AS agent_name, a.cluster_name,
			e.status AS event_status, e.event_type, e.message, e.created_at AS at,
			(SELECT h.status FROM deployment_health h WHERE h.agent_id = e.agent_id AND h.deployment_object_id = e.deployment_object_id) AS health
		FROM agent_events e JOIN agents a ON a.id = e.agent_id AND a.deleted_at IS NULL
		WHERE e.deployment_object_id = $1 AND e.deleted_at IS NULL
		ORDER BY e.agent_id, e.created_at DESC
	) x ORDER BY at DESC LIMIT $2`, objectID, limit)
	out := make([]overview.ObjectAgent, len(rows))
	for i, a := range rows {
		out[i] = overview.ObjectAgent{AgentID: a.AgentID, AgentName: a.AgentName, ClusterName: a.ClusterName,
			EventStatus: a.EventStatus, EventType: a.EventType, Message: a.Message, At: a.At, Health: a.Health}
	}
	return out, mapErr(err)
}
