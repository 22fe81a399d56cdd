package registrations_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents/agentstest"
	"github.com/brokkr-go/brokkr/pkg/app/generators/generatorstest"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/app/registrations/registrationstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

type changes struct {
	mu     sync.Mutex
	agents []uuid.UUID
}

func (c *changes) AgentChanged(_ context.Context, id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.agents = append(c.agents, id)
}

type fixture struct {
	svc     *registrations.Service
	regs    *registrationstest.Memory
	j       *journaltest.Journal
	changes *changes
	a, b    uuid.UUID
	g, sys  uuid.UUID
}

func newFixture(t *testing.T) fixture {
	ctx := context.Background()
	ag, gens := agentstest.NewMemory(), generatorstest.NewMemory()
	f := fixture{regs: registrationstest.NewMemory(), j: &journaltest.Journal{}, changes: &changes{}}
	for _, id := range []*uuid.UUID{&f.a, &f.b} {
		x := agent.Agent{Name: uuid.NewString(), ClusterName: "c", Status: agent.StatusActive}
		if err := ag.CreateAgent(ctx, &x); err != nil {
			t.Fatal(err)
		}
		*id = x.ID
	}
	g := generator.Generator{Name: "g", IsActive: true}
	sys := generator.Generator{Name: generator.SystemGeneratorName, IsActive: true, IsSystem: true}
	for _, x := range []*generator.Generator{&g, &sys} {
		if err := gens.CreateGenerator(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	f.g, f.sys = g.ID, sys.ID
	f.svc = registrations.NewService(registrations.Repos{Tx: f.j, Journal: f.j, Registrations: f.regs,
		Generators: gens, Agents: ag}, f.changes)
	return f
}

func code(err error) string {
	var de *domain.Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

func TestRegisterRulesAndOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// Who may: a generator never, an agent only itself; role before lookup.
	if _, err := f.svc.Register(ctx, identity.Generator(f.g), uuid.New(), &f.a); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("generator: %v", err)
	}
	if _, err := f.svc.Register(ctx, identity.Agent(f.b), f.g, &f.a); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent for another: %v", err)
	}
	// 404 before 400: an unknown generator wins over a missing agent_id.
	if _, err := f.svc.Register(ctx, identity.Admin, uuid.New(), nil); code(err) != registrations.CodeGeneratorNotFound {
		t.Fatalf("unknown generator: %v", err)
	}
	if _, err := f.svc.Register(ctx, identity.Admin, f.g, nil); code(err) != registrations.CodeMissingAgentID || !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("missing agent_id: %v", err)
	}
	missing := uuid.New()
	if _, err := f.svc.Register(ctx, identity.Admin, f.g, &missing); code(err) != registrations.CodeAgentNotFound {
		t.Fatalf("unknown agent: %v", err)
	}
	reg, err := f.svc.Register(ctx, identity.Agent(f.a), f.g, nil)
	if err != nil || reg.AgentID != f.a || reg.GeneratorID != f.g {
		t.Fatalf("self-registration = %+v, %v", reg, err)
	}
	if _, err := f.svc.Register(ctx, identity.Admin, f.g, &f.a); code(err) != registrations.CodeAlreadyRegistered || !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("repeat: %v", err)
	}
	if !slices.Equal(f.changes.agents, []uuid.UUID{f.a}) {
		t.Fatalf("target state told about %v, want a once", f.changes.agents)
	}
	if !slices.Contains(f.j.Actions(), audit.ActionAgentRegistered) {
		t.Fatalf("audit = %v", f.j.Actions())
	}
}

func TestDeregisterRemovesTargetsAndIsANoOpWhenAbsent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.svc.Register(ctx, identity.Admin, f.g, &f.a); err != nil {
		t.Fatal(err)
	}
	stackOfG, other := uuid.New(), uuid.New()
	otherGen := uuid.New()
	f.regs.AddTarget(f.a, stackOfG, &f.g)
	f.regs.AddTarget(f.a, other, &otherGen)
	f.changes.agents = nil
	if err := f.svc.Deregister(ctx, identity.Agent(f.a), f.g, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.regs.Targets(f.a); !slices.Equal(got, []uuid.UUID{other}) {
		t.Fatalf("targets after deregistration = %v, want only %s", got, other)
	}
	if !slices.Equal(f.changes.agents, []uuid.UUID{f.a}) {
		t.Fatalf("target state told about %v", f.changes.agents)
	}
	// Again: nothing registered, 204 all the same, nobody woken, not audited twice.
	n := len(f.j.Audits())
	if err := f.svc.Deregister(ctx, identity.Admin, f.g, &f.a); err != nil {
		t.Fatal(err)
	}
	if len(f.changes.agents) != 1 || len(f.j.Audits()) != n {
		t.Fatalf("no-op deregistration woke %v, audited %d", f.changes.agents, len(f.j.Audits())-n)
	}
}

func TestListings(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.svc.Register(ctx, identity.Admin, f.sys, &f.a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ForAgent(ctx, identity.Agent(f.b), f.a); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("other agent: %v", err)
	}
	if regs, err := f.svc.ForAgent(ctx, identity.Agent(f.a), f.a); err != nil || len(regs) != 1 {
		t.Fatalf("own registrations = %v, %v", regs, err)
	}
	if _, err := f.svc.ForGenerator(ctx, identity.Generator(f.sys), f.sys); code(err) != registrations.CodeNotATenant {
		t.Fatalf("system generator as a tenant: %v", err)
	}
	if regs, err := f.svc.ForGenerator(ctx, identity.Admin, f.sys); err != nil || len(regs) != 1 {
		t.Fatalf("admin lists the system generator = %v, %v", regs, err)
	}
	if _, err := f.svc.ForGenerator(ctx, identity.Generator(f.g), f.sys); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another generator: %v", err)
	}
}
