package testsupport

import (
	"context"
	"errors"
	"sync"
	"testing"
)

func TestSnapshotTx(t *testing.T) {
	var mu sync.Mutex
	state := []string{"a"}
	tx := func(ctx context.Context, fn func(context.Context) error) error {
		return SnapshotTx(ctx, &mu, func() func() {
			n := len(state)
			return func() { state = state[:n] }
		}, fn)
	}
	add := func(v string) { mu.Lock(); state = append(state, v); mu.Unlock() }
	boom := errors.New("boom")
	ctx := context.Background()

	if err := tx(ctx, func(ctx context.Context) error { add("b"); return nil }); err != nil {
		t.Fatal(err)
	}
	err := tx(ctx, func(ctx context.Context) error {
		add("c")
		// A nested call joins: its failure is the outer one's to handle.
		_ = tx(ctx, func(context.Context) error { add("d"); return boom })
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if len(state) != 2 || state[1] != "b" {
		t.Fatalf("rolled back to %v, want [a b]", state)
	}
}
