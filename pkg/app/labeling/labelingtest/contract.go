package labelingtest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/labeling"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Subject is one repository under test and a way to make owners for it.
type Subject struct {
	Repo labeling.Repository
	// NewOwner makes a live owner (agent or stack) and returns its id.
	NewOwner func(t *testing.T) uuid.UUID
	// UniqueKeys: one value per annotation key (agents); otherwise keys
	// may repeat with different values (stacks).
	UniqueKeys bool
}

// RunRepositoryContract checks the rules every labeling.Repository keeps.
func RunRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	t.Run("labels are per owner, sorted, unique", func(t *testing.T) {
		s := newSubject(t)
		a, b := s.NewOwner(t), s.NewOwner(t)
		for _, l := range []string{"zeta", "alpha"} {
			got, err := s.Repo.AddLabel(ctx, a, l)
			if err != nil || got.Label != l || got.OwnerID != a || got.ID == uuid.Nil {
				t.Fatalf("AddLabel(%q) = %+v, %v", l, got, err)
			}
		}
		if _, err := s.Repo.AddLabel(ctx, b, "alpha"); err != nil {
			t.Fatalf("the same label on another owner: %v", err)
		}
		if _, err := s.Repo.AddLabel(ctx, a, "alpha"); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("duplicate label: %v, want a conflict", err)
		}
		got, err := s.Repo.ListLabels(ctx, a)
		if err != nil || len(got) != 2 || got[0].Label != "alpha" || got[1].Label != "zeta" {
			t.Fatalf("ListLabels = %+v, %v", got, err)
		}
		if err := s.Repo.RemoveLabel(ctx, a, "alpha"); err != nil {
			t.Fatal(err)
		}
		if err := s.Repo.RemoveLabel(ctx, a, "alpha"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("removing an absent label: %v, want not found", err)
		}
		if got, _ := s.Repo.ListLabels(ctx, b); len(got) != 1 {
			t.Fatalf("another owner's labels changed: %+v", got)
		}
	})
	t.Run("an owner without labels lists []", func(t *testing.T) {
		s := newSubject(t)
		got, err := s.Repo.ListLabels(ctx, s.NewOwner(t))
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("ListLabels = %#v, %v; want an empty, non-nil list", got, err)
		}
		ann, err := s.Repo.ListAnnotations(ctx, s.NewOwner(t))
		if err != nil || ann == nil || len(ann) != 0 {
			t.Fatalf("ListAnnotations = %#v, %v; want an empty, non-nil list", ann, err)
		}
	})
	t.Run("annotations", func(t *testing.T) {
		s := newSubject(t)
		a := s.NewOwner(t)
		got, err := s.Repo.AddAnnotation(ctx, a, "env", "prod")
		if err != nil || got.Key != "env" || got.Value != "prod" || got.OwnerID != a || got.ID == uuid.Nil {
			t.Fatalf("AddAnnotation = %+v, %v", got, err)
		}
		_, err = s.Repo.AddAnnotation(ctx, a, "env", "prod")
		switch {
		case s.UniqueKeys && !errors.Is(err, domain.ErrConflict):
			t.Fatalf("duplicate pair of a unique key: %v, want a conflict", err)
		case !s.UniqueKeys && err != nil:
			t.Fatalf("the same pair again on a stack: %v (the table keeps both)", err)
		}
		_, err = s.Repo.AddAnnotation(ctx, a, "env", "dev")
		switch {
		case s.UniqueKeys && !errors.Is(err, domain.ErrConflict):
			t.Fatalf("second value of a unique key: %v, want a conflict", err)
		case !s.UniqueKeys && err != nil:
			t.Fatalf("second value of a repeatable key: %v", err)
		}
		if _, err := s.Repo.AddAnnotation(ctx, a, "app", "web"); err != nil {
			t.Fatal(err)
		}
		list, err := s.Repo.ListAnnotations(ctx, a)
		want := []string{"app=web", "env=prod"}
		if !s.UniqueKeys {
			want = []string{"app=web", "env=dev", "env=prod", "env=prod"}
		}
		if err != nil || len(list) != len(want) {
			t.Fatalf("ListAnnotations = %+v, %v; want %v", list, err, want)
		}
		for i, an := range list {
			if an.Key+"="+an.Value != want[i] {
				t.Fatalf("ListAnnotations = %+v; want %v", list, want)
			}
		}
		// Removing a key removes every value it has.
		if err := s.Repo.RemoveAnnotation(ctx, a, "env"); err != nil {
			t.Fatal(err)
		}
		if list, _ := s.Repo.ListAnnotations(ctx, a); len(list) != 1 || list[0].Key != "app" {
			t.Fatalf("after removing env: %+v", list)
		}
		if err := s.Repo.RemoveAnnotation(ctx, a, "env"); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("removing an absent key: %v, want not found", err)
		}
	})
}
