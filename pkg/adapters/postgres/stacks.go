package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

const stackCols = `id, created_at, updated_at, deleted_at, name, description, generator_id, ` + dependsOnCol

// stackRow is a stack as stackCols selects it: depends_on comes as a JSON
// array, which a []uuid.UUID cannot scan; every other column scans into the
// embedded stack.Stack by name.
type stackRow struct {
	stack.Stack
	DependsOn jsonList[uuid.UUID]
}

func (r stackRow) domain() stack.Stack {
	st := r.Stack
	st.DependsOn = r.DependsOn
	return st
}

// Stacks is the stack repository: live and soft-deleted stacks and which
// agents they are associated with.
type Stacks struct{ s *Store }

// NewStacks returns the stack repository over s (sharing its transaction).
func NewStacks(s *Store) *Stacks { return &Stacks{s: s} }

// ListStacks returns live stacks, optionally only a generator's.
func (r *Stacks) ListStacks(ctx context.Context, generatorID *uuid.UUID) ([]stack.Stack, error) {
	return selectAs[stackRow](ctx, r.s.q(ctx), `SELECT `+stackCols+` FROM stacks
		WHERE deleted_at IS NULL AND ($1::uuid IS NULL OR generator_id = $1) ORDER BY created_at, id`, generatorID)
}

// CreateStack inserts st, filling id and timestamps.
func (r *Stacks) CreateStack(ctx context.Context, st *stack.Stack) error {
	var row stackRow
	if err := insertInto(ctx, r.s.q(ctx), &row, `INSERT INTO stacks (name, description, generator_id)
		VALUES ($1, $2, $3) RETURNING `+stackCols, st.Name, st.Description, st.GeneratorID); err != nil {
		return err
	}
	*st = row.domain()
	return nil
}

// GetStack returns a live stack.
func (r *Stacks) GetStack(ctx context.Context, id uuid.UUID) (stack.Stack, error) {
	return getAs[stackRow](ctx, r.s.q(ctx), "stack_not_found", "Stack not found",
		`SELECT `+stackCols+` FROM stacks WHERE id = $1 AND deleted_at IS NULL`, id)
}

// UpdateStack locks the row, lets fn change it and writes it back.
func (r *Stacks) UpdateStack(ctx context.Context, id uuid.UUID, fn func(*stack.Stack) error) (stack.Stack, error) {
	row, err := updateLocked(ctx, r.s, "stack_not_found", "Stack not found",
		`SELECT `+stackCols+` FROM stacks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id,
		func(row *stackRow) error {
			row.Stack = row.domain()
			return fn(&row.Stack)
		},
		func(ctx context.Context, row stackRow, out *stackRow) error {
			return r.s.q(ctx).GetContext(ctx, out, `UPDATE stacks SET name = $2, description = $3, generator_id = $4
			WHERE id = $1 RETURNING `+stackCols, id, row.Name, row.Description, row.GeneratorID)
		})
	return row.domain(), err
}

// DeleteStack soft-deletes a live stack; the trigger soft-deletes its
// objects and inserts a deletion marker.
func (r *Stacks) DeleteStack(ctx context.Context, id uuid.UUID) (stack.Stack, error) {
	return getAs[stackRow](ctx, r.s.q(ctx), "stack_not_found", "Stack not found",
		`UPDATE stacks SET deleted_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+stackCols, id)
}

// AgentAssociated reports whether the stack is associated with the agent.
func (r *Stacks) AgentAssociated(ctx context.Context, agentID, stackID uuid.UUID) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT $2::uuid IN (`+r.s.association()+`)`, agentID, stackID)
	return ok, mapErr(err)
}

const objectCols = `id, created_at, updated_at, deleted_at, sequence_id, stack_id, yaml_content, yaml_checksum, submitted_at, is_deletion_marker, rolled_back_from`

// DeploymentObjects is the repository of stacks' immutable, sequence-numbered
// deployment objects.
type DeploymentObjects struct{ s *Store }

// NewDeploymentObjects returns the deployment-object repository over s.
func NewDeploymentObjects(s *Store) *DeploymentObjects { return &DeploymentObjects{s: s} }

// ListDeploymentObjects returns a stack's live objects, newest first.
func (r *DeploymentObjects) ListDeploymentObjects(ctx context.Context, stackID uuid.UUID) ([]stack.DeploymentObject, error) {
	return selectAll[stack.DeploymentObject](ctx, r.s.q(ctx), `SELECT `+objectCols+` FROM deployment_objects
		WHERE stack_id = $1 AND deleted_at IS NULL ORDER BY sequence_id DESC`, stackID)
}

// CreateDeploymentObject inserts d; its stack must be live.
func (r *DeploymentObjects) CreateDeploymentObject(ctx context.Context, d *stack.DeploymentObject) error {
	var created stack.DeploymentObject
	err := r.s.q(ctx).GetContext(ctx, &created, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum, is_deletion_marker, rolled_back_from)
		SELECT id, $2, $3, $4, $5 FROM stacks WHERE id = $1 AND deleted_at IS NULL
		RETURNING `+objectCols, d.StackID, d.YAMLContent, d.YAMLChecksum, d.IsDeletionMarker, d.RolledBackFrom)
	if err != nil {
		return notFound(err, "stack_not_found", "Stack not found")
	}
	*d = created
	return nil
}

// GetDeploymentObject returns a live object.
func (r *DeploymentObjects) GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	return getOne[stack.DeploymentObject](ctx, r.s.q(ctx), "deployment_object_not_found", "Deployment object not found",
		`SELECT `+objectCols+` FROM deployment_objects WHERE id = $1 AND deleted_at IS NULL`, id)
}

// DeploymentObjectRef returns an object whether or not it is soft-deleted
// (an agent may report on an object of a stack deleted meanwhile).
func (r *DeploymentObjects) DeploymentObjectRef(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	return getOne[stack.DeploymentObject](ctx, r.s.q(ctx), "deployment_object_not_found", "Deployment object not found",
		`SELECT `+objectCols+` FROM deployment_objects WHERE id = $1`, id)
}
