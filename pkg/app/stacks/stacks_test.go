package stacks_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/labeling/labelingtest"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/stacks/stackstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

type memFixtures struct{ m *stackstest.Memory }

func (f memFixtures) Generator(*testing.T) uuid.UUID {
	id := uuid.New()
	f.m.AddGenerator(id)
	return id
}

func (f memFixtures) TargetedAgent(_ *testing.T, stackID uuid.UUID) uuid.UUID {
	id := uuid.New()
	f.m.Target(id, stackID)
	return id
}

func TestMemoryContract(t *testing.T) {
	stackstest.RunStackRepositoryContract(t, func(*testing.T) stackstest.Subject {
		m := stackstest.NewMemory()
		return stackstest.Subject{Tx: m, Stacks: m, Objects: m, Fixtures: memFixtures{m}}
	})
}

// changes records the notifications the use cases send after commit.
type changes struct {
	stacks      []uuid.UUID
	labels      []string
	annotations []string
}

func (c *changes) StackChanged(_ context.Context, id uuid.UUID)  { c.stacks = append(c.stacks, id) }
func (c *changes) StackLabelChanged(_ context.Context, l string) { c.labels = append(c.labels, l) }
func (c *changes) StackAnnotationChanged(_ context.Context, k string) {
	c.annotations = append(c.annotations, k)
}

func newService() (*stacks.Service, *stackstest.Memory, *changes) {
	m := stackstest.NewMemory()
	c := &changes{}
	return stacks.NewService(stacks.Repos{Tx: m, Journal: m, Stacks: m, Objects: m, Generators: m, Dependencies: m, Withheld: m}, c), m, c
}

func wantKind(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	var de *domain.Error
	if msg != "" && (!errors.As(err, &de) || de.Msg != msg) {
		t.Fatalf("error %v, want message %q", err, msg)
	}
}

func str(s string) *string { return &s }

func TestCreate(t *testing.T) {
	ctx := context.Background()
	gen := uuid.New()
	other := uuid.New()
	cases := []struct {
		name    string
		p       identity.Principal
		in      stacks.CreateInput
		kind    error
		msg     string
		wantGen *uuid.UUID
	}{
		{name: "admin makes a system stack", p: identity.Admin, in: stacks.CreateInput{Name: "s"}},
		{name: "nil uuid from the admin is a system stack", p: identity.Admin, in: stacks.CreateInput{Name: "s", GeneratorID: &uuid.Nil}},
		{name: "admin makes a stack for a generator", p: identity.Admin, in: stacks.CreateInput{Name: "s", GeneratorID: &gen}, wantGen: &gen},
		{name: "admin names an unknown generator", p: identity.Admin, in: stacks.CreateInput{Name: "s", GeneratorID: &other},
			kind: domain.ErrUnprocessable, msg: "Generator not found"},
		{name: "generator's stack is its own", p: identity.Generator(gen), in: stacks.CreateInput{Name: "s"}, wantGen: &gen},
		{name: "generator cannot create for another", p: identity.Generator(gen), in: stacks.CreateInput{Name: "s", GeneratorID: &other},
			kind: domain.ErrForbidden, msg: "Generator can only create stacks for itself"},
		{name: "agent may not", p: identity.Agent(uuid.New()), in: stacks.CreateInput{Name: "s"}, kind: domain.ErrForbidden},
		{name: "empty name", p: identity.Admin, in: stacks.CreateInput{Name: "  "}, kind: domain.ErrInvalid, msg: "name cannot be empty"},
		{name: "long name", p: identity.Admin, in: stacks.CreateInput{Name: strings.Repeat("n", 256)}, kind: domain.ErrInvalid},
		{name: "blank description", p: identity.Admin, in: stacks.CreateInput{Name: "s", Description: str(" ")}, kind: domain.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc, m, _ := newService()
			m.AddGenerator(gen)
			st, err := svc.Create(ctx, tc.p, tc.in)
			if tc.kind != nil {
				wantKind(t, err, tc.kind, tc.msg)
				if len(m.Audits()) != 0 || len(m.Events()) != 0 {
					t.Fatal("a refused create left an audit entry or event")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (tc.wantGen == nil) != (st.GeneratorID == nil) || (tc.wantGen != nil && *st.GeneratorID != *tc.wantGen) {
				t.Fatalf("generator %v, want %v", st.GeneratorID, tc.wantGen)
			}
			if a := m.Audits(); len(a) != 1 || a[0].Action != audit.ActionStackCreated || *a[0].ResourceID != st.ID {
				t.Fatalf("audit %+v", a)
			}
			if e := m.Events(); len(e) != 1 || e[0].Type != event.StackCreated {
				t.Fatalf("events %+v", e)
			}
		})
	}
}

func TestCreateDuplicateName(t *testing.T) {
	svc, m, _ := newService()
	ctx := context.Background()
	if _, err := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "s"}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "s"})
	wantKind(t, err, domain.ErrConflict, "A stack with this name already exists")
	if len(m.Audits()) != 1 || len(m.Events()) != 1 {
		t.Fatal("the refused create was journalled")
	}
}

