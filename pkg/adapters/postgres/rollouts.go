package postgres

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// Rollouts' delivery gate (docs/rollouts.md#target-state), the conjuncts of
// deliverable and gated in target_state.go.
//
// rolloutAllows: an object whose rollout is not complete reaches agent $1
// only once a wave released it there; every other agent keeps the newest
// object it may have, the previously released one.
//
// rolloutGated: a stack with strategy waves, or one where some agent still
// holds an object held back by a rollout (an unfinished one, or one that
// ended without completing, unless an ungated object came after it).
const (
	rolloutAllows = `NOT EXISTS (SELECT 1 FROM rollouts ro
		WHERE ro.deployment_object_id = d.id AND ro.state <> 'complete'
		  AND NOT EXISTS (SELECT 1 FROM rollout_agents ra
		                  WHERE ra.rollout_id = ro.id AND ra.agent_id = $1 AND ra.released_at IS NOT NULL))`
	rolloutGated = `(EXISTS (SELECT 1 FROM rollout_policies rp WHERE rp.stack_id = st.id AND rp.strategy = 'waves')
		OR EXISTS (SELECT 1 FROM rollouts ro JOIN deployment_objects rd ON rd.id = ro.deployment_object_id
		           WHERE ro.stack_id = st.id AND ro.state <> 'complete'
		             AND NOT EXISTS (SELECT 1 FROM deployment_objects n
		                             WHERE n.stack_id = st.id AND n.deleted_at IS NULL AND n.sequence_id > rd.sequence_id
		                               AND NOT EXISTS (SELECT 1 FROM rollouts r2
		                                               WHERE r2.deployment_object_id = n.id AND r2.state <> 'complete'))))`
)

// RolloutPolicies stores stacks' rollout policies.
type RolloutPolicies struct{ s *Store }

// NewRolloutPolicies returns the policy repository over s.
func NewRolloutPolicies(s *Store) *RolloutPolicies { return &RolloutPolicies{s: s} }

var _ rollouts.PolicyRepository = (*RolloutPolicies)(nil)

// Policy returns the stack's policy or rollout.Default().
func (r *RolloutPolicies) Policy(ctx context.Context, stackID uuid.UUID) (rollout.Policy, error) {
	var raw []byte
	err := r.s.q(ctx).GetContext(ctx, &raw, `SELECT policy FROM rollout_policies WHERE stack_id = $1`, stackID)
	if isNoRows(err) {
		return rollout.Default(), nil
	}
	if err != nil {
		return rollout.Policy{}, mapErr(err)
	}
	var p rollout.Policy
	return p, json.Unmarshal(raw, &p)
}

// PutPolicy inserts or replaces the stack's policy.
func (r *RolloutPolicies) PutPolicy(ctx context.Context, stackID uuid.UUID, p rollout.Policy) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = r.s.q(ctx).ExecContext(ctx, `INSERT INTO rollout_policies (stack_id, strategy, policy)
		SELECT id, $2, $3 FROM stacks WHERE id = $1
		ON CONFLICT (stack_id) DO UPDATE SET strategy = EXCLUDED.strategy, policy = EXCLUDED.policy`,
		stackID, p.Strategy, raw)
	return mapErr(err)
}

// Rollouts stores rollouts, their agents and their event log.
type Rollouts struct{ s *Store }

// NewRollouts returns the rollout repository over s.
func NewRollouts(s *Store) *Rollouts { return &Rollouts{s: s} }

var _ rollouts.RolloutRepository = (*Rollouts)(nil)

const rolloutCols = `ro.id, ro.stack_id, ro.deployment_object_id, d.sequence_id, ro.previous_object_id, ro.policy,
	ro.state, ro.current_wave, ro.reason, ro.created_at, ro.updated_at, ro.finished_at`

// rolloutRow is a rollout as rolloutCols selects it: the policy column is a
// JSON document, decoded by toDomain(); every other column scans into the
// embedded rollout.Rollout by name.
type rolloutRow struct {
	rollout.Rollout
	Policy []byte
}

func (r rolloutRow) toDomain() (rollout.Rollout, error) {
	out := r.Rollout
	return out, json.Unmarshal(r.Policy, &out.Policy)
}

// Latest returns the stack's newest rollout.
func (r *Rollouts) Latest(ctx context.Context, stackID uuid.UUID) (rollout.Rollout, error) {
	var row rolloutRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+rolloutCols+` FROM rollouts ro
		JOIN deployment_objects d ON d.id = ro.deployment_object_id
		WHERE ro.stack_id = $1 ORDER BY d.sequence_id DESC LIMIT 1`, stackID)
	if isNoRows(err) {
		return rollout.Rollout{}, rollouts.ErrNoRollout
	}
	if err != nil {
		return rollout.Rollout{}, mapErr(err)
	}
	return row.toDomain()
}

