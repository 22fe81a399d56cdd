// Package housekeeping holds the broker's data retention that the
// work-order-scheduler runs: diagnostic-request expiry and cleanup, audit-log
// retention (the original broker's background tasks) and the expiry of
// idempotency keys (docs/idempotency.md). Every pass is a set of bounded single
// statements, safe to run on several replicas at once. The work-order sweeps
// (stale claims, due retries) are work-order rules and live in
// pkg/app/workorders/sweeps.go.
package housekeeping

import (
	"context"
	"time"
)

// DiagnosticsExpirer ends diagnostic requests nobody will answer.
type DiagnosticsExpirer interface {
	// ExpireDiagnostics marks pending or claimed requests past expires_at
	// expired and deletes finished ones older than maxAge. present is false
	// (and nothing happens) when the diagnostics tables do not exist.
	ExpireDiagnostics(ctx context.Context, maxAge time.Duration) (expired, deleted int, present bool, err error)
}

// AuditPurger deletes old audit entries.
type AuditPurger interface {
	// PurgeAuditLogs deletes up to batch audit entries created before cutoff.
	PurgeAuditLogs(ctx context.Context, cutoff time.Time, batch int) (int, error)
}

// IdempotencyPurger deletes old idempotency keys.
type IdempotencyPurger interface {
	// PurgeIdempotencyKeys deletes up to batch idempotency keys created
	// before cutoff.
	PurgeIdempotencyKeys(ctx context.Context, cutoff time.Time, batch int) (int, error)
}

// TelemetryPurger bounds the stack telemetry tables (docs/telemetry.md#retention).
type TelemetryPurger interface {
	// PurgeTelemetry deletes up to batch rows of each telemetry table
	// created before cutoff (the server's created_at).
	PurgeTelemetry(ctx context.Context, cutoff time.Time, batch int) (int, error)
	// CapTelemetry deletes, per stack and table, the oldest rows beyond
	// perStack, at most batch per stack and table.
	CapTelemetry(ctx context.Context, perStack, batch int) (int, error)
}

// Repos is the persistence housekeeping needs.
type Repos struct {
	Diagnostics DiagnosticsExpirer
	Audit       AuditPurger
	Idempotency IdempotencyPurger
	Telemetry   TelemetryPurger
}

// Retention is the live housekeeping configuration, read on every pass so a
// reloaded value applies at the next one.
type Retention struct {
	DiagnosticMaxAge time.Duration
	AuditLog         time.Duration
	// IdempotencyKeys is how long a stored Idempotency-Key (and its
	// response) is kept; ≤0 keeps them forever.
	IdempotencyKeys time.Duration
	// Telemetry is the stack telemetry window (capped at 6 h by the
	// caller's validation); TelemetryRowCap the rows kept per stack and
	// table.
	Telemetry       time.Duration
	TelemetryRowCap int
}

// Service runs the housekeeping passes.
type Service struct {
	repos     Repos
	retention func() Retention
	now       func() time.Time
}

// NewService wires housekeeping; retention is read on every pass.
func NewService(repos Repos, retention func() Retention) *Service {
	return &Service{repos: repos, retention: retention, now: time.Now}
}

// DiagnosticsResult reports one diagnostics pass.
type DiagnosticsResult struct {
	Expired, Deleted int
	// Skipped: the diagnostics tables do not exist in this schema.
	Skipped bool
}

// ExpireDiagnostics runs one diagnostics pass.
func (s *Service) ExpireDiagnostics(ctx context.Context) (DiagnosticsResult, error) {
	expired, deleted, present, err := s.repos.Diagnostics.ExpireDiagnostics(ctx, s.retention().DiagnosticMaxAge)
	return DiagnosticsResult{Expired: expired, Deleted: deleted, Skipped: !present}, err
}

const auditBatch = 5000

// PurgeIdempotencyKeys deletes idempotency keys older than their window,
// in batches. A key is honoured for at least the window and forgotten by
// the first pass after it.
func (s *Service) PurgeIdempotencyKeys(ctx context.Context) (int, error) {
	keep := s.retention().IdempotencyKeys
	if keep <= 0 {
		return 0, nil
	}
	return purge(ctx, s.now().Add(-keep), s.repos.Idempotency.PurgeIdempotencyKeys)
}

func purge(ctx context.Context, cutoff time.Time, fn func(context.Context, time.Time, int) (int, error)) (int, error) {
	total := 0
	for {
		n, err := fn(ctx, cutoff, auditBatch)
		total += n
		if err != nil || n < auditBatch {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// PurgeAuditLogs deletes audit entries older than the retention, in batches
// so no single statement holds locks for long.
func (s *Service) PurgeAuditLogs(ctx context.Context) (int, error) {
	keep := s.retention().AuditLog
	if keep <= 0 {
		return 0, nil
	}
	return purge(ctx, s.now().Add(-keep), s.repos.Audit.PurgeAuditLogs)
}

// TelemetryResult reports one telemetry pass.
type TelemetryResult struct {
	// Expired rows were older than the window; Capped rows were beyond a
	// stack's row cap.
	Expired, Capped int
}

// SweepTelemetry deletes telemetry older than the window, then the oldest
// rows of any stack over the row cap, in batches.
func (s *Service) SweepTelemetry(ctx context.Context) (TelemetryResult, error) {
	r := s.retention()
	var res TelemetryResult
	var err error
	if r.Telemetry > 0 {
		if res.Expired, err = purge(ctx, s.now().Add(-r.Telemetry), s.repos.Telemetry.PurgeTelemetry); err != nil {
			return res, err
		}
	}
	if r.TelemetryRowCap > 0 {
		for {
			n, err := s.repos.Telemetry.CapTelemetry(ctx, r.TelemetryRowCap, auditBatch)
			res.Capped += n
			if err != nil || n == 0 {
				return res, err
			}
			if err := ctx.Err(); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
