package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestIsRetryable(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", apierrors.NewTooManyRequests("slow down", 1), true},
		{"500", apierrors.NewInternalError(errors.New("boom")), true},
		{"503", apierrors.NewServiceUnavailable("later"), true},
		{"504", apierrors.NewTimeoutError("took too long", 1), true},
		{"server timeout", apierrors.NewServerTimeout(gr, "get", 1), true},
		{"502 generic", apierrors.NewGenericServerResponse(502, "get", gr, "x", "bad gateway", 0, true), true},
		{"wrapped 503", fmt.Errorf("applying: %w", apierrors.NewServiceUnavailable("later")), true},
		{"404", apierrors.NewNotFound(gr, "x"), false},
		{"409", apierrors.NewConflict(gr, "x", errors.New("conflict")), false},
		{"422", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil), false},
		{"403", apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{"400", apierrors.NewBadRequest("bad"), false},
		{"unresolved kind", &UnresolvedKindError{GVK: schema.GroupVersionKind{Kind: "Nope"}}, false},
		{"connection refused", &url.Error{Op: "Get", URL: "https://x", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, true},
		{"cancelled", context.Canceled, false},
		{"plain", errors.New("something"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRetryable(tt.err); got != tt.want {
				t.Fatalf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{}
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		for range 50 {
			d := b.Delay(n)
			if d < want/2 || d > want*3/2 {
				t.Fatalf("Delay(%d) = %s, want within ±50%% of %s", n, d, want)
			}
		}
	}
	for range 50 {
		if d := b.Delay(100); d > 90*time.Second {
			t.Fatalf("Delay(100) = %s beyond the cap (60 s + jitter)", d)
		}
	}
}

func TestRetry(t *testing.T) {
	b := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Deadline: time.Second}
	calls := 0
	err := Retry(context.Background(), b, func(context.Context) error {
		calls++
		if calls < 3 {
			return apierrors.NewServiceUnavailable("later")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	calls = 0
	err = Retry(context.Background(), b, func(context.Context) error {
		calls++
		return apierrors.NewBadRequest("bad")
	})
	if !apierrors.IsBadRequest(err) || calls != 1 {
		t.Fatalf("a permanent error was retried: %v after %d calls", err, calls)
	}
	calls = 0
	err = Retry(context.Background(), Backoff{Initial: time.Millisecond, Attempts: 4, Deadline: -1}, func(context.Context) error {
		calls++
		return apierrors.NewTooManyRequests("slow", 0)
	})
	if !apierrors.IsTooManyRequests(err) || calls != 4 {
		t.Fatalf("attempts: %v after %d calls", err, calls)
	}
}
