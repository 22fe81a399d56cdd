package broker

import (
	"errors"
	"fmt"
	"testing"
)

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
