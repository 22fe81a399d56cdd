package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

const generatorCols = `id, created_at, updated_at, deleted_at, name, description, last_active_at, is_active, pak_hash`

// ListGenerators returns live generators in creation order.
func (s *Store) ListGenerators(ctx context.Context) ([]generator.Generator, error) {
	out := []generator.Generator{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+generatorCols+` FROM generators WHERE deleted_at IS NULL ORDER BY created_at, id`)
	return out, mapErr(err)
}

// CreateGenerator inserts g, filling id and timestamps.
func (s *Store) CreateGenerator(ctx context.Context, g *generator.Generator) error {
	err := s.q(ctx).GetContext(ctx, g, `INSERT INTO generators (name, description, is_active, pak_hash)
		VALUES ($1, $2, $3, $4) RETURNING `+generatorCols, g.Name, g.Description, g.IsActive, g.PakHash)
	return mapErr(err)
}

// GetGenerator returns a live generator.
func (s *Store) GetGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error) {
	var g generator.Generator
	err := s.q(ctx).GetContext(ctx, &g, `SELECT `+generatorCols+` FROM generators WHERE id = $1 AND deleted_at IS NULL`, id)
	return g, notFound(err, "Generator not found")
}

// GeneratorExists reports whether a live generator has id.
func (s *Store) GeneratorExists(ctx context.Context, id uuid.UUID) (bool, error) {
	var ok bool
	err := s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM generators WHERE id = $1 AND deleted_at IS NULL)`, id)
	return ok, mapErr(err)
}

// UpdateGenerator locks the row, lets fn change it and writes it back.
func (s *Store) UpdateGenerator(ctx context.Context, id uuid.UUID, fn func(*generator.Generator) error) (generator.Generator, error) {
	var out generator.Generator
	err := s.InTx(ctx, func(ctx context.Context) error {
		var g generator.Generator
		err := s.q(ctx).GetContext(ctx, &g, `SELECT `+generatorCols+` FROM generators
			WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id)
		if err != nil {
			return notFound(err, "Generator not found")
		}
		if err := fn(&g); err != nil {
			return err
		}
		err = s.q(ctx).GetContext(ctx, &out, `UPDATE generators SET name = $2, description = $3, is_active = $4, pak_hash = $5
			WHERE id = $1 RETURNING `+generatorCols, id, g.Name, g.Description, g.IsActive, g.PakHash)
		return mapErr(err)
	})
	return out, err
}

// DeleteGenerator soft-deletes a live generator; triggers cascade to its
// stacks (with deletion markers).
func (s *Store) DeleteGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error) {
	var g generator.Generator
	err := s.q(ctx).GetContext(ctx, &g, `UPDATE generators SET deleted_at = now()
		WHERE id = $1 AND deleted_at IS NULL RETURNING `+generatorCols, id)
	return g, notFound(err, "Generator not found")
}