const rolloutAgentCols = `ra.agent_id, ra.wave, ra.released_at, ra.applied_at, ra.healthy_since, ra.healthy_at, ra.failed_at, ra.reason`

// Lock locks the rollout row and reads its agents with, for each, its
// latest SUCCESS/FAILURE event and its deployment health for the object.
func (r *Rollouts) Lock(ctx context.Context, id uuid.UUID, skipLocked bool) (rollout.Rollout, []rollout.Agent, bool, error) {
	lock := `FOR UPDATE OF ro`
	if skipLocked {
		lock += ` SKIP LOCKED`
	}
	var row rolloutRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+rolloutCols+` FROM rollouts ro
		JOIN deployment_objects d ON d.id = ro.deployment_object_id WHERE ro.id = $1 `+lock, id)
	if isNoRows(err) {
		if skipLocked {
			return rollout.Rollout{}, nil, false, nil
		}
		return rollout.Rollout{}, nil, false, rollouts.ErrNoRollout
	}
	if err != nil {
		return rollout.Rollout{}, nil, false, mapErr(err)
	}
	ro, err := row.toDomain()
	if err != nil {
		return ro, nil, false, err
	}
	agents, err := selectAll[rollout.Agent](ctx, r.s.q(ctx), `SELECT `+rolloutAgentCols+`,
			COALESCE(ev.status, '') AS last_event, COALESCE(ev.message, '') AS event_reason,
			COALESCE(h.status, '') AS health
		FROM rollout_agents ra
		LEFT JOIN LATERAL (SELECT e.status, e.message FROM agent_events e
		                   WHERE e.agent_id = ra.agent_id AND e.deployment_object_id = $2 AND e.deleted_at IS NULL
		                     AND e.status IN ('SUCCESS', 'FAILURE')
		                   ORDER BY e.created_at DESC, e.id DESC LIMIT 1) ev ON TRUE
		LEFT JOIN deployment_health h ON h.agent_id = ra.agent_id AND h.deployment_object_id = $2
		WHERE ra.rollout_id = $1 ORDER BY ra.wave, ra.agent_id`, id, ro.DeploymentObjectID)
	if err != nil {
		return ro, nil, false, err
	}
	return ro, agents, true, nil
}

// Agents returns the rollout's agents by wave and id.
func (r *Rollouts) Agents(ctx context.Context, id uuid.UUID) ([]rollout.Agent, error) {
	return selectAll[rollout.Agent](ctx, r.s.q(ctx), `SELECT `+rolloutAgentCols+`, '' AS last_event, '' AS event_reason, '' AS health
		FROM rollout_agents ra WHERE ra.rollout_id = $1 ORDER BY ra.wave, ra.agent_id`, id)
}

