package templatestest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Fixtures makes the rows the contract needs that other repositories own.
type Fixtures interface {
	// Generator returns the id of a new generator.
	Generator(t *testing.T) uuid.UUID
	// DeploymentObject returns the id of a new deployment object.
	DeploymentObject(t *testing.T) uuid.UUID
}

// Subject is one implementation of the template ports, over the same data.
type Subject struct {
	Templates  templates.TemplateRepository
	Labels     templates.TemplateLabelRepository
	Provenance templates.ProvenanceRecorder
	Fixtures   Fixtures
}

func is(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
}

func newTemplate(t *testing.T, sub Subject, owner *uuid.UUID, name, content string) template.Template {
	t.Helper()
	tp := template.Template{GeneratorID: owner, Name: name, TemplateContent: content, ParametersSchema: "{}",
		Checksum: template.Checksum(content)}
	if err := sub.Templates.CreateTemplate(context.Background(), &tp); err != nil {
		t.Fatal(err)
	}
	return tp
}

// RunTemplateRepositoryContract checks the rules every implementation of
// the template ports keeps; newSubject returns a fresh, empty one.
func RunTemplateRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()

	t.Run("create is version 1; get and find by owner and name return it", func(t *testing.T) {
		sub := newSubject(t)
		g := sub.Fixtures.Generator(t)
		sys := newTemplate(t, sub, nil, "web", "a")
		own := newTemplate(t, sub, &g, "web", "b") // same name, another owner
		if sys.ID == uuid.Nil || sys.Version != 1 || sys.CreatedAt.IsZero() || sys.TemplateContent != "a" || !sys.IsSystem() {
			t.Fatalf("created %+v", sys)
		}
		got, err := sub.Templates.GetTemplate(ctx, own.ID)
		if err != nil || got.Name != "web" || !got.OwnedBy(g) || got.ParametersSchema != "{}" || got.Checksum != template.Checksum("b") {
			t.Fatalf("get %+v, %v", got, err)
		}
		found, err := sub.Templates.FindTemplateByName(ctx, nil, "web")
		if err != nil || found.ID != sys.ID {
			t.Fatalf("find system %+v, %v", found, err)
		}
		found, err = sub.Templates.FindTemplateByName(ctx, &g, "web")
		if err != nil || found.ID != own.ID {
			t.Fatalf("find own %+v, %v", found, err)
		}
		_, err = sub.Templates.FindTemplateByName(ctx, nil, "nope")
		is(t, err, domain.ErrNotFound)
		_, err = sub.Templates.GetTemplate(ctx, uuid.New())
		is(t, err, domain.ErrNotFound)
	})

	t.Run("one live template per owner and name", func(t *testing.T) {
		sub := newSubject(t)
		first := newTemplate(t, sub, nil, "dup", "a")
		dup := template.Template{Name: "dup", TemplateContent: "b", ParametersSchema: "{}"}
		is(t, sub.Templates.CreateTemplate(ctx, &dup), domain.ErrConflict)
		if err := sub.Templates.DeleteTemplate(ctx, first.ID); err != nil {
			t.Fatal(err)
		}
		newTemplate(t, sub, nil, "dup", "c")
		is(t, sub.Templates.DeleteTemplate(ctx, first.ID), domain.ErrNotFound)
		_, err := sub.Templates.GetTemplate(ctx, first.ID)
		is(t, err, domain.ErrNotFound)
	})

	t.Run("versions: latest+1 under the same id, older ones stay readable", func(t *testing.T) {
		sub := newSubject(t)
		tp := newTemplate(t, sub, nil, "v", "one")
		desc := "second"
		v2, err := sub.Templates.AddTemplateVersion(ctx, tp.ID, template.Version{Description: &desc, TemplateContent: "two",
			ParametersSchema: "{}", Checksum: template.Checksum("two")})
		if err != nil || v2.ID != tp.ID || v2.Version != 2 || v2.TemplateContent != "two" || v2.Description == nil {
			t.Fatalf("version 2 %+v, %v", v2, err)
		}
		latest, _ := sub.Templates.GetTemplate(ctx, tp.ID)
		old, err := sub.Templates.GetTemplateVersion(ctx, tp.ID, 1)
		if latest.Version != 2 || err != nil || old.Version != 1 || old.TemplateContent != "one" {
			t.Fatalf("latest %+v, old %+v, %v", latest, old, err)
		}
		_, err = sub.Templates.GetTemplateVersion(ctx, tp.ID, 3)
		is(t, err, domain.ErrNotFound)
		vs, err := sub.Templates.ListTemplateVersions(ctx, tp.ID)
		if err != nil || len(vs) != 2 || vs[0].Version != 1 || vs[1].Version != 2 || vs[1].TemplateID != tp.ID {
			t.Fatalf("versions %+v, %v", vs, err)
		}
		_, err = sub.Templates.AddTemplateVersion(ctx, uuid.New(), template.Version{TemplateContent: "x", ParametersSchema: "{}"})
		is(t, err, domain.ErrNotFound)
	})

	t.Run("list: all, or system plus the generator's, live only", func(t *testing.T) {
		sub := newSubject(t)
		g1, g2 := sub.Fixtures.Generator(t), sub.Fixtures.Generator(t)
		sys := newTemplate(t, sub, nil, "sys", "a")
		mine := newTemplate(t, sub, &g1, "mine", "a")
		theirs := newTemplate(t, sub, &g2, "theirs", "a")
		gone := newTemplate(t, sub, nil, "gone", "a")
		if err := sub.Templates.DeleteTemplate(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		all, err := sub.Templates.ListTemplates(ctx, true, uuid.Nil)
		if err != nil || len(all) != 3 || all[0].ID != sys.ID || all[1].ID != mine.ID || all[2].ID != theirs.ID {
			t.Fatalf("all %+v, %v", all, err)
		}
		visible, _ := sub.Templates.ListTemplates(ctx, false, g1)
		if len(visible) != 2 || visible[0].ID != sys.ID || visible[1].ID != mine.ID {
			t.Fatalf("g1 sees %+v", visible)
		}
	})

	t.Run("labels and annotations", func(t *testing.T) {
		sub := newSubject(t)
		tp := newTemplate(t, sub, nil, "l", "a")
		for _, l := range []string{"b", "a"} {
			got, err := sub.Labels.AddTemplateLabel(ctx, tp.ID, l)
			if err != nil || got.Label != l || got.TemplateID != tp.ID || got.ID == uuid.Nil {
				t.Fatalf("label %+v, %v", got, err)
			}
		}
		_, err := sub.Labels.AddTemplateLabel(ctx, tp.ID, "a")
		is(t, err, domain.ErrConflict)
		ls, _ := sub.Labels.ListTemplateLabels(ctx, tp.ID)
		if len(ls) != 2 || ls[0].Label != "a" || ls[1].Label != "b" {
			t.Fatalf("labels %+v", ls)
		}
		is(t, sub.Labels.RemoveTemplateLabel(ctx, tp.ID, "zzz"), domain.ErrNotFound)
		if err := sub.Labels.RemoveTemplateLabel(ctx, tp.ID, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Labels.AddTemplateAnnotation(ctx, tp.ID, "k", "v"); err != nil {
			t.Fatal(err)
		}
		_, err = sub.Labels.AddTemplateAnnotation(ctx, tp.ID, "k", "other")
		is(t, err, domain.ErrConflict)
		as, _ := sub.Labels.ListTemplateAnnotations(ctx, tp.ID)
		if len(as) != 1 || as[0].Key != "k" || as[0].Value != "v" {
			t.Fatalf("annotations %+v", as)
		}
		is(t, sub.Labels.RemoveTemplateAnnotation(ctx, tp.ID, "nope"), domain.ErrNotFound)
		if err := sub.Labels.RemoveTemplateAnnotation(ctx, tp.ID, "k"); err != nil {
			t.Fatal(err)
		}
		// Labels belong to the template, not a version.
		if _, err := sub.Templates.AddTemplateVersion(ctx, tp.ID, template.Version{TemplateContent: "b", ParametersSchema: "{}"}); err != nil {
			t.Fatal(err)
		}
		if ls, _ := sub.Labels.ListTemplateLabels(ctx, tp.ID); len(ls) != 1 || ls[0].Label != "b" {
			t.Fatalf("labels after a new version %+v", ls)
		}
	})

	t.Run("one provenance per object", func(t *testing.T) {
		sub := newSubject(t)
		tp := newTemplate(t, sub, nil, "p", "a")
		obj := sub.Fixtures.DeploymentObject(t)
		p := template.Provenance{DeploymentObjectID: obj, TemplateID: tp.ID, TemplateVersion: 1, Parameters: []byte(`{"a":1}`)}
		if err := sub.Provenance.RecordProvenance(ctx, p); err != nil {
			t.Fatal(err)
		}
		is(t, sub.Provenance.RecordProvenance(ctx, p), domain.ErrConflict)
	})
}
