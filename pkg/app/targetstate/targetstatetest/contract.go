package targetstatetest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Fixtures builds the state a snapshot is read from (rows other
// repositories own).
type Fixtures interface {
	Agent(t *testing.T, active bool, labels []string, annotations map[string]string) uuid.UUID
	Stack(t *testing.T, labels []string, annotations map[string]string) uuid.UUID
	Target(t *testing.T, agentID, stackID uuid.UUID)
	Object(t *testing.T, stackID uuid.UUID, yaml string) stack.DeploymentObject
	// DeleteStack soft-deletes the stack and returns its deletion marker.
	DeleteStack(t *testing.T, stackID uuid.UUID) stack.DeploymentObject
	// Ack records a SUCCESS event of the agent on the object.
	Ack(t *testing.T, agentID, objectID uuid.UUID)
}

func objectIDs(objs []targetstate.Object) []uuid.UUID {
	out := make([]uuid.UUID, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}

func sameSet(a, b []uuid.UUID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

// RunSnapshotReaderContract checks what every SnapshotReader returns;
// newSubject returns a fresh, empty reader and the fixtures that fill it.
func RunSnapshotReaderContract(t *testing.T, newSubject func(t *testing.T) (targetstate.SnapshotReader, Fixtures)) {
	ctx := context.Background()

	t.Run("unknown agent is not found", func(t *testing.T) {
		r, _ := newSubject(t)
		_, err := r.AgentState(ctx, uuid.New())
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("error %v", err)
		}
	})

	t.Run("association by target, label and annotation; latest object per stack, ascending", func(t *testing.T) {
		r, f := newSubject(t)
		a := f.Agent(t, true, []string{"edge"}, map[string]string{"zone": "a"})
		targeted := f.Stack(t, nil, nil)
		labelled := f.Stack(t, []string{"edge"}, nil)
		annotated := f.Stack(t, nil, map[string]string{"zone": "a"})
		unrelated := f.Stack(t, []string{"core"}, map[string]string{"zone": "b"})
		f.Target(t, a, targeted)
		old := f.Object(t, targeted, "v: 1\n")
		l := f.Object(t, labelled, "l: 1\n")
		head := f.Object(t, targeted, "v: 2\n")
		f.Object(t, unrelated, "u: 1\n")
		snap, err := r.AgentState(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Status != agent.StatusActive || !slices.Equal(snap.Labels, []string{"edge"}) || !slices.Equal(snap.AnnotationKeys, []string{"zone"}) {
			t.Fatalf("agent facts %+v", snap)
		}
		if !sameSet(snap.Stacks, []uuid.UUID{targeted, labelled, annotated}) {
			t.Fatalf("stacks %v", snap.Stacks)
		}
		if got := objectIDs(snap.Objects); !slices.Equal(got, []uuid.UUID{l.ID, head.ID}) {
			t.Fatalf("objects %v, want [%v %v] (not the older %v)", got, l.ID, head.ID, old.ID)
		}
		o := snap.Objects[1]
		if o.YAMLContent != "v: 2\n" || o.StackID != targeted || o.SequenceID != head.SequenceID || o.Acked {
			t.Fatalf("object %+v", o)
		}
	})

	t.Run("a SUCCESS acknowledges the object", func(t *testing.T) {
		r, f := newSubject(t)
		a := f.Agent(t, true, nil, nil)
		s := f.Stack(t, nil, nil)
		f.Target(t, a, s)
		d := f.Object(t, s, "a: 1\n")
		f.Ack(t, a, d.ID)
		snap, err := r.AgentState(ctx, a)
		if err != nil || len(snap.Objects) != 1 || !snap.Objects[0].Acked {
			t.Fatalf("snapshot %+v, %v", snap, err)
		}
	})

	t.Run("a deleted stack leaves the list but sends its deletion marker", func(t *testing.T) {
		r, f := newSubject(t)
		a := f.Agent(t, true, nil, nil)
		s := f.Stack(t, nil, nil)
		f.Target(t, a, s)
		f.Object(t, s, "a: 1\n")
		marker := f.DeleteStack(t, s)
		snap, err := r.AgentState(ctx, a)
		if err != nil || len(snap.Stacks) != 0 || len(snap.Objects) != 1 || snap.Objects[0].ID != marker.ID || !snap.Objects[0].IsDeletionMarker {
			t.Fatalf("snapshot %+v, %v", snap, err)
		}
		if _, ok, err := r.StackHead(ctx, s); err != nil || ok {
			t.Fatalf("head of a deleted stack: ok=%v, %v", ok, err)
		}
	})

	t.Run("an inactive agent gets its stacks but no objects", func(t *testing.T) {
		r, f := newSubject(t)
		a := f.Agent(t, false, nil, nil)
		s := f.Stack(t, nil, nil)
		f.Target(t, a, s)
		f.Object(t, s, "a: 1\n")
		snap, err := r.AgentState(ctx, a)
		if err != nil || snap.Status != agent.StatusInactive || len(snap.Stacks) != 1 || snap.Objects == nil || len(snap.Objects) != 0 {
			t.Fatalf("snapshot %+v, %v", snap, err)
		}
	})

	t.Run("stack head", func(t *testing.T) {
		r, f := newSubject(t)
		s := f.Stack(t, nil, nil)
		if _, ok, err := r.StackHead(ctx, s); err != nil || ok {
			t.Fatalf("empty stack: ok=%v, %v", ok, err)
		}
		f.Object(t, s, "a: 1\n")
		d := f.Object(t, s, "a: 2\n")
		got, ok, err := r.StackHead(ctx, s)
		if err != nil || !ok || got.ID != d.ID || got.YAMLContent != "a: 2\n" {
			t.Fatalf("head %+v ok=%v, %v", got, ok, err)
		}
		if _, ok, err := r.StackHead(ctx, uuid.New()); err != nil || ok {
			t.Fatalf("unknown stack: ok=%v, %v", ok, err)
		}
	})
}
