package stackstest

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Fixtures makes the rows the contract needs that other repositories own.
type Fixtures interface {
	// Generator returns the id of a new generator.
	Generator(t *testing.T) uuid.UUID
	// TargetedAgent returns a new agent with an explicit target on stackID.
	TargetedAgent(t *testing.T, stackID uuid.UUID) uuid.UUID
}

// Subject is one implementation of the stack ports under test, all over
// the same data.
type Subject struct {
	Tx interface {
		InTx(ctx context.Context, fn func(ctx context.Context) error) error
	}
	Stacks   stacks.StackRepository
	Objects  stacks.DeploymentObjectRepository
	Fixtures Fixtures
}

func kindOf(t *testing.T, err error, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func mustCreate(t *testing.T, r stacks.StackRepository, s stack.Stack) stack.Stack {
	t.Helper()
	if err := r.CreateStack(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// RunStackRepositoryContract checks the rules every StackRepository and
// DeploymentObjectRepository keeps; newSubject returns a fresh, empty one.
func RunStackRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()

	t.Run("create fills id and timestamps, get returns it", func(t *testing.T) {
		sub := newSubject(t)
		desc := "d"
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "a", Description: &desc})
		if s.ID == uuid.Nil || s.CreatedAt.IsZero() || s.UpdatedAt.IsZero() || s.DeletedAt != nil {
			t.Fatalf("created %+v", s)
		}
		got, err := sub.Stacks.GetStack(ctx, s.ID)
		if err != nil || got.Name != "a" || got.Description == nil || *got.Description != "d" || got.GeneratorID != nil {
			t.Fatalf("get %+v, %v", got, err)
		}
	})

	t.Run("live names are unique, a deleted stack frees its name", func(t *testing.T) {
		sub := newSubject(t)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "dup"})
		kindOf(t, sub.Stacks.CreateStack(ctx, &stack.Stack{Name: "dup"}), domain.ErrConflict)
		if _, err := sub.Stacks.DeleteStack(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, sub.Stacks, stack.Stack{Name: "dup"})
	})

	t.Run("a stack of an unknown generator is refused", func(t *testing.T) {
		sub := newSubject(t)
		g := uuid.New()
		kindOf(t, sub.Stacks.CreateStack(ctx, &stack.Stack{Name: "x", GeneratorID: &g}), domain.ErrUnprocessable)
	})

	t.Run("list: live only, filtered by generator, oldest first", func(t *testing.T) {
		sub := newSubject(t)
		g1, g2 := sub.Fixtures.Generator(t), sub.Fixtures.Generator(t)
		a := mustCreate(t, sub.Stacks, stack.Stack{Name: "a", GeneratorID: &g1})
		b := mustCreate(t, sub.Stacks, stack.Stack{Name: "b", GeneratorID: &g2})
		c := mustCreate(t, sub.Stacks, stack.Stack{Name: "c", GeneratorID: &g1})
		sys := mustCreate(t, sub.Stacks, stack.Stack{Name: "sys"})
		if _, err := sub.Stacks.DeleteStack(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		all, err := sub.Stacks.ListStacks(ctx, nil)
		if err != nil || len(all) != 3 || all[0].ID != a.ID || all[1].ID != b.ID || all[2].ID != sys.ID {
			t.Fatalf("all %+v, %v", all, err)
		}
		own, err := sub.Stacks.ListStacks(ctx, &g1)
		if err != nil || len(own) != 1 || own[0].ID != a.ID {
			t.Fatalf("g1's %+v, %v", own, err)
		}
		none, err := sub.Stacks.ListStacks(ctx, new(uuid.UUID))
		if err != nil || none == nil || len(none) != 0 {
			t.Fatalf("unknown generator's %#v, %v", none, err)
		}
	})

	t.Run("get: unknown and deleted are not found", func(t *testing.T) {
		sub := newSubject(t)
		_, err := sub.Stacks.GetStack(ctx, uuid.New())
		kindOf(t, err, domain.ErrNotFound)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "gone"})
		d, err := sub.Stacks.DeleteStack(ctx, s.ID)
		if err != nil || d.DeletedAt == nil || d.ID != s.ID {
			t.Fatalf("delete %+v, %v", d, err)
		}
		_, err = sub.Stacks.GetStack(ctx, s.ID)
		kindOf(t, err, domain.ErrNotFound)
		_, err = sub.Stacks.DeleteStack(ctx, s.ID)
		kindOf(t, err, domain.ErrNotFound)
	})

	t.Run("update applies fn, keeps names unique, fn's error changes nothing", func(t *testing.T) {
		sub := newSubject(t)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "old"})
		mustCreate(t, sub.Stacks, stack.Stack{Name: "taken"})
		up, err := sub.Stacks.UpdateStack(ctx, s.ID, func(st *stack.Stack) error { st.Name = "new"; return nil })
		if err != nil || up.Name != "new" || up.ID != s.ID {
			t.Fatalf("update %+v, %v", up, err)
		}
		_, err = sub.Stacks.UpdateStack(ctx, s.ID, func(st *stack.Stack) error { st.Name = "taken"; return nil })
		kindOf(t, err, domain.ErrConflict)
		boom := domain.Invalid("no")
		_, err = sub.Stacks.UpdateStack(ctx, s.ID, func(st *stack.Stack) error { st.Name = "other"; return boom })
		kindOf(t, err, domain.ErrInvalid)
		got, _ := sub.Stacks.GetStack(ctx, s.ID)
		if got.Name != "new" {
			t.Fatalf("name %q after failed updates, want new", got.Name)
		}
		_, err = sub.Stacks.UpdateStack(ctx, uuid.New(), func(*stack.Stack) error { return nil })
		kindOf(t, err, domain.ErrNotFound)
	})

	t.Run("a failed transaction leaves nothing behind", func(t *testing.T) {
		sub := newSubject(t)
		boom := errors.New("boom")
		err := sub.Tx.InTx(ctx, func(ctx context.Context) error {
			if err := sub.Stacks.CreateStack(ctx, &stack.Stack{Name: "rolled-back"}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx: %v", err)
		}
		all, _ := sub.Stacks.ListStacks(ctx, nil)
		if len(all) != 0 {
			t.Fatalf("after rollback %+v", all)
		}
	})

	t.Run("association follows the agent's target", func(t *testing.T) {
		sub := newSubject(t)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "assoc"})
		other := mustCreate(t, sub.Stacks, stack.Stack{Name: "other"})
		agentID := sub.Fixtures.TargetedAgent(t, s.ID)
		if ok, err := sub.Stacks.AgentAssociated(ctx, agentID, s.ID); err != nil || !ok {
			t.Fatalf("targeted: %v, %v", ok, err)
		}
		if ok, err := sub.Stacks.AgentAssociated(ctx, agentID, other.ID); err != nil || ok {
			t.Fatalf("not targeted: %v, %v", ok, err)
		}
	})

	t.Run("objects: sequence ids grow, listed newest first", func(t *testing.T) {
		sub := newSubject(t)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "objs"})
		first := stack.DeploymentObject{StackID: s.ID, YAMLContent: "a: 1\n", YAMLChecksum: stack.Checksum("a: 1\n")}
		second := stack.DeploymentObject{StackID: s.ID, YAMLContent: "a: 2\n", YAMLChecksum: stack.Checksum("a: 2\n")}
		for _, d := range []*stack.DeploymentObject{&first, &second} {
			if err := sub.Objects.CreateDeploymentObject(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		if first.ID == uuid.Nil || first.CreatedAt.IsZero() || second.SequenceID <= first.SequenceID {
			t.Fatalf("created %+v then %+v", first, second)
		}
		list, err := sub.Objects.ListDeploymentObjects(ctx, s.ID)
		if err != nil || len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
			t.Fatalf("list %+v, %v", list, err)
		}
		got, err := sub.Objects.GetDeploymentObject(ctx, first.ID)
		if err != nil || got.YAMLContent != "a: 1\n" || got.YAMLChecksum != first.YAMLChecksum || got.StackID != s.ID {
			t.Fatalf("get %+v, %v", got, err)
		}
		_, err = sub.Objects.GetDeploymentObject(ctx, uuid.New())
		kindOf(t, err, domain.ErrNotFound)
	})

	t.Run("objects need a live stack", func(t *testing.T) {
		sub := newSubject(t)
		kindOf(t, sub.Objects.CreateDeploymentObject(ctx, &stack.DeploymentObject{StackID: uuid.New(), YAMLContent: "a: 1\n"}), domain.ErrNotFound)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "deleted"})
		if _, err := sub.Stacks.DeleteStack(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		kindOf(t, sub.Objects.CreateDeploymentObject(ctx, &stack.DeploymentObject{StackID: s.ID, YAMLContent: "a: 1\n"}), domain.ErrNotFound)
	})

	t.Run("deleting a stack retires its objects behind a deletion marker", func(t *testing.T) {
		sub := newSubject(t)
		s := mustCreate(t, sub.Stacks, stack.Stack{Name: "marked"})
		d := stack.DeploymentObject{StackID: s.ID, YAMLContent: "a: 1\n", YAMLChecksum: stack.Checksum("a: 1\n")}
		if err := sub.Objects.CreateDeploymentObject(ctx, &d); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.Stacks.DeleteStack(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		_, err := sub.Objects.GetDeploymentObject(ctx, d.ID)
		kindOf(t, err, domain.ErrNotFound)
		list, err := sub.Objects.ListDeploymentObjects(ctx, s.ID)
		if err != nil || len(list) != 1 || !list[0].IsDeletionMarker || list[0].SequenceID <= d.SequenceID {
			t.Fatalf("after delete %+v, %v", list, err)
		}
	})
}
