package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

const stackCols = `id, created_at, updated_at, deleted_at, name, description, generator_id`

// ListStacks returns live stacks, optionally only a generator's.
func (s *Store) ListStacks(ctx context.Context, generatorID *uuid.UUID) ([]stack.Stack, error) {
	out := []stack.Stack{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+stackCols+` FROM stacks
		WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR generator_id = $1) ORDER BY created_at, id`, generatorID)
	return out, mapErr(err)
}

// CreateStack inserts st, filling id and timestamps.
func (s *Store) CreateStack(ctx context.Context, st *stack.Stack) error {
	err := s.q(ctx).GetContext(ctx, st, `INSERT INTO stacks (name, description, generator_id)
		VALUES ($1, $2, $3) RETURNING `+stackCols, st.Name, st.Description, st.GeneratorID)
	return mapErr(err)
}

// GetStack returns a live stack.
func (s *Store) GetStack(ctx context.Context, id uuid.UUID) (stack.Stack, error) {
	var st stack.Stack
	err := s.q(ctx).GetContext(ctx, &st, `SELECT `+stackCols+` FROM stacks WHERE id = $1 AND deleted_at IS NULL`, id)
	return st, notFound(err, "Stack not found")
}

// UpdateStack locks the row, lets fn change it and writes it back.
func (s *Store) UpdateStack(ctx context.Context, id uuid.UUID, fn func(*stack.Stack) error) (stack.Stack, error) {
	var out stack.Stack
	err := s.InTx(ctx, func(ctx context.Context) error {
		var st stack.Stack
		err := s.q(ctx).GetContext(ctx, &st, `SELECT `+stackCols+` FROM stacks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id)
		if err != nil {
			return notFound(err, "Stack not found")
		}
		if err := fn(&st); err != nil {
			return err
		}
		err = s.q(ctx).GetContext(ctx, &out, `UPDATE stacks SET name = $2, description = $3, generator_id = $4
			WHERE id = $1 RETURNING `+stackCols, id, st.Name, st.Description, st.GeneratorID)
		return mapErr(err)
	})
	return out, err
}

// DeleteStack soft-deletes a live stack; the trigger soft-deletes its
// objects and inserts a deletion marker.
func (s *Store) DeleteStack(ctx context.Context, id uuid.UUID) (stack.Stack, error) {
	var st stack.Stack
	err := s.q(ctx).GetContext(ctx, &st, `UPDATE stacks SET deleted_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+stackCols, id)
	return st, notFound(err, "Stack not found")
}

const objectCols = `id, created_at, updated_at, deleted_at, sequence_id, stack_id, yaml_content, yaml_checksum, submitted_at, is_deletion_marker`

// ListDeploymentObjects returns a stack's live objects, newest first.
func (s *Store) ListDeploymentObjects(ctx context.Context, stackID uuid.UUID) ([]stack.DeploymentObject, error) {
	out := []stack.DeploymentObject{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+objectCols+` FROM deployment_objects
		WHERE stack_id = $1 AND deleted_at IS NULL ORDER BY sequence_id DESC`, stackID)
	return out, mapErr(err)
}

// CreateDeploymentObject inserts d; its stack must be live.
func (s *Store) CreateDeploymentObject(ctx context.Context, d *stack.DeploymentObject) error {
	err := s.q(ctx).GetContext(ctx, d, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum, is_deletion_marker)
		SELECT id, $2, $3, $4 FROM stacks WHERE id = $1 AND deleted_at IS NULL
		RETURNING `+objectCols, d.StackID, d.YAMLContent, d.YAMLChecksum, d.IsDeletionMarker)
	return notFound(err, "Stack not found")
}

// GetDeploymentObject returns a live object.
func (s *Store) GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	var d stack.DeploymentObject
	err := s.q(ctx).GetContext(ctx, &d, `SELECT `+objectCols+` FROM deployment_objects WHERE id = $1 AND deleted_at IS NULL`, id)
	return d, notFound(err, "Deployment object not found")
}

// AgentAssociated reports whether the stack is associated with the agent.
func (s *Store) AgentAssociated(ctx context.Context, agentID, stackID uuid.UUID) (bool, error) {
	var ok bool
	err := s.q(ctx).GetContext(ctx, &ok, `SELECT $2::uuid IN (`+associatedStackIDs+`)`, agentID, stackID)
	return ok, mapErr(err)
}

// DeploymentObjectRef returns an object whether or not it is soft-deleted.
func (s *Store) DeploymentObjectRef(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	var d stack.DeploymentObject
	err := s.q(ctx).GetContext(ctx, &d, `SELECT `+objectCols+` FROM deployment_objects WHERE id = $1`, id)
	return d, notFound(err, "Deployment object not found")
}

// AgentState loads everything the agent's target state depends on for the
// api's in-memory index: status, own labels and annotation keys, live
// associated stacks, and the latest object per associated stack with
// whether the agent acknowledged it. Two statements: the agent's facts as
// tagged rows, then the objects (only for an ACTIVE agent).
func (s *Store) AgentState(ctx context.Context, agentID uuid.UUID) (targetstate.Snapshot, error) {
	var rows []struct {
		Kind  string `db:"kind"`
		Value string `db:"value"`
	}
	err := s.q(ctx).SelectContext(ctx, &rows, `
		SELECT 'status' AS kind, status AS value FROM agents WHERE id = $1 AND deleted_at IS NULL
		UNION ALL SELECT 'label', label FROM agent_labels WHERE agent_id = $1
		UNION ALL SELECT DISTINCT 'annotation', key FROM agent_annotations WHERE agent_id = $1
		UNION ALL SELECT 'stack', id::text FROM stacks WHERE deleted_at IS NULL AND id IN (`+associatedStackIDs+`)`, agentID)
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
		return targetstate.Snapshot{}, domain.NotFound("Agent not found")
	}
	snap.Objects = []targetstate.Object{}
	if snap.Status != agent.StatusActive {
		return snap, nil
	}
	err = s.q(ctx).SelectContext(ctx, &snap.Objects, `
		WITH assoc AS (`+associatedStackIDs+`),
		latest AS (
			SELECT d.* FROM assoc
			JOIN stacks st ON st.id = assoc.stack_id
			CROSS JOIN LATERAL (
				SELECT `+objectCols+` FROM deployment_objects
				WHERE stack_id = st.id AND deleted_at IS NULL
				ORDER BY sequence_id DESC LIMIT 1
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
	return snap, mapErr(err)
}

// StackHead returns the latest live object of a live stack.
func (s *Store) StackHead(ctx context.Context, stackID uuid.UUID) (stack.DeploymentObject, bool, error) {
	var d stack.DeploymentObject
	err := s.q(ctx).GetContext(ctx, &d, `SELECT `+prefixed("d.", objectCols)+` FROM stacks st
		JOIN deployment_objects d ON d.stack_id = st.id AND d.deleted_at IS NULL
		WHERE st.id = $1 AND st.deleted_at IS NULL
		ORDER BY d.sequence_id DESC LIMIT 1`, stackID)
	if isNoRows(err) {
		return stack.DeploymentObject{}, false, nil
	}
	if err != nil {
		return stack.DeploymentObject{}, false, mapErr(err)
	}
	return d, true, nil
}