// Candidates returns the ACTIVE agents associated with the stack, with
// their labels and annotations.
func (r *Rollouts) Candidates(ctx context.Context, stackID uuid.UUID) ([]rollout.Candidate, error) {
	// The association rule is written for one agent ($1); here it is
	// evaluated per agent row.
	assoc := strings.ReplaceAll(r.s.association(), "$1", "a.id")
	var rows []struct {
		ID          uuid.UUID `db:"id"`
		Labels      []byte    `db:"labels"`
		Annotations []byte    `db:"annotations"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT a.id,
			COALESCE((SELECT jsonb_agg(l.label) FROM agent_labels l WHERE l.agent_id = a.id), '[]') AS labels,
			COALESCE((SELECT jsonb_object_agg(n.key, n.value) FROM agent_annotations n WHERE n.agent_id = a.id), '{}') AS annotations
		FROM agents a
		WHERE a.deleted_at IS NULL AND a.status = 'ACTIVE' AND $1::uuid IN (`+assoc+`)
		ORDER BY a.id`, stackID)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]rollout.Candidate, len(rows))
	for i, row := range rows {
		out[i].ID = row.ID
		if err := json.Unmarshal(row.Labels, &out[i].Labels); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(row.Annotations, &out[i].Annotations); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Save writes a step in three statements: the agent rows, the log, the
// rollout row. The caller holds the rollout's row lock.
func (r *Rollouts) Save(ctx context.Context, id uuid.UUID, st rollout.Step) error {
	if len(st.Agents) > 0 {
		// rollout.Agent's JSON is exactly the stored columns (its
		// observations are json:"-"), the record set read below.
		raw, err := json.Marshal(st.Agents)
		if err != nil {
			return err
		}
		_, err = r.s.q(ctx).ExecContext(ctx, `INSERT INTO rollout_agents
			(rollout_id, agent_id, wave, released_at, applied_at, healthy_since, healthy_at, failed_at, reason)
			SELECT $1, x.agent_id, x.wave, x.released_at, x.applied_at, x.healthy_since, x.healthy_at, x.failed_at, x.reason
			FROM jsonb_to_recordset($2::jsonb) AS x(agent_id uuid, wave int, released_at timestamptz, applied_at timestamptz,
				healthy_since timestamptz, healthy_at timestamptz, failed_at timestamptz, reason text)
			JOIN agents ag ON ag.id = x.agent_id
			ON CONFLICT (rollout_id, agent_id) DO UPDATE SET wave = EXCLUDED.wave, released_at = EXCLUDED.released_at,
				applied_at = EXCLUDED.applied_at, healthy_since = EXCLUDED.healthy_since, healthy_at = EXCLUDED.healthy_at,
				failed_at = EXCLUDED.failed_at, reason = EXCLUDED.reason`, id, raw)
		if err != nil {
			return mapErr(err)
		}
	}
	if len(st.Transitions) > 0 {
		raw, err := json.Marshal(st.Transitions)
		if err != nil {
			return err
		}
		_, err = r.s.q(ctx).ExecContext(ctx, `INSERT INTO rollout_events (rollout_id, agent_id, wave, kind, reason, at)
			SELECT $1, (x.e->>'agent_id')::uuid, (x.e->>'wave')::int, x.e->>'kind', NULLIF(x.e->>'reason', ''),
				(x.e->>'at')::timestamptz
			FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(e, n)
			ORDER BY x.n`, id, raw)
		if err != nil {
			return mapErr(err)
		}
	}
	_, err := r.s.q(ctx).ExecContext(ctx, `UPDATE rollouts SET state = $2::text, current_wave = $3, reason = $4,
		finished_at = CASE WHEN $2::text IN ('progressing', 'paused', 'halted') THEN NULL ELSE COALESCE(finished_at, now()) END
		WHERE id = $1`, id, st.State, st.CurrentWave, st.Reason)
	return mapErr(err)
}

// Progressing lists progressing rollouts after the given id, in id order.
func (r *Rollouts) Progressing(ctx context.Context, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	ids := []uuid.UUID{}
	err := r.s.q(ctx).SelectContext(ctx, &ids, `SELECT id FROM rollouts WHERE state = 'progressing' AND id > $1
		ORDER BY id LIMIT $2`, after, limit)
	return ids, mapErr(err)
}

// Log returns a rollout's event log in order (tests and the status's
// history).
func (r *Rollouts) Log(ctx context.Context, id uuid.UUID) ([]rollout.Transition, error) {
	var rows []struct {
		AgentID *uuid.UUID `db:"agent_id"`
		Wave    int        `db:"wave"`
		Kind    string     `db:"kind"`
		Reason  *string    `db:"reason"`
		At      time.Time  `db:"at"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT agent_id, wave, kind, reason, at FROM rollout_events
		WHERE rollout_id = $1 ORDER BY id`, id)
	out := make([]rollout.Transition, len(rows))
	for i, row := range rows {
		out[i] = rollout.Transition{Kind: row.Kind, AgentID: row.AgentID, Wave: row.Wave, At: row.At}
		if row.Reason != nil {
			out[i].Reason = *row.Reason
		}
	}
	return out, mapErr(err)
}

var _ rollouts.AgentWaiters = (*Rollouts)(nil)

// AwaitingAgent returns the stacks whose progressing rollout released the
// agent and waits for it to be healthy or failed.
func (r *Rollouts) AwaitingAgent(ctx context.Context, agentID uuid.UUID) ([]uuid.UUID, error) {
	ids := []uuid.UUID{}
	err := r.s.q(ctx).SelectContext(ctx, &ids, `SELECT DISTINCT ro.stack_id FROM rollout_agents ra
		JOIN rollouts ro ON ro.id = ra.rollout_id
		WHERE ra.agent_id = $1 AND ra.released_at IS NOT NULL AND ra.healthy_at IS NULL AND ra.failed_at IS NULL
		  AND ro.state = 'progressing'`, agentID)
	return ids, mapErr(err)
}
