package registrationstest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

// Subject is one implementation under test with its fixtures.
type Subject struct {
	Repo registrations.Repository
	// NewAgent, NewGenerator make live rows; NewTarget makes a stack of gen
	// (nil: a system stack) that agentID targets explicitly.
	NewAgent     func(t *testing.T) uuid.UUID
	NewGenerator func(t *testing.T) uuid.UUID
	NewTarget    func(t *testing.T, agentID uuid.UUID, gen *uuid.UUID) uuid.UUID
	// Targets lists the stacks agentID targets explicitly.
	Targets func(t *testing.T, agentID uuid.UUID) []uuid.UUID
}

// RunRepositoryContract checks registrations.Repository.
func RunRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	s := newSubject(t)
	r := s.Repo
	a, b := s.NewAgent(t), s.NewAgent(t)
	g, h := s.NewGenerator(t), s.NewGenerator(t)

	reg, err := r.Register(ctx, a, g)
	if err != nil || reg.ID == uuid.Nil || reg.AgentID != a || reg.GeneratorID != g || reg.RegisteredAt.IsZero() {
		t.Fatalf("Register = %+v, %v", reg, err)
	}
	if _, err := r.Register(ctx, a, g); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second Register: %v, want conflict", err)
	}
	if _, err := r.Register(ctx, b, g); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, a, h); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.IsRegistered(ctx, a, &g); err != nil || !ok {
		t.Fatalf("IsRegistered(a, g) = %v, %v", ok, err)
	}
	if ok, _ := r.IsRegistered(ctx, b, &h); ok {
		t.Fatal("b is not registered with h")
	}
	byGen, err := r.ListByGenerator(ctx, g)
	if err != nil || len(byGen) != 2 {
		t.Fatalf("ListByGenerator(g) = %+v, %v", byGen, err)
	}
	byAgent, _ := r.ListByAgent(ctx, a)
	gens := []uuid.UUID{}
	for _, x := range byAgent {
		gens = append(gens, x.GeneratorID)
	}
	if !slices.Contains(gens, g) || !slices.Contains(gens, h) {
		t.Fatalf("ListByAgent(a) = %v, want g and h", gens)
	}

	// Deregistering removes a's targets on g's stacks only.
	onG := s.NewTarget(t, a, &g)
	onH := s.NewTarget(t, a, &h)
	bOnG := s.NewTarget(t, b, &g)
	removed, err := r.Deregister(ctx, a, g)
	if err != nil || !removed {
		t.Fatalf("Deregister = %v, %v", removed, err)
	}
	left := s.Targets(t, a)
	if slices.Contains(left, onG) || !slices.Contains(left, onH) {
		t.Fatalf("a's targets after deregistering g = %v (g's %s must go, h's %s stay)", left, onG, onH)
	}
	if !slices.Contains(s.Targets(t, b), bOnG) {
		t.Fatal("b's target on g's stack went with a's deregistration")
	}
	if ok, _ := r.IsRegistered(ctx, a, &g); ok {
		t.Fatal("a still registered with g")
	}
	if removed, err := r.Deregister(ctx, a, g); err != nil || removed {
		t.Fatalf("second Deregister = %v, %v, want false, nil", removed, err)
	}

	// A system stack (no generator) belongs to the system generator.
	sys := s.NewTarget(t, a, nil)
	if _, err := r.Register(ctx, a, generator.SystemID); err != nil && !errors.Is(err, domain.ErrConflict) {
		t.Fatal(err)
	}
	if ok, err := r.IsRegistered(ctx, a, nil); err != nil || !ok {
		t.Fatalf("IsRegistered(a, system stack) = %v, %v", ok, err)
	}
	if _, err := r.Deregister(ctx, a, generator.SystemID); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(s.Targets(t, a), sys) {
		t.Fatal("deregistering the system generator left the system stack's target")
	}
	if ok, _ := r.IsRegistered(ctx, a, nil); ok {
		t.Fatal("a still registered with the system generator")
	}
}
