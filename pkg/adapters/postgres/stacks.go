package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

const stackCols = `id, created_at, updated_at, deleted_at, name, description, generator_id, ` + dependsOnCol

// stackRow is a stacks row as sqlx scans it; stack.Stack carries no db tags.
type stackRow struct {
	ID          uuid.UUID           `db:"id"`
	CreatedAt   time.Time           `db:"created_at"`
	UpdatedAt   time.Time           `db:"updated_at"`
	DeletedAt   *time.Time          `db:"deleted_at"`
	Name        string              `db:"name"`
	Description *string             `db:"description"`
	GeneratorID *uuid.UUID          `db:"generator_id"`
	DependsOn   jsonList[uuid.UUID] `db:"depends_on"`
}

func (r stackRow) domain() stack.Stack {
	return stack.Stack{ID: r.ID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, DeletedAt: r.DeletedAt,
		Name: r.Name, Description: r.Description, GeneratorID: r.GeneratorID, DependsOn: r.DependsOn}
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
	return insertInto[stackRow](ctx, r.s.q(ctx), st, `INSERT INTO stacks (name, description, generator_id)
		VALUES ($1, $2, $3) RETURNING `+stackCols, st.Name, st.Description, st.GeneratorID)
}

// GetStack returns a live stack.
func (r *Stacks) GetStack(ctx context.Context, id uuid.UUID) (stack.Stack, error) {
	return getAs[stackRow](ctx, r.s.q(ctx), "stack_not_found", "Stack not found",
		`SELECT `+stackCols+` FROM stacks WHERE id = $1 AND deleted_at IS NULL`, id)
}

// UpdateStack locks the row, lets fn change it and writes it back.
func (r *Stacks) UpdateStack(ctx context.Context, id uuid.UUID, fn func(*stack.Stack) error) (stack.Stack, error) {
	return updateLocked(ctx, r.s, "stack_not_found", "Stack not found",
		`SELECT `+stackCols+` FROM stacks WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id, fn,
		func(ctx context.Context, st stack.Stack, out *stackRow) error {
			return r.s.q(ctx).GetContext(ctx, out, `UPDATE stacks SET name = $2, description = $3, generator_id = $4
			WHERE id = $1 RETURNING `+stackCols, id, st.Name, st.Description, st.GeneratorID)
		})
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

// objectRow is a deployment_objects row as sqlx scans it.
type objectRow struct {
	ID               uuid.UUID  `db:"id"`
	CreatedAt        time.Time  `db:"created_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
	DeletedAt        *time.Time `db:"deleted_at"`
	SequenceID       int64      `db:"sequence_id"`
	StackID          uuid.UUID  `db:"stack_id"`
	YAMLContent      string     `db:"yaml_content"`
	YAMLChecksum     string     `db:"yaml_checksum"`
	SubmittedAt      time.Time  `db:"submitted_at"`
	IsDeletionMarker bool       `db:"is_deletion_marker"`
	RolledBackFrom   *uuid.UUID `db:"rolled_back_from"`
}

func (r objectRow) toDomain() stack.DeploymentObject {
	return stack.DeploymentObject{ID: r.ID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, DeletedAt: r.DeletedAt,
		SequenceID: r.SequenceID, StackID: r.StackID, YAMLContent: r.YAMLContent, YAMLChecksum: r.YAMLChecksum,
		SubmittedAt: r.SubmittedAt, IsDeletionMarker: r.IsDeletionMarker, RolledBackFrom: r.RolledBackFrom}
}

// DeploymentObjects is the repository of stacks' immutable, sequence-numbered
// deployment objects.
type DeploymentObjects struct{ s *Store }

// NewDeploymentObjects returns the deployment-object repository over s.
func NewDeploymentObjects(s *Store) *DeploymentObjects { return &DeploymentObjects{s: s} }

// ListDeploymentObjects returns a stack's live objects, newest first.
func (r *DeploymentObjects) ListDeploymentObjects(ctx context.Context, stackID uuid.UUID) ([]stack.DeploymentObject, error) {
	rows := []objectRow{}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+objectCols+` FROM deployment_objects
		WHERE stack_id = $1 AND deleted_at IS NULL ORDER BY sequence_id DESC`, stackID)
	return convertRows(rows, objectRow.toDomain), mapErr(err)
}

// CreateDeploymentObject inserts d; its stack must be live.
func (r *DeploymentObjects) CreateDeploymentObject(ctx context.Context, d *stack.DeploymentObject) error {
	var row objectRow
	err := r.s.q(ctx).GetContext(ctx, &row, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum, is_deletion_marker, rolled_back_from)
		SELECT id, $2, $3, $4, $5 FROM stacks WHERE id = $1 AND deleted_at IS NULL
		RETURNING `+objectCols, d.StackID, d.YAMLContent, d.YAMLChecksum, d.IsDeletionMarker, d.RolledBackFrom)
	if err != nil {
		return notFound(err, "stack_not_found", "Stack not found")
	}
	*d = row.toDomain()
	return nil
}

// GetDeploymentObject returns a live object.
func (r *DeploymentObjects) GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	var row objectRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+objectCols+` FROM deployment_objects WHERE id = $1 AND deleted_at IS NULL`, id)
	return row.toDomain(), notFound(err, "deployment_object_not_found", "Deployment object not found")
}

// DeploymentObjectRef returns an object whether or not it is soft-deleted
// (an agent may report on an object of a stack deleted meanwhile).
func (r *DeploymentObjects) DeploymentObjectRef(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	var row objectRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+objectCols+` FROM deployment_objects WHERE id = $1`, id)
	return row.toDomain(), notFound(err, "deployment_object_not_found", "Deployment object not found")
}
