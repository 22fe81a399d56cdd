package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// The loops decide on these kinds; a wrong mapping would, e.g., drop a
// webhook report the broker would still take, or keep a claim it refused.
func TestStatusErrorKinds(t *testing.T) {
	t.Parallel()
	kinds := []error{domain.ErrInvalid, domain.ErrUnauthenticated, domain.ErrForbidden, domain.ErrNotFound, domain.ErrConflict, domain.ErrInFlight,
		domain.ErrUnprocessable, domain.ErrThrottled, domain.ErrUnavailable}
	tests := []struct {
		code       int
		retryAfter string
		want       []error
		permanent  bool
	}{
		{http.StatusBadRequest, "", []error{domain.ErrInvalid}, true},
		{http.StatusUnauthorized, "", []error{domain.ErrUnauthenticated}, false},
		{http.StatusForbidden, "", []error{domain.ErrForbidden}, false},
		{http.StatusNotFound, "", []error{domain.ErrNotFound}, true},
		{http.StatusConflict, "", []error{domain.ErrConflict}, true},
		{http.StatusConflict, "1", []error{domain.ErrConflict, domain.ErrInFlight}, false},
		{http.StatusRequestTimeout, "", nil, false},
		{http.StatusUnprocessableEntity, "", []error{domain.ErrUnprocessable}, true},
		{http.StatusTooManyRequests, "", []error{domain.ErrThrottled}, false},
		{http.StatusInternalServerError, "", nil, false},
		{http.StatusServiceUnavailable, "", []error{domain.ErrUnavailable}, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d%s", tc.code, tc.retryAfter), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				http.Error(w, `{"error":"no"}`, tc.code)
			}))
			defer srv.Close()
			c, err := New(srv.URL, "pak", Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			// POST: a 503 without Retry-After is not retried.
			_, err = c.Do(context.Background(), http.MethodPost, "/api/v1/x", []byte("{}"), nil, 0)
			err = fmt.Errorf("wrapped: %w", err)
			if !errors.Is(err, ErrRejected) {
				t.Errorf("errors.Is(%v, ErrRejected) = false", err)
			}
			for _, k := range kinds {
				want := false
				for _, w := range tc.want {
					want = want || w == k
				}
				if got := errors.Is(err, k); got != want {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, k, got, want)
				}
			}
			if got := Permanent(err); got != tc.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", err, got, tc.permanent)
			}
		})
	}
}

// A request that got no answer matches no kind and is not ErrRejected: the
// work-order runner then keeps its claim record and checks it later.
func TestTransportErrorIsNotRejected(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL
	srv.Close()
	c, err := New(url, "pak", Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Do(context.Background(), http.MethodPost, "/api/v1/x", nil, nil, 0)
	if err == nil || errors.Is(err, ErrRejected) || errors.Is(err, domain.ErrNotFound) || StatusCode(err) != 0 {
		t.Fatalf("err = %v: want a transport error matching no kind", err)
	}
}