func TestOwnership(t *testing.T) {
	ctx := context.Background()
	svc, m, _ := newService()
	owner, stranger := uuid.New(), uuid.New()
	m.AddGenerator(owner)
	st, err := svc.Create(ctx, identity.Generator(owner), stacks.CreateInput{Name: "owned"})
	if err != nil {
		t.Fatal(err)
	}
	labelSvc := stacks.NewLabels(svc, m, m, labelingtest.NewMemory(false))
	associated, unrelated := uuid.New(), uuid.New()
	m.Target(associated, st.ID)
	cases := []struct {
		name string
		p    identity.Principal
		get  error // Get (manage)
		read error // Labels (read, agents admitted when associated)
	}{
		{"admin", identity.Admin, nil, nil},
		{"owner", identity.Generator(owner), nil, nil},
		{"another generator", identity.Generator(stranger), domain.ErrForbidden, domain.ErrForbidden},
		{"associated agent", identity.Agent(associated), domain.ErrForbidden, nil},
		{"unrelated agent", identity.Agent(unrelated), domain.ErrForbidden, domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Get(ctx, tc.p, st.ID)
			if !errors.Is(err, tc.get) && !(tc.get == nil && err == nil) {
				t.Fatalf("Get: %v, want %v", err, tc.get)
			}
			_, err = labelSvc.Labels(ctx, tc.p, st.ID)
			if !errors.Is(err, tc.read) && !(tc.read == nil && err == nil) {
				t.Fatalf("Labels: %v, want %v", err, tc.read)
			}
		})
	}
	_, err = svc.Get(ctx, identity.Admin, uuid.New())
	wantKind(t, err, domain.ErrNotFound, "Stack not found")
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	svc, m, _ := newService()
	st, _ := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "a", Description: str("d")})
	if _, err := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "b"}); err != nil {
		t.Fatal(err)
	}
	other := uuid.New()
	_, err := svc.Update(ctx, identity.Admin, st.ID, stacks.UpdateInput{ID: &other})
	wantKind(t, err, domain.ErrInvalid, "Stack ID mismatch")
	_, err = svc.Update(ctx, identity.Admin, st.ID, stacks.UpdateInput{Name: str("b")})
	wantKind(t, err, domain.ErrConflict, "A stack with this name already exists")
	_, err = svc.Update(ctx, identity.Admin, st.ID, stacks.UpdateInput{Name: str("")})
	wantKind(t, err, domain.ErrInvalid, "name cannot be empty")
	up, err := svc.Update(ctx, identity.Admin, st.ID, stacks.UpdateInput{Name: str("c"), ClearDescription: true})
	if err != nil || up.Name != "c" || up.Description != nil {
		t.Fatalf("update %+v, %v", up, err)
	}
	a := m.Audits()
	if last := a[len(a)-1]; last.Action != audit.ActionStackUpdated {
		t.Fatalf("last audit %+v", last)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	svc, m, c := newService()
	st, _ := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "a"})
	if err := svc.Delete(ctx, identity.Admin, st.ID); err != nil {
		t.Fatal(err)
	}
	if len(c.stacks) != 1 || c.stacks[0] != st.ID {
		t.Fatalf("change notes %v", c.stacks)
	}
	if e := m.Events(); e[len(e)-1].Type != event.StackDeleted {
		t.Fatalf("events %+v", e)
	}
	err := svc.Delete(ctx, identity.Admin, st.ID)
	wantKind(t, err, domain.ErrNotFound, "Stack not found")
	if len(c.stacks) != 1 {
		t.Fatal("a failed delete woke the long-polls")
	}
}

// The stack side of the labels component: the stack's owner rules and
// wake-ups (the shared rules are tested in package labeling).
func TestLabelsAndAnnotations(t *testing.T) {
	ctx := context.Background()
	svc, m, c := newService()
	labelSvc := stacks.NewLabels(svc, m, m, labelingtest.NewMemory(false))
	st, _ := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "a"})
	if _, err := labelSvc.AddLabel(ctx, identity.Admin, st.ID, "env"); err != nil {
		t.Fatal(err)
	}
	if _, err := labelSvc.AddLabel(ctx, identity.Admin, st.ID, "env"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("duplicate label: %v", err)
	}
	if _, err := labelSvc.AddLabel(ctx, identity.Generator(uuid.New()), st.ID, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("a stranger labelled the stack: %v", err)
	}
	if _, err := labelSvc.AddLabel(ctx, identity.Admin, uuid.New(), "x"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("label on a missing stack: %v", err)
	}
	if err := labelSvc.RemoveLabel(ctx, identity.Admin, st.ID, "env"); err != nil {
		t.Fatal(err)
	}
	if len(c.labels) != 2 || c.labels[0] != "env" {
		t.Fatalf("label notes %v (a failed change must not wake anyone)", c.labels)
	}
	if _, err := labelSvc.AddAnnotation(ctx, identity.Admin, st.ID, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := labelSvc.RemoveAnnotation(ctx, identity.Admin, st.ID, "k"); err != nil {
		t.Fatal(err)
	}
	if len(c.annotations) != 2 || c.annotations[0] != "k" {
		t.Fatalf("annotation notes %v", c.annotations)
	}
}

