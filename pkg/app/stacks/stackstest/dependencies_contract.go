package stackstest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// DependencySubject is one implementation of the dependency port, over
// the same data as its stack repository.
type DependencySubject struct {
	Subject
	Dependencies stacks.DependencyRepository
}

func sortedIDs(ids ...uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out
}

// RunDependencyRepositoryContract checks the rules every
// DependencyRepository keeps: replace semantics, reads through the stack
// repository (DependsOn, sorted, nil when none), dependents of live
// stacks only, the self edge refused, and rollback with the transaction.
func RunDependencyRepositoryContract(t *testing.T, newSubject func(t *testing.T) DependencySubject) {
	ctx := context.Background()

	t.Run("set replaces, reads return depends_on sorted", func(t *testing.T) {
		sub := newSubject(t)
		a := mustCreate(t, sub.Stacks, stack.Stack{Name: "a"})
		b := mustCreate(t, sub.Stacks, stack.Stack{Name: "b"})
		c := mustCreate(t, sub.Stacks, stack.Stack{Name: "c"})
		if a.DependsOn != nil {
			t.Fatalf("new stack depends on %v", a.DependsOn)
		}
		if err := sub.Dependencies.SetDependencies(ctx, a.ID, []uuid.UUID{c.ID, b.ID}); err != nil {
			t.Fatal(err)
		}
		got, err := sub.Stacks.GetStack(ctx, a.ID)
		if want := sortedIDs(b.ID, c.ID); err != nil || !slices.Equal(got.DependsOn, want) {
			t.Fatalf("get: depends_on %v, %v; want %v", got.DependsOn, err, want)
		}
		all, err := sub.Stacks.ListStacks(ctx, nil)
		if err != nil || len(all) != 3 || len(all[0].DependsOn) != 2 || all[1].DependsOn != nil {
			t.Fatalf("list %+v, %v", all, err)
		}
		deps, err := sub.Dependencies.Dependencies(ctx, []uuid.UUID{a.ID, b.ID})
		if err != nil || len(deps) != 1 || !slices.Equal(deps[a.ID], sortedIDs(b.ID, c.ID)) {
			t.Fatalf("dependencies %v, %v", deps, err)
		}
		if err := sub.Dependencies.SetDependencies(ctx, a.ID, []uuid.UUID{c.ID}); err != nil {
			t.Fatal(err)
		}
		up, err := sub.Stacks.UpdateStack(ctx, a.ID, func(st *stack.Stack) error { st.Name = "a2"; return nil })
		if err != nil || !slices.Equal(up.DependsOn, []uuid.UUID{c.ID}) {
			t.Fatalf("update returns depends_on %v, %v", up.DependsOn, err)
		}
		if err := sub.Dependencies.SetDependencies(ctx, a.ID, nil); err != nil {
			t.Fatal(err)
		}
		got, _ = sub.Stacks.GetStack(ctx, a.ID)
		if got.DependsOn != nil {
			t.Fatalf("after clearing: %v", got.DependsOn)
		}
	})

	t.Run("dependents are the live stacks depending on one", func(t *testing.T) {
		sub := newSubject(t)
		base := mustCreate(t, sub.Stacks, stack.Stack{Name: "base"})
		x := mustCreate(t, sub.Stacks, stack.Stack{Name: "x"})
		y := mustCreate(t, sub.Stacks, stack.Stack{Name: "y"})
		for _, s := range []stack.Stack{x, y} {
			if err := sub.Dependencies.SetDependencies(ctx, s.ID, []uuid.UUID{base.ID}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := sub.Dependencies.Dependents(ctx, base.ID)
		if err != nil || !slices.Equal(got, sortedIDs(x.ID, y.ID)) {
			t.Fatalf("dependents %v, %v", got, err)
		}
		if _, err := sub.Stacks.DeleteStack(ctx, y.ID); err != nil {
			t.Fatal(err)
		}
		got, err = sub.Dependencies.Dependents(ctx, base.ID)
		if err != nil || !slices.Equal(got, []uuid.UUID{x.ID}) {
			t.Fatalf("dependents after deleting y: %v, %v", got, err)
		}
		none, err := sub.Dependencies.Dependents(ctx, x.ID)
		if err != nil || none == nil || len(none) != 0 {
			t.Fatalf("dependents of a leaf %#v, %v", none, err)
		}
	})

	t.Run("a self edge and an unknown stack are refused", func(t *testing.T) {
		sub := newSubject(t)
		a := mustCreate(t, sub.Stacks, stack.Stack{Name: "a"})
		kindOf(t, sub.Dependencies.SetDependencies(ctx, a.ID, []uuid.UUID{a.ID}), domain.ErrInvalid)
		kindOf(t, sub.Dependencies.SetDependencies(ctx, a.ID, []uuid.UUID{uuid.New()}), domain.ErrUnprocessable)
	})

	t.Run("a failed transaction keeps the old dependencies", func(t *testing.T) {
		sub := newSubject(t)
		a := mustCreate(t, sub.Stacks, stack.Stack{Name: "a"})
		b := mustCreate(t, sub.Stacks, stack.Stack{Name: "b"})
		boom := errors.New("boom")
		err := sub.Tx.InTx(ctx, func(ctx context.Context) error {
			if err := sub.Dependencies.LockDependencies(ctx); err != nil {
				return err
			}
			if err := sub.Dependencies.SetDependencies(ctx, a.ID, []uuid.UUID{b.ID}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx: %v", err)
		}
		got, _ := sub.Stacks.GetStack(ctx, a.ID)
		if got.DependsOn != nil {
			t.Fatalf("after rollback: %v", got.DependsOn)
		}
	})
}
