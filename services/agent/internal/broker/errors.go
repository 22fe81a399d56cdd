package broker

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// The broker's answers as domain errors, so the agent's loops ask what an
// answer means (errors.Is(err, broker.ErrConflict)) instead of comparing
// status codes. They are the pkg/domain kinds the broker maps to those
// statuses (pkg/domain/errors.go), read back on the client side.
var (
	// ErrUnauthorized is a 401: the PAK was rejected.
	ErrUnauthorized = domain.ErrUnauthenticated
	// ErrForbidden is a 403: the PAK may not do this (e.g. a webhook
	// delivery whose lease this agent no longer holds).
	ErrForbidden = domain.ErrForbidden
	// ErrNotFound is a 404: the agent, work order or delivery is gone.
	ErrNotFound = domain.ErrNotFound
	// ErrConflict is any 409: claimed by someone else, already reported,
	// or (with Retry-After, also ErrInFlight) an earlier attempt with the
	// same Idempotency-Key still running.
	ErrConflict = domain.ErrConflict
	// ErrInFlight is a 409 with Retry-After.
	ErrInFlight = domain.ErrInFlight
	// ErrInvalid is a 400, ErrUnprocessable a 422: the request itself is
	// wrong; sending it again cannot help.
	ErrInvalid       = domain.ErrInvalid
	ErrUnprocessable = domain.ErrUnprocessable
	// ErrThrottled is a 429.
	ErrThrottled = domain.ErrThrottled
	// ErrUnavailable is a 503 (load shedding or a dependency outage).
	ErrUnavailable = domain.ErrUnavailable
	// ErrRejected matches every error status: the broker answered and said
	// no. An error that does not match it got no usable answer (transport
	// failure, timeout, an undecodable body), so whether the request took
	// effect is unknown.
	ErrRejected = errors.New("broker rejected the request")
)

// statusKinds maps a status code to the domain kind it carries.
var statusKinds = map[int]error{
	http.StatusBadRequest:          ErrInvalid,
	http.StatusUnauthorized:        ErrUnauthorized,
	http.StatusForbidden:           ErrForbidden,
	http.StatusNotFound:            ErrNotFound,
	http.StatusConflict:            ErrConflict,
	http.StatusUnprocessableEntity: ErrUnprocessable,
	http.StatusTooManyRequests:     ErrThrottled,
	http.StatusServiceUnavailable:  ErrUnavailable,
}

// StatusError is an unexpected HTTP status. It matches (errors.Is) the
// domain kind of its code, ErrInFlight for a 409 with Retry-After, and
// ErrRejected.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
	// RetryAfter is the response's Retry-After header, if any.
	RetryAfter string
}

func (e *StatusError) Error() string {
	body := strings.TrimSpace(e.Body)
	if len(body) > 300 {
		body = body[:300] + "…"
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Code, body)
}

// Is lets errors.Is match the kind of the status code.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrRejected:
		return true
	case ErrInFlight:
		return e.Code == http.StatusConflict && e.RetryAfter != ""
	}
	kind, ok := statusKinds[e.Code]
	return ok && kind == target
}

// Permanent reports whether retrying the same request cannot succeed: a 4xx
// other than 401/403 (the PAK may be fixed), 408, 429 and a 409 with
// Retry-After (the broker is still processing an earlier attempt with the
// same Idempotency-Key).
func Permanent(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch {
	case errors.Is(se, ErrUnauthorized), errors.Is(se, ErrForbidden), errors.Is(se, ErrThrottled),
		errors.Is(se, ErrInFlight), se.Code == http.StatusRequestTimeout:
		return false
	}
	return se.Code >= 400 && se.Code < 500
}

// StatusCode returns the HTTP status of err, or 0 for a transport error.
// It is for logs and tests; decisions use errors.Is with the kinds above.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
