package postgres

import (
	"context"
	"time"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
)

// Housekeeping is the data-retention repository: diagnostic-request expiry
// and audit-log purging (pkg/app/housekeeping).
type Housekeeping struct{ s *Store }

// NewHousekeeping returns the housekeeping repository over s.
func NewHousekeeping(s *Store) *Housekeeping { return &Housekeeping{s: s} }

var (
	_ housekeeping.DiagnosticsExpirer = (*Housekeeping)(nil)
	_ housekeeping.AuditPurger        = (*Housekeeping)(nil)
)

// ExpireDiagnostics expires pending and claimed diagnostic requests past
// expires_at and deletes finished ones older than maxAge
// (docs/compatibility.md#diagnostics-expiry). It does nothing, reporting
// present=false, when this schema has no diagnostics tables yet.
func (r *Housekeeping) ExpireDiagnostics(ctx context.Context, maxAge time.Duration) (expired, deleted int, present bool, err error) {
	if err := r.s.q(ctx).GetContext(ctx, &present, `SELECT to_regclass('diagnostic_requests') IS NOT NULL`); err != nil {
		return 0, 0, false, mapErr(err)
	}
	if !present {
		return 0, 0, false, nil
	}
	res, err := r.s.q(ctx).ExecContext(ctx, `UPDATE diagnostic_requests SET status = 'expired'
		WHERE status IN ('pending', 'claimed') AND expires_at < now()`)
	if err != nil {
		return 0, 0, true, mapErr(err)
	}
	n, _ := res.RowsAffected()
	expired = int(n)
	res, err = r.s.q(ctx).ExecContext(ctx, `DELETE FROM diagnostic_requests
		WHERE status IN ('completed', 'expired', 'failed')
		  AND COALESCE(completed_at, expires_at, created_at) < now() - make_interval(secs => $1)`, maxAge.Seconds())
	if err != nil {
		return expired, 0, true, mapErr(err)
	}
	n, _ = res.RowsAffected()
	return expired, int(n), true, nil
}

// PurgeAuditLogs deletes up to batch audit entries created before cutoff,
// skipping rows another replica is deleting.
func (r *Housekeeping) PurgeAuditLogs(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `DELETE FROM audit_logs WHERE id IN (
		SELECT id FROM audit_logs WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, batch)
	if err != nil {
		return 0, mapErr(err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
