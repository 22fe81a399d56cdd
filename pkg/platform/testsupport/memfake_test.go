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

func TestLookup(t *testing.T) {
	notFound := errors.New("not found")
	m := map[int]string{1: "a"}
	if v, err := Lookup(m, 1, notFound); v != "a" || err != nil {
		t.Fatalf("Lookup(1) = %q, %v", v, err)
	}
	if v, err := Lookup(m, 2, notFound); v != "" || err != notFound {
		t.Fatalf("Lookup(2) = %q, %v; want the zero value and notFound", v, err)
	}
}

func TestClockNeverRepeats(t *testing.T) {
	var c Clock
	prev := c.Now()
	for range 1000 {
		now := c.Now()
		if !now.After(prev) {
			t.Fatalf("%v is not after %v", now, prev)
		}
		if now.Nanosecond()%1000 != 0 {
			t.Fatalf("%v is finer than a microsecond", now)
		}
		prev = now
	}
}
