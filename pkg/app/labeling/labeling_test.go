package labeling_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/labeling"
	"github.com/brokkr-go/brokkr/pkg/app/labeling/labelingtest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// owner admits the admin to everything and agents to reading; one known id.
type owner struct {
	id      uuid.UUID
	changes []labeling.Change
}

func (o *owner) check(p identity.Principal, id uuid.UUID, write bool) error {
	switch {
	case !p.IsAdmin() && (write || p.Role != identity.RoleAgent):
		return domain.Forbidden("nope")
	case id != o.id:
		return domain.NotFound("Owner not found")
	}
	return nil
}

func (o *owner) CheckRead(_ context.Context, p identity.Principal, id uuid.UUID) error {
	return o.check(p, id, false)
}

func (o *owner) CheckWrite(_ context.Context, p identity.Principal, id uuid.UUID) error {
	return o.check(p, id, true)
}

func (o *owner) Changed(_ context.Context, _ uuid.UUID, c labeling.Change) {
	o.changes = append(o.changes, c)
}

type fixture struct {
	svc   *labeling.Service
	owner *owner
	repo  *labelingtest.Memory
	j     *journaltest.Journal
}

func newFixture(conflict string) fixture {
	o := &owner{id: uuid.New()}
	j := &journaltest.Journal{}
	repo := labelingtest.NewMemory(true)
	return fixture{svc: labeling.NewService(labeling.Config{ResourceType: "thing", AnnotationConflict: conflict}, j, j, repo, o),
		owner: o, repo: repo, j: j}
}