func TestDeploymentObjects(t *testing.T) {
	ctx := context.Background()
	svc, m, c := newService()
	owner := uuid.New()
	m.AddGenerator(owner)
	st, _ := svc.Create(ctx, identity.Generator(owner), stacks.CreateInput{Name: "a"})
	_, err := svc.CreateDeploymentObject(ctx, identity.Generator(owner), st.ID, stacks.DeploymentInput{YAMLContent: " \n"})
	wantKind(t, err, domain.ErrInvalid, "YAML content cannot be empty")
	_, err = svc.CreateDeploymentObject(ctx, identity.Generator(owner), st.ID, stacks.DeploymentInput{YAMLContent: "a: [\n"})
	wantKind(t, err, domain.ErrInvalid, "")
	d, err := svc.CreateDeploymentObject(ctx, identity.Generator(owner), st.ID, stacks.DeploymentInput{YAMLContent: "a: 1\n"})
	if err != nil {
		t.Fatal(err)
	}
	if d.YAMLChecksum != stack.Checksum("a: 1\n") || d.SequenceID == 0 {
		t.Fatalf("object %+v", d)
	}
	if e := m.Events(); e[len(e)-1].Type != event.DeploymentCreated {
		t.Fatalf("events %+v", e)
	}
	if len(c.stacks) != 1 || c.stacks[0] != st.ID {
		t.Fatalf("change notes %v", c.stacks)
	}

	agent, stranger := uuid.New(), uuid.New()
	m.Target(agent, st.ID)
	cases := []struct {
		name string
		p    identity.Principal
		want error
	}{
		{"admin", identity.Admin, nil},
		{"owner", identity.Generator(owner), nil},
		{"associated agent", identity.Agent(agent), nil},
		{"unrelated agent", identity.Agent(stranger), domain.ErrForbidden},
		{"another generator", identity.Generator(stranger), domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := svc.GetDeploymentObject(ctx, tc.p, d.ID)
			if tc.want != nil {
				wantKind(t, err, tc.want, "")
				return
			}
			if err != nil || got.ID != d.ID {
				t.Fatalf("get %+v, %v", got, err)
			}
		})
	}

	// Provenance runs in the same transaction: its failure stores nothing.
	before, _ := svc.DeploymentObjects(ctx, identity.Admin, st.ID)
	boom := errors.New("provenance failed")
	_, err = svc.Deploy(ctx, identity.Admin, st.ID, stacks.DeploymentInput{YAMLContent: "b: 2\n"},
		func(context.Context, stack.DeploymentObject) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("deploy with failing provenance: %v", err)
	}
	after, _ := svc.DeploymentObjects(ctx, identity.Admin, st.ID)
	if len(after) != len(before) {
		t.Fatalf("%d objects after a failed deploy, want %d", len(after), len(before))
	}
}

func TestMemoryDependencyContract(t *testing.T) {
	stackstest.RunDependencyRepositoryContract(t, func(*testing.T) stackstest.DependencySubject {
		m := stackstest.NewMemory()
		return stackstest.DependencySubject{Subject: stackstest.Subject{Tx: m, Stacks: m, Objects: m, Fixtures: memFixtures{m}},
			Dependencies: m}
	})
}

// ListTenant (GET /stacks?pak_id=) narrows and never widens.
func TestListTenant(t *testing.T) {
	ctx := context.Background()
	svc, m, _ := newService()
	g1, g2 := uuid.New(), uuid.New()
	m.AddGenerator(g1)
	m.AddGenerator(g2)
	own, err := svc.Create(ctx, identity.Generator(g1), stacks.CreateInput{Name: "g1"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.Create(ctx, identity.Generator(g2), stacks.CreateInput{Name: "g2"})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := svc.Create(ctx, identity.Admin, stacks.CreateInput{Name: "sys"})
	if err != nil {
		t.Fatal(err)
	}
	names := func(p identity.Principal, tenant uuid.UUID) []uuid.UUID {
		t.Helper()
		out, err := svc.ListTenant(ctx, p, tenant)
		if err != nil {
			t.Fatal(err)
		}
		ids := []uuid.UUID{}
		for _, st := range out {
			ids = append(ids, st.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		name   string
		p      identity.Principal
		tenant uuid.UUID
		want   []uuid.UUID
	}{
		{"admin, one generator", identity.Admin, g1, []uuid.UUID{own.ID}},
		{"admin, the system generator", identity.Admin, generator.SystemID, []uuid.UUID{sys.ID}},
		{"admin, unknown", identity.Admin, uuid.New(), []uuid.UUID{}},
		{"generator, itself", identity.Generator(g2), g2, []uuid.UUID{other.ID}},
		{"generator, another: not widened", identity.Generator(g2), g1, []uuid.UUID{}},
	} {
		if got := names(tc.p, tc.tenant); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := svc.ListTenant(ctx, identity.Agent(uuid.New()), g1); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent: %v", err)
	}
}
