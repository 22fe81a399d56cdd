package aftercommit

import (
	"context"
	"slices"
	"testing"
)

func TestDo(t *testing.T) {
	var got []string
	add := func(s string) func() { return func() { got = append(got, s) } }

	Do(context.Background(), add("plain"))
	if !slices.Equal(got, []string{"plain"}) {
		t.Fatalf("without a queue Do must run at once, got %v", got)
	}

	got = nil
	ctx, q := Defer(context.Background())
	Do(ctx, add("a"))
	Do(ctx, add("b"))
	if len(got) != 0 {
		t.Fatalf("queued effects ran before Run: %v", got)
	}
	q.Run()
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Run: got %v, want [a b]", got)
	}
	Do(ctx, add("late"))
	if !slices.Equal(got, []string{"a", "b", "late"}) {
		t.Fatalf("after Run, Do must run at once: %v", got)
	}

	got = nil
	ctx, q = Defer(context.Background())
	Do(ctx, add("rolled back"))
	q.Drop()
	q.Run()
	if len(got) != 0 {
		t.Fatalf("dropped effects ran: %v", got)
	}
}
