package generatorstest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

// Subject is one implementation under test.
type Subject struct {
	Generators generators.GeneratorRepository
	Stacks     generators.StackLister
	// NewStack makes a live stack of generator gen.
	NewStack func(t *testing.T, gen uuid.UUID) uuid.UUID
}

// RunGeneratorRepositoryContract checks GeneratorRepository (and the
// cascade of a deletion to the generator's stacks, seen through StackLister).
func RunGeneratorRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	s := newSubject(t)
	r := s.Generators
	desc, hash := "ci", "h1"
	g := generator.Generator{Name: "g", Description: &desc, IsActive: true, PakHash: &hash}
	if err := r.CreateGenerator(ctx, &g); err != nil {
		t.Fatal(err)
	}
	if g.ID == uuid.Nil || g.CreatedAt.IsZero() || g.DeletedAt != nil || *g.Description != "ci" || *g.PakHash != "h1" {
		t.Fatalf("created %+v", g)
	}
	dup := generator.Generator{Name: "g", IsActive: true}
	if err := r.CreateGenerator(ctx, &dup); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	other := generator.Generator{Name: "h", IsActive: true}
	if err := r.CreateGenerator(ctx, &other); err != nil {
		t.Fatal(err)
	}
	got, err := r.GetGenerator(ctx, g.ID)
	if err != nil || got.Name != "g" || got.PakHash == nil || *got.PakHash != "h1" {
		t.Fatalf("GetGenerator = %+v, %v", got, err)
	}
	if _, err := r.GetGenerator(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	up, err := r.UpdateGenerator(ctx, g.ID, func(x *generator.Generator) error {
		x.Description, x.IsActive = nil, false
		return nil
	})
	if err != nil || up.Description != nil || up.IsActive || up.Name != "g" {
		t.Fatalf("UpdateGenerator = %+v, %v", up, err)
	}
	if _, err := r.UpdateGenerator(ctx, g.ID, func(x *generator.Generator) error { x.Name = "h"; return nil }); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("rename onto another: %v", err)
	}
	boom := errors.New("boom")
	if _, err := r.UpdateGenerator(ctx, g.ID, func(x *generator.Generator) error { x.Name = "z"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	if now, _ := r.GetGenerator(ctx, g.ID); now.Name != "g" {
		t.Fatalf("a failed update changed the row: %+v", now)
	}

	st := s.NewStack(t, g.ID)
	s.NewStack(t, other.ID)
	if own, err := s.Stacks.ListStacks(ctx, &g.ID); err != nil || len(own) != 1 || own[0].ID != st {
		t.Fatalf("ListStacks(g) = %+v, %v", own, err)
	}
	del, err := r.DeleteGenerator(ctx, g.ID)
	if err != nil || del.DeletedAt == nil || del.ID != g.ID {
		t.Fatalf("DeleteGenerator = %+v, %v", del, err)
	}
	if own, _ := s.Stacks.ListStacks(ctx, &g.ID); len(own) != 0 {
		t.Fatalf("the deleted generator's stacks are still live: %+v", own)
	}
	if rest, _ := s.Stacks.ListStacks(ctx, &other.ID); len(rest) != 1 {
		t.Fatalf("another generator's stacks changed: %+v", rest)
	}
	if _, err := r.DeleteGenerator(ctx, g.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	list, err := r.ListGenerators(ctx)
	if err != nil || len(list) != 1 || list[0].ID != other.ID {
		t.Fatalf("ListGenerators = %+v, %v", list, err)
	}
	again := generator.Generator{Name: "g", IsActive: true}
	if err := r.CreateGenerator(ctx, &again); err != nil {
		t.Fatalf("a deleted generator's name is free again: %v", err)
	}
}
