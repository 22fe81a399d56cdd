package broker

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// ErrRejected matches every error status: the broker answered and said no.
// An error that does not match it got no usable answer (transport failure,
// timeout, an undecodable body), so whether the request took effect is
// unknown.
var ErrRejected = errors.New("broker rejected the request")

// statusKinds maps a status code back to the pkg/domain kind the broker
// answers it for (pkg/domain/errors.go), so the agent's loops ask what an
// answer means (errors.Is(err, domain.ErrConflict)) instead of comparing
// status codes. A 401 is a rejected PAK; a 403 a PAK that may not do this
// (a webhook delivery whose lease this agent no longer holds); a 404 a gone
// agent, work order or delivery; a 409 claimed by someone else or already
// reported, or with Retry-After (domain.ErrInFlight as well) an earlier
// attempt with the same Idempotency-Key still running; 400 and 422 a wrong
// request that sending again cannot help; 503 load shedding or an outage.
var statusKinds = map[int]error{
	http.StatusBadRequest:          domain.ErrInvalid,
	http.StatusUnauthorized:        domain.ErrUnauthenticated,
	http.StatusForbidden:           domain.ErrForbidden,
	http.StatusNotFound:            domain.ErrNotFound,
	http.StatusConflict:            domain.ErrConflict,
	http.StatusUnprocessableEntity: domain.ErrUnprocessable,
	http.StatusTooManyRequests:     domain.ErrThrottled,
	http.StatusServiceUnavailable:  domain.ErrUnavailable,
}

// StatusError is an unexpected HTTP status. It matches (errors.Is) the
// domain kind of its code, domain.ErrInFlight for a 409 with Retry-After, and
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
	case domain.ErrInFlight:
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
	case errors.Is(se, domain.ErrUnauthenticated), errors.Is(se, domain.ErrForbidden), errors.Is(se, domain.ErrThrottled),
		errors.Is(se, domain.ErrInFlight), se.Code == http.StatusRequestTimeout:
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
