// Package paks holds the auth service's use cases: verifying PAKs with
// per-client throttling and failure audit, the first-start admin bootstrap
// and admin PAK rotation (docs/compatibility.md#pak-format,
// #admin-bootstrap, #pak-revocation).
package paks

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

// Match is what one PAK hash resolves to in the database: the hash of the
// first admin_role row (compared by the caller in constant time) and the
// live agent and generator holding the hash, if any.
type Match struct {
	AdminHash   string
	AgentID     *uuid.UUID
	GeneratorID *uuid.UUID
	// ShortToken is the public part ("<prefix>_<short token>") recorded
	// when the PAK was issued; "" when none was (a pinned hash, a PAK older
	// than the record), and then only the long token is checked.
	ShortToken string
}

// Lookup resolves a PAK hash in one round trip.
type Lookup interface {
	LookupPAK(ctx context.Context, hash string) (Match, error)
}

// AuditWriter writes one audit entry.
type AuditWriter interface {
	Audit(ctx context.Context, e audit.Entry) error
}

// FailureCounter counts failed verifications per key in fixed windows.
type FailureCounter interface {
	// Failures returns the count of the current window and the time left.
	Failures(ctx context.Context, key string) (count int64, ttl time.Duration, err error)
	// AddFailure increments the count, starting a window of length window
	// when none is running, and returns the new count and the time left.
	AddFailure(ctx context.Context, key string, window time.Duration) (count int64, ttl time.Duration, err error)
}

// ThrottleConfig is auth.failure_limit failed attempts per client IP, and
// per PAK short token, within auth.failure_window_seconds. A limit <= 0
// disables throttling.
type ThrottleConfig struct {
	FailureLimit  int
	FailureWindow time.Duration
}

// Failure reasons recorded in auth.failed audit details.
const (
	ReasonMalformed = "malformed"
	ReasonUnknown   = "unknown_pak"
	ReasonThrottled = "throttled"
)

// ResourceTypePAK is the resource_type of auth.failed entries.
const ResourceTypePAK = "pak"

// Verifier resolves PAKs to principals in the original's lookup order:
// admin (first admin_role row), live agent, live and active generator. It
// implements authn.Authenticator.
type Verifier struct {
	lookup   Lookup
	audit    AuditWriter
	counter  FailureCounter
	throttle ThrottleConfig
	log      *slog.Logger
}

// NewVerifier wires the verifier. counter may be nil (no throttling).
func NewVerifier(lookup Lookup, audit AuditWriter, counter FailureCounter, throttle ThrottleConfig, log *slog.Logger) *Verifier {
	if log == nil {
		log = slog.Default()
	}
	if throttle.FailureWindow <= 0 {
		throttle.FailureWindow = time.Minute
	}
	return &Verifier{lookup: lookup, audit: audit, counter: counter, throttle: throttle, log: log}
}

var _ authn.Authenticator = (*Verifier)(nil)

// Authenticate verifies token (a raw Authorization header value) for client.
//
// A PAK that verifies is always accepted: throttling applies to failing
// attempts only, so one bad client behind a shared NAT or ingress cannot
// lock out the agents and admins behind the same address. Failures count
// per client IP and, when the token is well-formed, per public part
// (prefix and short token), so rotating source addresses does not help
// against one key either.
func (v *Verifier) Authenticate(ctx context.Context, token string, client authn.Client) (identity.Principal, error) {
	public, long, err := pak.Parse(token)
	if err != nil {
		return identity.Principal{}, v.fail(ctx, client, "", ReasonMalformed)
	}
	hash := pak.Hash(long)
	m, err := v.lookup.LookupPAK(ctx, hash)
	if err != nil {
		return identity.Principal{}, domain.Unavailable("PAK lookup failed", err)
	}
	// The prefix and short token are public (they identify a key), but a
	// PAK is the whole string: one with another public part was never
	// issued, whatever its long token.
	if m.ShortToken == "" || subtle.ConstantTimeCompare([]byte(m.ShortToken), []byte(public)) == 1 {
		switch {
		case m.AdminHash != "" && pak.Equal(m.AdminHash, hash):
			return identity.Admin, nil
		case m.AgentID != nil:
			return identity.Agent(*m.AgentID), nil
		case m.GeneratorID != nil:
			return identity.Generator(*m.GeneratorID), nil
		}
	}
	return identity.Principal{}, v.fail(ctx, client, public, ReasonUnknown)
}

func (v *Verifier) throttling() bool { return v.counter != nil && v.throttle.FailureLimit > 0 }

// fail counts a failed attempt against the client's IP and the short token
// and answers 401, or 429 once either has failed more than the limit within
// the window. Each key audits at most limit failures and one "throttled"
// entry per window, so a flood of bad PAKs cannot flood audit_logs.
func (v *Verifier) fail(ctx context.Context, client authn.Client, public, reason string) error {
	if !v.throttling() {
		v.auditFailure(ctx, client, reason)
		return authn.Unauthenticated()
	}
	keys := []string{clientKey(client)}
	if public != "" {
		keys = append(keys, pakKey(public))
	}
	var (
		worst   int64
		ttl     time.Duration
		counted bool
	)
	for _, k := range keys {
		n, t, err := v.counter.AddFailure(ctx, k, v.throttle.FailureWindow)
		if err != nil {
			// Redis trouble must not lock everybody out: fail open.
			v.log.WarnContext(ctx, "auth failure counter unavailable; not throttling", "error", err)
			continue
		}
		counted = true
		if n > worst {
			worst, ttl = n, t
		}
	}
	limit := int64(v.throttle.FailureLimit)
	switch {
	case !counted || worst <= limit:
		v.auditFailure(ctx, client, reason)
		return authn.Unauthenticated()
	case worst == limit+1:
		v.auditFailure(ctx, client, ReasonThrottled)
	}
	return authn.Throttled(ttl)
}

func (v *Verifier) auditFailure(ctx context.Context, client authn.Client, reason string) {
	if v.audit == nil {
		return
	}
	details, _ := json.Marshal(map[string]string{"reason": reason, "client_ip": clip(client.IP, maxIPLen)})
	e := audit.Entry{
		ActorType:    string(identity.RoleSystem),
		Action:       audit.ActionAuthFailed,
		ResourceType: ResourceTypePAK,
		Details:      details,
	}
	if client.IP != "" {
		ip := clip(client.IP, maxIPLen)
		e.IPAddress = &ip
	}
	if client.UserAgent != "" {
		ua := clip(client.UserAgent, maxUserAgentLen)
		e.UserAgent = &ua
	}
	// Use a context that survives the caller giving up, so the record of a
	// failed attempt is not lost because the client hung up.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := v.audit.Audit(actx, e); err != nil {
		v.log.WarnContext(ctx, "writing auth.failed audit entry failed", "error", err, "reason", reason)
	}
}

const (
	maxIPLen        = 64
	maxUserAgentLen = 512
)

// clientKey is the throttling key of a client: its IP, bounded.
func clientKey(c authn.Client) string {
	if c.IP == "" {
		return "ip:unknown"
	}
	return "ip:" + clip(c.IP, maxIPLen)
}

// pakKey is the throttling key of one PAK: its public part, bounded.
func pakKey(public string) string { return "pak:" + clip(public, maxIPLen) }

// clip bounds s to n bytes of valid UTF-8 without NUL (PostgreSQL text
// rejects both), since client strings come from untrusted headers.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, ""), "\x00", "")
}
