package hook

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The interval is an hour in these tests: every call after the first comes
// from "more", from wake, or not at all.
func TestPollCallsAgainAtOnceWhileMoreIsWaiting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	Env{}.Poll(ctx, time.Hour, nil, func() bool {
		calls++
		if calls == 3 {
			cancel()
		}
		return true
	})
	if calls != 3 {
		t.Fatalf("poll ran %d times, want 3", calls)
	}
}

func TestPollWakesEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wake := make(chan struct{}, 1)
	calls := 0
	Env{}.Poll(ctx, time.Hour, wake, func() bool {
		calls++
		if calls == 2 {
			cancel()
		} else {
			wake <- struct{}{}
		}
		return false
	})
	if calls != 2 {
		t.Fatalf("poll ran %d times, want 2", calls)
	}
}

func TestPollSkipsWhileInactiveAndEndsWithCtx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var calls atomic.Int32
	env := Env{Active: func() bool { return false }}
	env.Poll(ctx, time.Millisecond, nil, func() bool { calls.Add(1); return true })
	if n := calls.Load(); n != 0 {
		t.Fatalf("poll ran %d times while inactive", n)
	}
}
