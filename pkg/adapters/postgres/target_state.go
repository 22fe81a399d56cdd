package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// TargetStates reads what the api's target-state index (pkg/app/targetstate)
// loads: one agent's snapshot and one stack's head. Both queries are
// benchmarked (docs/benchmarks.md); keep them as they are.
type TargetStates struct{ s *Store }

// NewTargetStates returns the target-state reader over s.
func NewTargetStates(s *Store) *TargetStates { return &TargetStates{s: s} }

var _ targetstate.SnapshotReader = (*TargetStates)(nil)

// Delivery gates. Some objects reach an agent later than others: an
// object is delivered to agent $1 only when deliverable holds for it (d is
// the candidate deployment_objects row, st its stack), and the agent keeps
// the newest object of the stack that is deliverable, so a gate never
// leaves a gap or deletes anything. Deletion markers are never gated.
// A stack whose object may differ between agents is gated: its change
// notifications reload each agent instead of patching in one head.
// Each feature that holds objects back adds its conjunct here.
const (
	deliverable = dependenciesReady + ` AND ` + rolloutAllows
	gated       = `(` + hasDependencies + ` OR ` + rolloutGated + `)`
)

// AgentState loads everything the agent's target state depends on for the
// api's in-memory index: status, own labels and annotation keys, live
// associated stacks, and the latest object per associated stack with
// whether the agent acknowledged it. Two statements: the agent's facts as
// tagged rows, then the objects (only for an ACTIVE agent).
func (r *TargetStates) AgentState(ctx context.Context, agentID uuid.UUID) (targetstate.Snapshot, error) {
	var rows []struct {
		Kind  string `db:"kind"`
		Value string `db:"value"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `
		SELECT 'status' AS kind, status AS value FROM agents WHERE id = $1 AND deleted_at IS NULL
		UNION ALL SELECT 'label', label FROM agent_labels WHERE agent_id = $1
		UNION ALL SELECT DISTINCT 'annotation', key FROM agent_annotations WHERE agent_id = $1
		UNION ALL SELECT 'stack', id::text FROM stacks WHERE deleted_at IS NULL AND id IN (`+r.s.association()+`)`, agentID)
	if err != nil {
		return targetstate.Snapshot{}, mapErr(err)
	}
	snap := targetstate.Snapshot{}
	found := false
	for _, r := range rows {
		switch r.Kind {
		case "status":
			snap.Status, found = r.Value, true
		case "label":
			snap.Labels = append(snap.Labels, r.Value)
		case "annotation":
			snap.AnnotationKeys = append(snap.AnnotationKeys, r.Value)
		case "stack":
			id, err := uuid.Parse(r.Value)
			if err != nil {
				return targetstate.Snapshot{}, err
			}
			snap.Stacks = append(snap.Stacks, id)
		}
	}
	if !found {
		return targetstate.Snapshot{}, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	snap.Objects = []targetstate.Object{}
	if snap.Status != agent.StatusActive {
		return snap, nil
	}
	snap.Objects, err = selectAll[targetstate.Object](ctx, r.s.q(ctx), `
		WITH assoc AS (`+r.s.association()+`),
		latest AS (
			SELECT d.* FROM assoc
			JOIN stacks st ON st.id = assoc.stack_id
			CROSS JOIN LATERAL (
				SELECT `+objectCols+` FROM deployment_objects d
				WHERE d.stack_id = st.id AND d.deleted_at IS NULL
				  AND (d.is_deletion_marker OR `+deliverable+`)
				ORDER BY d.sequence_id DESC LIMIT 1
			) d
			WHERE st.deleted_at IS NULL
			   OR (d.is_deletion_marker AND st.deleted_at >= (SELECT created_at FROM agents WHERE id = $1))
		)
		SELECT `+objectCols+`, EXISTS (
			SELECT 1 FROM agent_events e
			WHERE e.agent_id = $1 AND e.deployment_object_id = l.id
			  AND e.deleted_at IS NULL AND e.status = 'SUCCESS') AS acked
		FROM latest l
		ORDER BY sequence_id`, agentID)
	return snap, err
}

// StackHead returns the latest live object of a live stack that every
// agent holding the stack receives alike; ok=false for a gated stack, so
// the index reloads each of its agents from AgentState.
func (r *TargetStates) StackHead(ctx context.Context, stackID uuid.UUID) (stack.DeploymentObject, bool, error) {
	var d stack.DeploymentObject
	err := r.s.q(ctx).GetContext(ctx, &d, `SELECT `+prefixed("d.", objectCols)+` FROM stacks st
		JOIN deployment_objects d ON d.stack_id = st.id AND d.deleted_at IS NULL
		WHERE st.id = $1 AND st.deleted_at IS NULL AND NOT `+gated+`
		ORDER BY d.sequence_id DESC LIMIT 1`, stackID)
	if isNoRows(err) {
		return stack.DeploymentObject{}, false, nil
	}
	if err != nil {
		return stack.DeploymentObject{}, false, mapErr(err)
	}
	return d, true, nil
}
