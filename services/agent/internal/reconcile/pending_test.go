package reconcile

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Pending is what the drift hook and the restart seeding leave out: in the
// last incremental target state and not acknowledged yet.
func TestManagerPending(t *testing.T) {
	t.Parallel()
	m := NewManager(nil, nil, ManagerOptions{})
	a := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New()}
	b := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New()}
	if m.Pending(a.ID) {
		t.Fatal("pending before any target state")
	}
	m.Submit([]stack.DeploymentObject{a, b})
	if !m.Pending(a.ID) || !m.Pending(b.ID) {
		t.Fatal("submitted objects are pending")
	}
	m.MarkDone(a.ID)
	if m.Pending(a.ID) || !m.Pending(b.ID) {
		t.Fatal("an acknowledged object is not pending")
	}
	m.Submit([]stack.DeploymentObject{a})
	if m.Pending(b.ID) {
		t.Fatal("an object the broker no longer sends is not pending")
	}
}
