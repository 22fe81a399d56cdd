// Package authn holds the api side of authentication: the Authenticator port
// (answered by the auth service), an in-process TTL cache in front of it, and
// the Invalidator port that use cases call after a rotation or deletion so
// every api replica forgets the old PAK at once
// (docs/compatibility.md#pak-revocation).
package authn

import (
	"context"
	"errors"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// Client is the network origin of a verification, used for throttling and
// for the audit entry of a failure.
type Client struct {
	IP        string `json:"client_ip"`
	UserAgent string `json:"user_agent"`
}

// Authenticator resolves a PAK (the raw Authorization header value) to a
// principal. Errors: domain.ErrUnauthenticated (401), domain.ErrThrottled
// (429, see RetryAfter) and domain.ErrUnavailable (503).
type Authenticator interface {
	Authenticate(ctx context.Context, token string, client Client) (identity.Principal, error)
}

// Invalidator drops PAK hashes from every replica's cache. Use cases call it
// after rotating or deleting a PAK-bearing entity.
type Invalidator interface {
	Invalidate(ctx context.Context, hashes ...string) error
}

// AllInvalidator also drops every cached entry everywhere (config reload).
type AllInvalidator interface {
	Invalidator
	InvalidateAll(ctx context.Context) error
}

// PAKIssuer issues a new PAK and its stored hash. In the auth service it is
// pak.Issuer; in api it is the auth service's client, so api never
// generates keys itself.
type PAKIssuer interface {
	Issue(ctx context.Context) (pak secret.String, hash string, err error)
}

// Messages shown to clients; they never echo the token.
const (
	MsgInvalidPAK = "invalid PAK"
	MsgThrottled  = "too many failed attempts"
)

// Unauthenticated is the 401 error for any PAK that is malformed or unknown.
func Unauthenticated() error {
	return &domain.Error{Kind: domain.ErrUnauthenticated, Msg: MsgInvalidPAK}
}

// retryAfterField is the JSON body field (and the source of the Retry-After
// header) of a throttled answer.
const retryAfterField = "retry_after"

// Throttled is the 429 error: the client failed too often and may retry
// after retryAfter (rounded up to whole seconds, at least 1).
func Throttled(retryAfter time.Duration) error {
	return &domain.Error{
		Kind:   domain.ErrThrottled,
		Msg:    MsgThrottled,
		Fields: map[string]any{retryAfterField: Seconds(retryAfter)},
	}
}

// RetryAfter returns how long a throttled client should wait, when err is
// (or wraps) a Throttled error.
func RetryAfter(err error) (time.Duration, bool) {
	var de *domain.Error
	if !errors.As(err, &de) || !errors.Is(de.Kind, domain.ErrThrottled) {
		return 0, false
	}
	switch v := de.Fields[retryAfterField].(type) {
	case int:
		return time.Duration(v) * time.Second, true
	case int64:
		return time.Duration(v) * time.Second, true
	case float64:
		return time.Duration(v) * time.Second, true
	}
	return time.Second, true
}

// Seconds rounds d up to whole seconds, at least 1 (the Retry-After unit).
func Seconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
