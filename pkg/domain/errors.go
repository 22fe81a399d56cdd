// Package domain holds what every bounded context shares: the error kinds
// that the HTTP layer maps to status codes in one place.
package domain

import "errors"

// Error kinds. Use cases return an *Error whose Kind is one of these; the
// driving adapter maps the kind to a status code and Msg to the JSON body.
var (
	ErrInvalid         = errors.New("invalid input")          // 400
	ErrUnauthenticated = errors.New("unauthenticated")        // 401
	ErrForbidden       = errors.New("forbidden")              // 403
	ErrNotFound        = errors.New("not found")              // 404
	ErrConflict        = errors.New("conflict")               // 409
	ErrUnprocessable   = errors.New("unprocessable")          // 422
	ErrThrottled       = errors.New("too many requests")      // 429
	ErrUnavailable     = errors.New("dependency unavailable") // 503

	// ErrInFlight: a request with the same Idempotency-Key is still being
	// processed (409 with Retry-After; the client retries later).
	ErrInFlight = errors.New("idempotent request in flight") // 409
	// ErrKeyReused: an Idempotency-Key was sent again with a different
	// request (method, path or body).
	ErrKeyReused = errors.New("idempotency key reused") // 422
)

// Error is a domain failure with a message safe to show to the client and
// optional extra fields for the JSON error body.
type Error struct {
	Kind error
	// Code is the stable, machine-readable name of this failure that
	// clients match on (docs/error-codes.md), such as "agent_not_found".
	// Empty means the kind's general code.
	Code   string
	Msg    string
	Fields map[string]any
	// Cause is kept for logs; it is never shown to the client.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

// Unwrap exposes both the kind (for errors.Is) and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// Invalid is a 400-class failure.
func Invalid(msg string) error { return &Error{Kind: ErrInvalid, Msg: msg} }

// Forbidden is a 403-class failure.
func Forbidden(msg string) error { return &Error{Kind: ErrForbidden, Msg: msg} }

// NotFound is a 404-class failure.
func NotFound(msg string) error { return &Error{Kind: ErrNotFound, Msg: msg} }

// Conflict is a 409-class failure.
func Conflict(msg string) error { return &Error{Kind: ErrConflict, Msg: msg} }

// Unprocessable is a 422-class failure.
func Unprocessable(msg string) error { return &Error{Kind: ErrUnprocessable, Msg: msg} }

// Unavailable is a 503-class failure: a dependency (auth, templating, Redis)
// did not answer. Cause is logged, never shown.
func Unavailable(msg string, cause error) error {
	return &Error{Kind: ErrUnavailable, Msg: msg, Cause: cause}
}

// WithFields returns err with extra JSON body fields when err is an *Error.
func WithFields(err error, fields map[string]any) error {
	var de *Error
	if errors.As(err, &de) {
		cp := *de
		cp.Fields = fields
		return &cp
	}
	return err
}

// Rephrase replaces the client message of err when it is of kind, keeping
// the cause; a repository's generic "already exists" becomes a message that
// names what clashed.
func Rephrase(err error, kind error, msg string) error {
	var de *Error
	if err != nil && errors.As(err, &de) && de.Kind == kind {
		return &Error{Kind: kind, Code: de.Code, Msg: msg, Cause: de.Cause}
	}
	return err
}

// WithCode returns err with the stable code when err is an *Error without
// one: the use case that knows what was not found (or clashed) names it,
// and a code set closer to the failure wins.
func WithCode(err error, code string) error {
	var de *Error
	if errors.As(err, &de) && de.Code == "" {
		cp := *de
		cp.Code = code
		return &cp
	}
	return err
}

// Unauthenticated is a 401-class failure: no valid credential.
func Unauthenticated(msg string) error { return &Error{Kind: ErrUnauthenticated, Msg: msg} }

// Coded constructors: a failure with its stable code (docs/error-codes.md),
// named where the failure is known, so clients of 0.9.1 can match on it.

// InvalidCode is a 400-class failure with a stable code.
func InvalidCode(code, msg string) error { return &Error{Kind: ErrInvalid, Code: code, Msg: msg} }

// ForbiddenCode is a 403-class failure with a stable code.
func ForbiddenCode(code, msg string) error { return &Error{Kind: ErrForbidden, Code: code, Msg: msg} }

// NotFoundCode is a 404-class failure with a stable code.
func NotFoundCode(code, msg string) error { return &Error{Kind: ErrNotFound, Code: code, Msg: msg} }

// ConflictCode is a 409-class failure with a stable code.
func ConflictCode(code, msg string) error { return &Error{Kind: ErrConflict, Code: code, Msg: msg} }

// UnprocessableCode is a 422-class failure with a stable code.
func UnprocessableCode(code, msg string) error {
	return &Error{Kind: ErrUnprocessable, Code: code, Msg: msg}
}

// CodeOf is err's stable code when it carries one, else "".
func CodeOf(err error) string {
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}
