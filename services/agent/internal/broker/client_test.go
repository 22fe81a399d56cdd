package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestDoRetriesShedRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		retryAfter string
		failures   int32
		wantCalls  int32
		wantCode   int
	}{
		{"GET with Retry-After recovers", http.MethodGet, "0", 2, 3, http.StatusOK},
		{"POST with Retry-After recovers", http.MethodPost, "0", 1, 2, http.StatusOK},
		{"POST without Retry-After is not retried", http.MethodPost, "", 1, 1, http.StatusServiceUnavailable},
		{"GET gives up after the retries", http.MethodGet, "0", 100, int32(MaxOverloadRetries) + 1, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= tc.failures {
					if tc.retryAfter != "" {
						w.Header().Set("Retry-After", tc.retryAfter)
					}
					http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
					return
				}
				_, _ = w.Write([]byte("{}"))
			}))
			defer srv.Close()
			c, err := New(srv.URL, "pak", Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Do(context.Background(), tc.method, "/api/v1/x", nil, nil, 0)
			if got := StatusCode(err); (tc.wantCode == http.StatusOK && err != nil) || (tc.wantCode != http.StatusOK && got != tc.wantCode) {
				t.Fatalf("err = %v, want status %d", err, tc.wantCode)
			}
			if calls.Load() != tc.wantCalls {
				t.Fatalf("server saw %d calls, want %d", calls.Load(), tc.wantCalls)
			}
		})
	}
}

func TestOverloadBackoffJitter(t *testing.T) {
	t.Parallel()
	for i := 0; i < 200; i++ {
		d, ok := overloadBackoff("2", http.MethodPost, 0)
		if !ok || d < 2*time.Second || d > 3*time.Second {
			t.Fatalf("Retry-After 2 → %v %v, want 2–3 s", d, ok)
		}
		d, ok = overloadBackoff("", http.MethodGet, 2)
		if !ok || d < time.Second || d > 1500*time.Millisecond {
			t.Fatalf("GET attempt 2 → %v %v, want 1–1.5 s", d, ok)
		}
	}
	if _, ok := overloadBackoff("", http.MethodPost, 0); ok {
		t.Fatal("POST without Retry-After must not be retried")
	}
}

func TestPermanent(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{errors.New("connection refused"), false},
		{&StatusError{Code: 400}, true},
		{&StatusError{Code: 401}, false},
		{&StatusError{Code: 403}, false},
		{&StatusError{Code: 404}, true},
		{&StatusError{Code: 408}, false},
		// 409 is permanent (e.g. a work order no longer claimed) unless the
		// broker asks for a retry: an earlier attempt with the same
		// Idempotency-Key is still in flight.
		{&StatusError{Code: 409}, true},
		{&StatusError{Code: 409, RetryAfter: "1"}, false},
		{&StatusError{Code: 422}, true},
		{&StatusError{Code: 429}, false},
		{fmt.Errorf("wrapped: %w", &StatusError{Code: 503}), false},
	}
	for _, c := range cases {
		if got := Permanent(c.err); got != c.want {
			t.Errorf("Permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
