package templates_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/labeling/labelingtest"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/stacks/stackstest"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/app/templates/templatestest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

type memFixtures struct{}

func (memFixtures) Generator(*testing.T) uuid.UUID        { return uuid.New() }
func (memFixtures) DeploymentObject(*testing.T) uuid.UUID { return uuid.New() }

func TestMemoryContract(t *testing.T) {
	templatestest.RunTemplateRepositoryContract(t, func(*testing.T) templatestest.Subject {
		m := templatestest.NewMemory()
		return templatestest.Subject{Templates: m, Labels: m, Provenance: m, Fixtures: memFixtures{}}
	})
}

// renderer stands in for the templating service: "{% bad" is a syntax
// error, "invalid" an unusable schema, and rendering substitutes {{ name }}.
type renderer struct{}

func (renderer) ValidateTemplate(_ context.Context, src string) error {
	if strings.Contains(src, "{% bad") {
		return domain.Invalid("Invalid Tera syntax: bad")
	}
	return nil
}

func (renderer) ValidateSchema(_ context.Context, schema string) error {
	if schema == "invalid" {
		return domain.Invalid("Invalid JSON Schema: invalid")
	}
	return nil
}

func (renderer) Render(_ context.Context, src, _ string, params map[string]any) (string, error) {
	name, _ := params["name"].(string)
	return strings.ReplaceAll(src, "{{ name }}", name), nil
}

type fixture struct {
	svc    *templates.Service
	tm     *templatestest.Memory
	sm     *stackstest.Memory
	stacks *stacks.Service
	labels *stacks.Labels
}

type noChanges struct{}

func (noChanges) StackChanged(context.Context, uuid.UUID)        {}
func (noChanges) StackLabelChanged(context.Context, string)      {}
func (noChanges) StackAnnotationChanged(context.Context, string) {}

func newFixture() fixture {
	sm := stackstest.NewMemory()
	st := stacks.NewService(stacks.Repos{Tx: sm, Journal: sm, Stacks: sm, Objects: sm, Generators: sm, Dependencies: sm, Withheld: sm}, noChanges{})
	stackLabels := labelingtest.NewMemory(false)
	tm := templatestest.NewMemory()
	svc := templates.NewService(templates.Repos{Tx: tm, Journal: tm, Templates: tm, Labels: tm, StackLabels: stackLabels, Provenance: tm},
		renderer{}, st)
	return fixture{svc: svc, tm: tm, sm: sm, stacks: st, labels: stacks.NewLabels(st, sm, sm, stackLabels)}
}

func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	var de *domain.Error
	if msg != "" && (!errors.As(err, &de) || de.Msg != msg) {
		t.Fatalf("error %v, want message %q", err, msg)
	}
}

func in(name, content string) templates.CreateInput {
	return templates.CreateInput{Name: name, TemplateContent: content, ParametersSchema: "{}"}
}

func TestCreateRules(t *testing.T) {
	ctx := context.Background()
	gen := uuid.New()
	cases := []struct {
		name string
		p    identity.Principal
		in   templates.CreateInput
		kind error
		msg  string
	}{
		{"agent may not", identity.Agent(uuid.New()), in("t", "a: 1"), domain.ErrForbidden, "Admin or generator access required"},
		{"empty name", identity.Admin, in(" ", "a: 1"), domain.ErrInvalid, "name must be 1 to 255 characters"},
		{"empty content", identity.Admin, in("t", " "), domain.ErrInvalid, "template_content cannot be empty"},
		{"empty schema", identity.Admin, templates.CreateInput{Name: "t", TemplateContent: "a"}, domain.ErrInvalid, "parameters_schema cannot be empty"},
		{"syntax error from the renderer", identity.Admin, in("t", "{% bad"), domain.ErrInvalid, "Invalid Tera syntax: bad"},
		{"bad schema from the renderer", identity.Generator(gen), templates.CreateInput{Name: "t", TemplateContent: "a", ParametersSchema: "invalid"},
			domain.ErrInvalid, "Invalid JSON Schema: invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			_, err := f.svc.Create(ctx, tc.p, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
			if len(f.tm.Audits()) != 0 {
				t.Fatal("a refused create was audited")
			}
		})
	}
}

