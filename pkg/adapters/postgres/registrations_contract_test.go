package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/app/registrations/registrationstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

func TestRegistrationRepositoryContract(t *testing.T) {
	t.Parallel()
	registrationstest.RunRepositoryContract(t, func(t *testing.T) registrationstest.Subject {
		db := pgtest.New(t)
		s := postgres.NewStore(db)
		return registrationstest.Subject{Repo: postgres.NewRegistrations(s),
			NewAgent: func(t *testing.T) uuid.UUID {
				a := agent.Agent{Name: "a-" + uuid.NewString(), ClusterName: "c", Status: agent.StatusActive}
				if err := postgres.NewAgents(s).CreateAgent(context.Background(), &a); err != nil {
					t.Fatal(err)
				}
				return a.ID
			},
			NewGenerator: func(t *testing.T) uuid.UUID {
				g := generator.Generator{Name: "g-" + uuid.NewString(), IsActive: true}
				if err := postgres.NewGenerators(s).CreateGenerator(context.Background(), &g); err != nil {
					t.Fatal(err)
				}
				return g.ID
			},
			NewTarget: func(t *testing.T, a uuid.UUID, gen *uuid.UUID) uuid.UUID {
				st := stack.Stack{Name: "s-" + uuid.NewString(), GeneratorID: gen}
				if err := postgres.NewStacks(s).CreateStack(context.Background(), &st); err != nil {
					t.Fatal(err)
				}
				if _, err := postgres.NewAgents(s).AddAgentTarget(context.Background(), a, st.ID); err != nil {
					t.Fatal(err)
				}
				return st.ID
			},
			Targets: func(t *testing.T, a uuid.UUID) []uuid.UUID {
				var ids []uuid.UUID
				if err := db.Select(&ids, `SELECT stack_id FROM agent_targets WHERE agent_id = $1`, a); err != nil {
					t.Fatal(err)
				}
				return ids
			}}
	})
}

// The migration provisions the system generator; CreateAgent registers
// every new agent with it; listings hide it.
func TestSystemGeneratorProvisioned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := postgres.NewStore(pgtest.New(t))
	gens := postgres.NewGenerators(s)
	sys, err := gens.GetGenerator(ctx, generator.SystemID)
	if err != nil || !sys.IsSystem || sys.Name != generator.SystemGeneratorName || sys.PakHash != nil {
		t.Fatalf("system generator = %+v, %v", sys, err)
	}
	list, err := gens.ListGenerators(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range list {
		if g.IsSystem || g.ID == generator.SystemID {
			t.Fatalf("ListGenerators lists the system generator: %+v", g)
		}
	}
	a := agent.Agent{Name: "a", ClusterName: "c", Status: agent.StatusActive}
	if err := postgres.NewAgents(s).CreateAgent(ctx, &a); err != nil {
		t.Fatal(err)
	}
	regs, err := postgres.NewRegistrations(s).ListByAgent(ctx, a.ID)
	if err != nil || len(regs) != 1 || regs[0].GeneratorID != generator.SystemID {
		t.Fatalf("new agent's registrations = %+v, %v; want the system generator", regs, err)
	}
}

// With the boundary on, an explicit target needs the agent's registration
// with the stack's generator (a system stack: the system generator); off,
// nothing is checked.
func TestTargetChangesUnderBoundary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, required := range []bool{false, true} {
		s := postgres.NewStore(pgtest.New(t))
		s.SetRegistrationBoundary(registrations.Boundary{Required: required})
		ag := postgres.NewAgents(s)
		a := agent.Agent{Name: "a", ClusterName: "c", Status: agent.StatusActive}
		if err := ag.CreateAgent(ctx, &a); err != nil {
			t.Fatal(err)
		}
		g := generator.Generator{Name: "g", IsActive: true}
		if err := postgres.NewGenerators(s).CreateGenerator(ctx, &g); err != nil {
			t.Fatal(err)
		}
		owned := stack.Stack{Name: "owned", GeneratorID: &g.ID}
		system := stack.Stack{Name: "system"}
		for _, st := range []*stack.Stack{&owned, &system} {
			if err := postgres.NewStacks(s).CreateStack(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		_, err := ag.AddAgentTarget(ctx, a.ID, owned.ID)
		if required {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != registrations.CodeAgentNotRegistered || !errors.Is(err, domain.ErrForbidden) {
				t.Fatalf("boundary on, unregistered: %v, want 403 agent_not_registered", err)
			}
			if _, err := postgres.NewRegistrations(s).Register(ctx, a.ID, g.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := ag.AddAgentTarget(ctx, a.ID, owned.ID); err != nil {
				t.Fatalf("boundary on, registered: %v", err)
			}
		} else if err != nil {
			t.Fatalf("boundary off: %v", err)
		}
		// Every agent is registered with the system generator.
		if _, err := ag.AddAgentTarget(ctx, a.ID, system.ID); err != nil {
			t.Fatalf("required=%v, system stack: %v", required, err)
		}
		if err := ag.RemoveAgentTarget(ctx, a.ID, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("required=%v, unknown stack: %v, want not found", required, err)
		}
	}
}
