package workorders

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// Batch sizes of the periodic passes: small enough that one transaction
// holds few row locks, looped until a pass comes up short.
const (
	sweepBatch = 500
	staleBatch = 100
)

// ReleaseRetry is the retry timer firing for retry n of order id: a due
// RETRY_PENDING order goes back to PENDING. It is idempotent; a timer for
// an order that was released, completed, cancelled or retried again since
// does nothing. When the timer fired before the database's clock says the
// retry is due, due is returned so the caller can wait again.
func (s *Service) ReleaseRetry(ctx context.Context, id uuid.UUID, n int) (released bool, due *time.Time, err error) {
	return s.repos.Retries.ReleaseRetry(ctx, id, n)
}

// SweepRetries releases every due RETRY_PENDING order whose timer was lost
// (Redis flushed or down when the retry was scheduled). Safe to run on
// several replicas at once.
func (s *Service) SweepRetries(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.repos.Retries.ReleaseDueRetries(ctx, sweepBatch)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// ExpireStaleClaims ends every claim that outlived its claim_timeout_seconds
// without a completion or a progress report. An expired claim counts as a
// failed, retryable attempt (docs/work-orders.md#stale-claims): it is retried
// with backoff, or lands in the log with success=false once retries are
// exhausted, so work that crashes its agent cannot loop forever. Rows are
// locked with SKIP LOCKED, so replicas running this together split the work.
func (s *Service) ExpireStaleClaims(ctx context.Context) (int, error) {
	total := 0
	for {
		var retries []*workorder.WorkOrder
		n := 0
		err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
			stale, err := s.repos.Retries.LockStaleClaims(ctx, staleBatch)
			if err != nil {
				return err
			}
			n = len(stale)
			for _, w := range stale {
				msg := fmt.Sprintf("Claim expired: the claiming agent neither completed nor reported progress within %d seconds",
					w.ClaimTimeoutSeconds)
				if w.ClaimedBy != nil {
					msg = fmt.Sprintf("Claim expired: agent %s neither completed nor reported progress within %d seconds",
						*w.ClaimedBy, w.ClaimTimeoutSeconds)
				}
				c, err := s.fail(ctx, System, w, msg, true, workorder.ActionClaimExpired)
				if err != nil {
					return err
				}
				if c.Retry != nil {
					retries = append(retries, c.Retry)
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		for _, r := range retries {
			s.arm(ctx, r)
		}
		if n < staleBatch {
			return total, nil
		}
	}
}