func TestAddLabel(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		p       identity.Principal
		other   bool // on an unknown owner
		label   string
		seeded  bool // the label exists already
		wantErr error
		wantMsg string
	}{
		{name: "admin adds", p: identity.Admin, label: "prod"},
		{name: "an agent may not", p: identity.Agent(uuid.New()), label: "prod", wantErr: domain.ErrForbidden},
		{name: "role before validation", p: identity.Agent(uuid.New()), label: "", wantErr: domain.ErrForbidden},
		{name: "unknown owner before validation", p: identity.Admin, other: true, label: "", wantErr: domain.ErrNotFound},
		{name: "empty", p: identity.Admin, label: " ", wantErr: domain.ErrInvalid, wantMsg: "Label cannot be empty"},
		{name: "whitespace", p: identity.Admin, label: "a b", wantErr: domain.ErrInvalid},
		{name: "too long", p: identity.Admin, label: string(make([]byte, 65)), wantErr: domain.ErrInvalid},
		{name: "duplicate", p: identity.Admin, label: "prod", seeded: true, wantErr: domain.ErrConflict, wantMsg: "Label already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture("")
			id := f.owner.id
			if tc.other {
				id = uuid.New()
			}
			if tc.seeded {
				if _, err := f.repo.AddLabel(ctx, id, tc.label); err != nil {
					t.Fatal(err)
				}
			}
			got, err := f.svc.AddLabel(ctx, tc.p, id, tc.label)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.wantMsg != "" && err.Error() != tc.wantMsg {
					t.Fatalf("message %q, want %q", err.Error(), tc.wantMsg)
				}
				if len(f.j.Audits()) != 0 || len(f.owner.changes) != 0 {
					t.Fatalf("a refused change was audited or announced: %v %v", f.j.Actions(), f.owner.changes)
				}
				return
			}
			if err != nil || got.Label != tc.label || got.OwnerID != id {
				t.Fatalf("AddLabel = %+v, %v", got, err)
			}
			entries := f.j.Audits()
			if len(entries) != 1 || entries[0].Action != audit.ActionLabelAdded || entries[0].ResourceType != "thing" ||
				*entries[0].ResourceID != id {
				t.Fatalf("audit = %+v", entries)
			}
			if !slices.Equal(f.owner.changes, []labeling.Change{{Label: tc.label}}) {
				t.Fatalf("changes = %+v", f.owner.changes)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	ctx := context.Background()
	t.Run("conflict message per owner kind", func(t *testing.T) {
		for _, msg := range []string{"", "Annotation key already exists"} {
			f := newFixture(msg)
			if _, err := f.svc.AddAnnotation(ctx, identity.Admin, f.owner.id, "env", "prod"); err != nil {
				t.Fatal(err)
			}
			_, err := f.svc.AddAnnotation(ctx, identity.Admin, f.owner.id, "env", "dev")
			want := msg
			if want == "" {
				want = "already exists"
			}
			if !errors.Is(err, domain.ErrConflict) || err.Error() != want {
				t.Fatalf("err = %v, want conflict %q", err, want)
			}
		}
	})
	t.Run("validation names the part", func(t *testing.T) {
		f := newFixture("")
		_, err := f.svc.AddAnnotation(ctx, identity.Admin, f.owner.id, "env", "")
		if !errors.Is(err, domain.ErrInvalid) || err.Error() != "Annotation value cannot be empty" {
			t.Fatalf("err = %v", err)
		}
		_, err = f.svc.AddAnnotation(ctx, identity.Admin, f.owner.id, "", "x")
		if !errors.Is(err, domain.ErrInvalid) || err.Error() != "Annotation key cannot be empty" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("add, list, remove announce the key", func(t *testing.T) {
		f := newFixture("")
		if _, err := f.svc.AddAnnotation(ctx, identity.Admin, f.owner.id, "env", "prod"); err != nil {
			t.Fatal(err)
		}
		list, err := f.svc.Annotations(ctx, identity.Agent(uuid.New()), f.owner.id)
		if err != nil || len(list) != 1 || list[0].Value != "prod" {
			t.Fatalf("Annotations = %+v, %v", list, err)
		}
		if err := f.svc.RemoveAnnotation(ctx, identity.Admin, f.owner.id, "env"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RemoveAnnotation(ctx, identity.Admin, f.owner.id, "env"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("second remove: %v", err)
		}
		if want := []string{audit.ActionAnnotationAdded, audit.ActionAnnotationRemoved}; !slices.Equal(f.j.Actions(), want) {
			t.Fatalf("audit = %v, want %v", f.j.Actions(), want)
		}
		want := []labeling.Change{{AnnotationKey: "env"}, {AnnotationKey: "env"}}
		if !slices.Equal(f.owner.changes, want) {
			t.Fatalf("changes = %+v", f.owner.changes)
		}
	})
}

func TestReadAndRemoveLabels(t *testing.T) {
	ctx := context.Background()
	f := newFixture("")
	if _, err := f.svc.Labels(ctx, identity.Generator(uuid.New()), f.owner.id); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("generator read: %v", err)
	}
	if _, err := f.svc.Labels(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown owner: %v", err)
	}
	if err := f.svc.RemoveLabel(ctx, identity.Admin, f.owner.id, "x"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("absent label: %v", err)
	}
	if _, err := f.svc.AddLabel(ctx, identity.Admin, f.owner.id, "x"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RemoveLabel(ctx, identity.Agent(uuid.New()), f.owner.id, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent remove: %v", err)
	}
	if err := f.svc.RemoveLabel(ctx, identity.Admin, f.owner.id, "x"); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Labels(ctx, identity.Admin, f.owner.id)
	if err != nil || len(got) != 0 {
		t.Fatalf("Labels = %+v, %v", got, err)
	}
	if len(f.owner.changes) != 2 {
		t.Fatalf("changes = %+v", f.owner.changes)
	}
}

func TestAuditFailureRollsBack(t *testing.T) {
	f := newFixture("")
	f.j.AuditErr = errors.New("database gone")
	if _, err := f.svc.AddLabel(context.Background(), identity.Admin, f.owner.id, "x"); err == nil {
		t.Fatal("want the audit error")
	}
	if len(f.owner.changes) != 0 {
		t.Fatalf("a failed change was announced: %+v", f.owner.changes)
	}
}