func TestCreateSameNameAddsVersion(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	gen := uuid.New()
	first, err := f.svc.Create(ctx, identity.Generator(gen), in("web", "a: 1"))
	if err != nil || first.Version != 1 || !first.OwnedBy(gen) {
		t.Fatalf("create %+v, %v", first, err)
	}
	again, err := f.svc.Create(ctx, identity.Generator(gen), in("web", "a: 2"))
	if err != nil || again.ID != first.ID || again.Version != 2 {
		t.Fatalf("second create %+v, %v", again, err)
	}
	sys, err := f.svc.Create(ctx, identity.Admin, in("web", "a: 3"))
	if err != nil || sys.ID == first.ID || !sys.IsSystem() {
		t.Fatalf("system template with the same name %+v, %v", sys, err)
	}
	if a := f.tm.Audits(); len(a) != 3 || a[0].Action != audit.ActionTemplateCreated {
		t.Fatalf("audit %+v", a)
	}
}

func TestAccess(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	owner, other := uuid.New(), uuid.New()
	sys, _ := f.svc.Create(ctx, identity.Admin, in("sys", "a"))
	own, _ := f.svc.Create(ctx, identity.Generator(owner), in("own", "a"))
	cases := []struct {
		name        string
		p           identity.Principal
		id          uuid.UUID
		read, write error
	}{
		{"admin, system", identity.Admin, sys.ID, nil, nil},
		{"admin, generator's", identity.Admin, own.ID, nil, nil},
		{"owner, own", identity.Generator(owner), own.ID, nil, nil},
		{"owner, system", identity.Generator(owner), sys.ID, nil, domain.ErrForbidden},
		{"other generator", identity.Generator(other), own.ID, domain.ErrForbidden, domain.ErrForbidden},
		{"agent", identity.Agent(uuid.New()), sys.ID, domain.ErrForbidden, domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Get(ctx, tc.p, tc.id)
			if (tc.read == nil) != (err == nil) || (tc.read != nil && !errors.Is(err, tc.read)) {
				t.Fatalf("read: %v, want %v", err, tc.read)
			}
			err = f.svc.CheckModify(ctx, tc.p, tc.id)
			if (tc.write == nil) != (err == nil) || (tc.write != nil && !errors.Is(err, tc.write)) {
				t.Fatalf("modify: %v, want %v", err, tc.write)
			}
		})
	}
	wantErr(t, f.svc.Delete(ctx, identity.Admin, uuid.New()), domain.ErrNotFound, "Template not found")
	if err := f.svc.Delete(ctx, identity.Generator(owner), own.ID); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Get(ctx, identity.Generator(owner), own.ID)
	wantErr(t, err, domain.ErrNotFound, "")
}

