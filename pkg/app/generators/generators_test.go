package generators_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/generators/generatorstest"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

type issuer struct{ n int }

func (i *issuer) Issue(context.Context) (secret.String, string, error) {
	i.n++
	h := "hash-" + string(rune('0'+i.n))
	return secret.String("pak-" + h), h, nil
}

type invalidator struct{ hashes []string }

func (v *invalidator) Invalidate(_ context.Context, hashes ...string) error {
	v.hashes = append(v.hashes, hashes...)
	return nil
}

type notifier struct{ stacks []uuid.UUID }

func (n *notifier) StackChanged(_ context.Context, id uuid.UUID) { n.stacks = append(n.stacks, id) }

type fixture struct {
	svc   *generators.Service
	mem   *generatorstest.Memory
	j     *journaltest.Journal
	inval *invalidator
	notes *notifier
}

func newFixture() fixture {
	mem := generatorstest.NewMemory()
	j := &journaltest.Journal{}
	f := fixture{mem: mem, j: j, inval: &invalidator{}, notes: &notifier{}}
	f.svc = generators.NewService(generators.Repos{Tx: j, Journal: j, Generators: mem, Stacks: mem}, &issuer{}, f.inval, f.notes)
	return f
}

var system = identity.Principal{Role: identity.RoleSystem}

func (f fixture) create(t *testing.T, name string) generator.Generator {
	t.Helper()
	g, _, err := f.svc.Create(context.Background(), identity.Admin, generators.CreateInput{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCreate(t *testing.T) {
	cases := []struct {
		name string
		p    identity.Principal
		in   string
		want error
	}{
		{"admin", identity.Admin, "ci", nil},
		{"system (CLI)", system, "ci", nil},
		{"generator refused", identity.Generator(uuid.New()), "ci", domain.ErrForbidden},
		{"agent refused", identity.Agent(uuid.New()), "ci", domain.ErrForbidden},
		{"role before validation", identity.Agent(uuid.New()), "", domain.ErrForbidden},
		{"empty name", identity.Admin, "  ", domain.ErrInvalid},
		{"name too long", identity.Admin, string(make([]byte, 256)), domain.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			g, pak, err := f.svc.Create(context.Background(), tc.p, generators.CreateInput{Name: tc.in})
			if tc.want != nil {
				if !errors.Is(err, tc.want) || len(f.j.Audits()) != 0 {
					t.Fatalf("err = %v, want %v; audit %v", err, tc.want, f.j.Actions())
				}
				return
			}
			if err != nil || !g.IsActive || g.PakHash == nil || pak.Reveal() == "" {
				t.Fatalf("Create = %+v, %v", g, err)
			}
			if !slices.Equal(f.j.Actions(), []string{audit.ActionGeneratorCreated}) {
				t.Fatalf("audit %v", f.j.Actions())
			}
		})
	}
	t.Run("duplicate name", func(t *testing.T) {
		f := newFixture()
		f.create(t, "ci")
		_, _, err := f.svc.Create(context.Background(), identity.Admin, generators.CreateInput{Name: "ci"})
		if !errors.Is(err, domain.ErrConflict) || err.Error() != "A generator with this name already exists" {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestAccess(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	g := f.create(t, "ci")
	cases := []struct {
		name string
		p    identity.Principal
		want error
	}{
		{"admin", identity.Admin, nil},
		{"system", system, nil},
		{"itself", identity.Generator(g.ID), nil},
		{"another generator", identity.Generator(uuid.New()), domain.ErrForbidden},
		{"an agent with the same id", identity.Agent(g.ID), domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Get(ctx, tc.p, g.ID)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Get: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := f.svc.List(ctx, identity.Generator(g.ID)); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("generator List: %v", err)
	}
	if _, err := f.svc.Get(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func TestUpdateDeactivateInvalidates(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	g := f.create(t, "ci")
	off := false
	desc := "d"
	out, err := f.svc.Update(ctx, identity.Generator(g.ID), g.ID, generators.UpdateInput{IsActive: &off, Description: &desc})
	if err != nil || out.IsActive || *out.Description != "d" {
		t.Fatalf("Update = %+v, %v", out, err)
	}
	if !slices.Equal(f.inval.hashes, []string{*g.PakHash}) {
		t.Fatalf("a deactivated generator's PAK stays cached: %v", f.inval.hashes)
	}
	out, err = f.svc.Update(ctx, identity.Admin, g.ID, generators.UpdateInput{ClearDescription: true})
	if err != nil || out.Description != nil {
		t.Fatalf("clear description: %+v, %v", out, err)
	}
	empty := ""
	if _, err := f.svc.Update(ctx, identity.Admin, g.ID, generators.UpdateInput{Name: &empty}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("empty name: %v", err)
	}
}

func TestDeleteAnnouncesStacks(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	g, other := f.create(t, "ci"), f.create(t, "other")
	s1, s2 := f.mem.AddStack(g.ID), f.mem.AddStack(g.ID)
	f.mem.AddStack(other.ID)
	if err := f.svc.Delete(ctx, identity.Generator(other.ID), g.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another generator deletes: %v", err)
	}
	if err := f.svc.Delete(ctx, identity.Generator(g.ID), g.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.notes.stacks, []uuid.UUID{s1, s2}) {
		t.Fatalf("announced %v, want exactly the generator's stacks", f.notes.stacks)
	}
	if !slices.Equal(f.inval.hashes, []string{*g.PakHash}) {
		t.Fatalf("invalidated %v", f.inval.hashes)
	}
	if err := f.svc.Delete(ctx, identity.Admin, g.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	g := f.create(t, "ci")
	out, pak, err := f.svc.RotatePAK(ctx, identity.Generator(g.ID), g.ID)
	if err != nil || pak.Reveal() == "" || *out.PakHash == *g.PakHash {
		t.Fatalf("RotatePAK = %+v, %v", out, err)
	}
	if !slices.Equal(f.inval.hashes, []string{*g.PakHash}) || f.j.Actions()[1] != audit.ActionPakRotated {
		t.Fatalf("invalidated %v, audit %v", f.inval.hashes, f.j.Actions())
	}
	if _, _, err := f.svc.RotatePAK(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
