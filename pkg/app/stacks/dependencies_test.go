package stacks_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

func wantCode(t *testing.T, err error, kind error, code string) {
	t.Helper()
	if !errors.Is(err, kind) || domain.CodeOf(err) != code {
		t.Fatalf("error %v (code %q), want %v %q", err, domain.CodeOf(err), kind, code)
	}
}

func mustStack(t *testing.T, svc *stacks.Service, p identity.Principal, name string, deps ...uuid.UUID) stack.Stack {
	t.Helper()
	st, err := svc.Create(context.Background(), p, stacks.CreateInput{Name: name, DependsOn: deps})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func setDeps(svc *stacks.Service, p identity.Principal, id uuid.UUID, deps ...uuid.UUID) (stack.Stack, error) {
	return svc.Update(context.Background(), p, id, stacks.UpdateInput{DependsOn: &deps})
}

func TestDependencyRules(t *testing.T) {
	ctx := context.Background()
	svc, m, c := newService()
	db := mustStack(t, svc, identity.Admin, "db")
	app := mustStack(t, svc, identity.Admin, "app", db.ID, db.ID)
	if !slices.Equal(app.DependsOn, []uuid.UUID{db.ID}) {
		t.Fatalf("created depends_on %v", app.DependsOn)
	}
	if got, _ := svc.Get(ctx, identity.Admin, app.ID); !slices.Equal(got.DependsOn, []uuid.UUID{db.ID}) {
		t.Fatalf("get depends_on %v", got.DependsOn)
	}

	_, err := setDeps(svc, identity.Admin, db.ID, db.ID)
	wantCode(t, err, domain.ErrUnprocessable, "dependency_cycle")
	_, err = setDeps(svc, identity.Admin, db.ID, app.ID)
	wantCode(t, err, domain.ErrUnprocessable, "dependency_cycle")
	top := mustStack(t, svc, identity.Admin, "top", app.ID)
	_, err = setDeps(svc, identity.Admin, db.ID, top.ID)
	wantCode(t, err, domain.ErrUnprocessable, "dependency_cycle")
	_, err = svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "x", DependsOn: []uuid.UUID{uuid.New()}})
	wantCode(t, err, domain.ErrUnprocessable, "dependency_not_found")
	if all, _ := svc.List(ctx, identity.Admin); len(all) != 3 {
		t.Fatalf("a refused create left a stack behind: %+v", all)
	}
	_, err = svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "x", DependsOn: []uuid.UUID{uuid.Nil}})
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("nil UUID: %v", err)
	}
	many := make([]uuid.UUID, stack.MaxDependencies+1)
	for i := range many {
		many[i] = uuid.New()
	}
	_, err = svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "x", DependsOn: many})
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("too many: %v", err)
	}

	// Owners: generators and system stacks stay apart.
	g1, g2 := uuid.New(), uuid.New()
	m.AddGenerator(g1)
	m.AddGenerator(g2)
	mine := mustStack(t, svc, identity.Generator(g1), "mine")
	theirs := mustStack(t, svc, identity.Generator(g2), "theirs")
	_, err = setDeps(svc, identity.Generator(g1), mine.ID, theirs.ID)
	wantCode(t, err, domain.ErrUnprocessable, "dependency_cross_generator")
	_, err = setDeps(svc, identity.Generator(g1), mine.ID, db.ID)
	wantCode(t, err, domain.ErrUnprocessable, "dependency_cross_generator")
	_, err = setDeps(svc, identity.Admin, db.ID, mine.ID)
	wantCode(t, err, domain.ErrUnprocessable, "dependency_cross_generator")
	own := mustStack(t, svc, identity.Generator(g1), "own", mine.ID)
	if !slices.Equal(own.DependsOn, []uuid.UUID{mine.ID}) {
		t.Fatalf("own generator's dependency: %v", own.DependsOn)
	}

	// Changing dependencies notifies the stack; a rename keeps them.
	c.stacks = nil
	up, err := svc.Update(ctx, identity.Admin, app.ID, stacks.UpdateInput{Name: ptr("app2")})
	if err != nil || !slices.Equal(up.DependsOn, []uuid.UUID{db.ID}) || len(c.stacks) != 0 {
		t.Fatalf("rename: %+v, %v, notified %v", up, err, c.stacks)
	}
	up, err = setDeps(svc, identity.Admin, app.ID)
	if err != nil || len(up.DependsOn) != 0 || !slices.Equal(c.stacks, []uuid.UUID{app.ID}) {
		t.Fatalf("clear: %+v, %v, notified %v", up, err, c.stacks)
	}
}

func TestDeleteDependedOnStack(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newService()
	db := mustStack(t, svc, identity.Admin, "db")
	app := mustStack(t, svc, identity.Admin, "app", db.ID)
	err := svc.Delete(ctx, identity.Admin, db.ID)
	wantCode(t, err, domain.ErrConflict, "stack_has_dependents")
	var de *domain.Error
	if !errors.As(err, &de) || de.Fields["dependents"] == nil {
		t.Fatalf("no dependents in %#v", err)
	}
	// A deleted dependent no longer holds it.
	if err := svc.Delete(ctx, identity.Admin, app.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, identity.Admin, db.ID); err != nil {
		t.Fatal(err)
	}
}

func TestWithheldIsAdminOrSelf(t *testing.T) {
	ctx := context.Background()
	svc, m, _ := newService()
	agentID := uuid.New()
	w := []stack.Withheld{{StackID: uuid.New(), WaitingFor: []stack.DependencyWait{{Reason: stack.WaitFailed}}}}
	m.SetWithheld(agentID, w)
	for _, p := range []identity.Principal{identity.Admin, identity.Agent(agentID)} {
		got, err := svc.Withheld(ctx, p, agentID)
		if err != nil || len(got) != 1 || got[0].StackID != w[0].StackID {
			t.Fatalf("%v: %+v, %v", p, got, err)
		}
	}
	for _, p := range []identity.Principal{identity.Agent(uuid.New()), identity.Generator(uuid.New())} {
		if _, err := svc.Withheld(ctx, p, agentID); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("%v: %v", p, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