func TestUpdateAndLabels(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	desc := "first"
	tp, _ := f.svc.Create(ctx, identity.Admin, templates.CreateInput{Name: "t", Description: &desc, TemplateContent: "a", ParametersSchema: "{}"})
	up, err := f.svc.Update(ctx, identity.Admin, tp.ID, templates.UpdateInput{TemplateContent: "b", ParametersSchema: "{}"})
	if err != nil || up.Version != 2 || up.Description == nil || *up.Description != "first" {
		t.Fatalf("update keeps the description: %+v, %v", up, err)
	}
	_, err = f.svc.Update(ctx, identity.Admin, tp.ID, templates.UpdateInput{TemplateContent: "{% bad", ParametersSchema: "{}"})
	wantErr(t, err, domain.ErrInvalid, "")
	if vs, _ := f.svc.Versions(ctx, identity.Admin, tp.ID); len(vs) != 2 {
		t.Fatalf("versions %+v", vs)
	}
	if _, err := f.svc.AddLabel(ctx, identity.Admin, tp.ID, "env"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddLabel(ctx, identity.Admin, tp.ID, "env")
	wantErr(t, err, domain.ErrConflict, "Label already exists")
	if _, err := f.svc.AddAnnotation(ctx, identity.Admin, tp.ID, "k", "v"); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddAnnotation(ctx, identity.Admin, tp.ID, "k", "w")
	wantErr(t, err, domain.ErrConflict, "Annotation key already exists")
	wantErr(t, f.svc.RemoveLabel(ctx, identity.Admin, tp.ID, "nope"), domain.ErrNotFound, "")
}

func TestInstantiate(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	owner, other := uuid.New(), uuid.New()
	f.sm.AddGenerator(owner)
	st, err := f.stacks.Create(ctx, identity.Generator(owner), stacks.CreateInput{Name: "s"})
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := f.svc.Create(ctx, identity.Admin, in("cm", "name: {{ name }}\n"))
	if _, err := f.svc.Update(ctx, identity.Admin, tp.ID, templates.UpdateInput{TemplateContent: "v2: {{ name }}\n", ParametersSchema: "{}"}); err != nil {
		t.Fatal(err)
	}
	theirs, _ := f.svc.Create(ctx, identity.Generator(other), in("theirs", "a: 1\n"))
	labelled, _ := f.svc.Create(ctx, identity.Admin, in("labelled", "a: 1\n"))
	if _, err := f.svc.AddLabel(ctx, identity.Admin, labelled.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	empty, _ := f.svc.Create(ctx, identity.Admin, in("empty", "{{ name }}"))
	v1, big := 1, 1<<40
	p := identity.Generator(owner)
	params := json.RawMessage(`{"name":"x"}`)

	cases := []struct {
		name    string
		stackID uuid.UUID
		in      templates.InstantiateInput
		kind    error
		msg     string
	}{
		{"unknown stack", uuid.New(), templates.InstantiateInput{TemplateID: tp.ID}, domain.ErrNotFound, "Stack not found"},
		{"no template id", st.ID, templates.InstantiateInput{}, domain.ErrInvalid, "template_id is required"},
		{"another generator's template is absent", st.ID, templates.InstantiateInput{TemplateID: theirs.ID}, domain.ErrNotFound, "Template not found"},
		{"version out of range", st.ID, templates.InstantiateInput{TemplateID: tp.ID, Version: &big}, domain.ErrUnprocessable, ""},
		{"labels do not match", st.ID, templates.InstantiateInput{TemplateID: labelled.ID}, domain.ErrUnprocessable, "Template labels do not match stack"},
		{"parameters not an object", st.ID, templates.InstantiateInput{TemplateID: tp.ID, Parameters: json.RawMessage(`[1]`)}, domain.ErrInvalid, "parameters must be a JSON object"},
		{"renders to nothing", st.ID, templates.InstantiateInput{TemplateID: empty.ID}, domain.ErrInvalid, "Template rendering failed: the template rendered to empty YAML"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Instantiate(ctx, p, tc.stackID, tc.in)
			wantErr(t, err, tc.kind, tc.msg)
		})
	}
	if objs, _ := f.stacks.DeploymentObjects(ctx, p, st.ID); len(objs) != 0 {
		t.Fatalf("refused instantiations stored %d objects", len(objs))
	}

	d, err := f.svc.Instantiate(ctx, p, st.ID, templates.InstantiateInput{TemplateID: tp.ID, Version: &v1, Parameters: params})
	if err != nil || d.YAMLContent != "name: x\n" || d.YAMLChecksum != stack.Checksum("name: x\n") {
		t.Fatalf("instantiate version 1: %+v, %v", d, err)
	}
	prov, ok := f.tm.Provenance(d.ID)
	if !ok || prov.TemplateID != tp.ID || prov.TemplateVersion != 1 || string(prov.Parameters) != `{"name":"x"}` {
		t.Fatalf("provenance %+v, %v", prov, ok)
	}
	latest, err := f.svc.Instantiate(ctx, p, st.ID, templates.InstantiateInput{TemplateID: tp.ID, Parameters: params})
	if err != nil || latest.YAMLContent != "v2: x\n" {
		t.Fatalf("instantiate latest: %+v, %v", latest, err)
	}
	// A label on the stack makes the labelled template apply.
	if _, err := f.labels.AddLabel(ctx, p, st.ID, "prod"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Instantiate(ctx, p, st.ID, templates.InstantiateInput{TemplateID: labelled.ID}); err != nil {
		t.Fatalf("matching labels: %v", err)
	}
}
