package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

var _ generators.GeneratorRepository = (*Generators)(nil)

// Generators is the repository of the generator aggregate.
type Generators struct{ s *Store }

// NewGenerators returns the generator repository on s.
func NewGenerators(s *Store) *Generators { return &Generators{s: s} }

const generatorCols = `id, created_at, updated_at, deleted_at, name, description, last_active_at, is_active, pak_hash, is_system`

// ListGenerators returns live generators in creation order; the system
// generator is not listed.
func (r *Generators) ListGenerators(ctx context.Context) ([]generator.Generator, error) {
	return selectAll[generator.Generator](ctx, r.s.q(ctx), `SELECT `+generatorCols+` FROM generators WHERE deleted_at IS NULL AND NOT is_system ORDER BY created_at, id`)
}

// CreateGenerator inserts g, filling id and timestamps.
func (r *Generators) CreateGenerator(ctx context.Context, g *generator.Generator) error {
	return insertInto(ctx, r.s.q(ctx), g, `INSERT INTO generators (name, description, is_active, pak_hash)
		VALUES ($1, $2, $3, $4) RETURNING `+generatorCols, g.Name, g.Description, g.IsActive, g.PakHash)
}

// GetGenerator returns a live generator.
func (r *Generators) GetGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error) {
	return getOne[generator.Generator](ctx, r.s.q(ctx), "generator_not_found", "Generator not found",
		`SELECT `+generatorCols+` FROM generators WHERE id = $1 AND deleted_at IS NULL`, id)
}

// GeneratorExists reports whether a live generator has id.
func (r *Generators) GeneratorExists(ctx context.Context, id uuid.UUID) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM generators WHERE id = $1 AND deleted_at IS NULL)`, id)
	return ok, mapErr(err)
}

// UpdateGenerator locks the row, lets fn change it and writes it back.
func (r *Generators) UpdateGenerator(ctx context.Context, id uuid.UUID, fn func(*generator.Generator) error) (generator.Generator, error) {
	return updateLocked(ctx, r.s, "generator_not_found", "Generator not found", `SELECT `+generatorCols+` FROM generators
			WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id, fn,
		func(ctx context.Context, g generator.Generator, out *generator.Generator) error {
			return r.s.q(ctx).GetContext(ctx, out, `UPDATE generators SET name = $2, description = $3, is_active = $4, pak_hash = $5
			WHERE id = $1 RETURNING `+generatorCols, id, g.Name, g.Description, g.IsActive, g.PakHash)
		})
}

// DeleteGenerator soft-deletes a live generator; triggers cascade to its
// stacks (with deletion markers).
func (r *Generators) DeleteGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error) {
	return getOne[generator.Generator](ctx, r.s.q(ctx), "generator_not_found", "Generator not found",
		`UPDATE generators SET deleted_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+generatorCols, id)
}
