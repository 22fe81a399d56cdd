package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

const workOrderCols = `id, created_at, updated_at, work_type, yaml_content, status, claimed_by, claimed_at,
	claim_timeout_seconds, max_retries, retry_count, backoff_seconds, next_retry_after, last_error, last_error_at,
	schedule_id, scheduled_at, progress_message, progress_percent, progress_updated_at`

const workOrderLogCols = `id, work_type, created_at, claimed_at, completed_at, claimed_by, success, retries_attempted,
	result_message, yaml_content, schedule_id, scheduled_at`

// WorkOrders is the work-order repository: active orders with their
// targeting, the agent's pending list and single-winner claim, retries,
// stale claims and the log of finished orders. The claim and pending
// queries are benchmarked (docs/benchmarks.md); keep them as they are.
type WorkOrders struct{ s *Store }

// NewWorkOrders returns the work-order repository over s.
func NewWorkOrders(s *Store) *WorkOrders { return &WorkOrders{s: s} }

// eligibleFor is docs/work-orders.md#targeting as SQL: the order aliased wo is open to
// the agent in parameter $n by a hard target, any shared label or any shared
// annotation pair, and the agent is live and ACTIVE
// (docs/compatibility.md#agent-status-on-create).
func eligibleFor(n int) string {
	return strings.ReplaceAll(`EXISTS (SELECT 1 FROM agents a WHERE a.id = $N AND a.deleted_at IS NULL AND a.status = 'ACTIVE')
	AND (EXISTS (SELECT 1 FROM work_order_targets t WHERE t.work_order_id = wo.id AND t.agent_id = $N)
	  OR EXISTS (SELECT 1 FROM work_order_labels l JOIN agent_labels al ON al.label = l.label
	             WHERE l.work_order_id = wo.id AND al.agent_id = $N)
	  OR EXISTS (SELECT 1 FROM work_order_annotations x JOIN agent_annotations aa ON aa.key = x.key AND aa.value = x.value
	             WHERE x.work_order_id = wo.id AND aa.agent_id = $N))`, "$N", fmt.Sprintf("$%d", n))
}

func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// CreateWorkOrder inserts w and its targeting; agent ids that name no live
// agent are skipped (the use case checks them first where it matters).
func (r *WorkOrders) CreateWorkOrder(ctx context.Context, w *workorder.WorkOrder, t workorder.Targeting) error {
	if err := insertInto(ctx, r.s.q(ctx), w, `INSERT INTO work_orders
		(work_type, yaml_content, max_retries, backoff_seconds, claim_timeout_seconds, schedule_id, scheduled_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+workOrderCols,
		w.WorkType, w.YAMLContent, w.MaxRetries, w.BackoffSeconds, w.ClaimTimeoutSeconds, w.ScheduleID, w.ScheduledAt); err != nil {
		return err
	}
	if len(t.AgentIDs) > 0 {
		if _, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO work_order_targets (work_order_id, agent_id)
			SELECT $1, id FROM agents WHERE id = ANY($2::uuid[]) AND deleted_at IS NULL`, w.ID, uuidStrings(t.AgentIDs)); err != nil {
			return mapErr(err)
		}
	}
	if len(t.Labels) > 0 {
		if _, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO work_order_labels (work_order_id, label)
			SELECT $1, l FROM unnest($2::text[]) AS l ON CONFLICT DO NOTHING`, w.ID, t.Labels); err != nil {
			return mapErr(err)
		}
	}
	if len(t.Annotations) > 0 {
		keys := make([]string, 0, len(t.Annotations))
		values := make([]string, 0, len(t.Annotations))
		for k, v := range t.Annotations {
			keys, values = append(keys, k), append(values, v)
		}
		if _, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO work_order_annotations (work_order_id, key, value)
			SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS x(k, v) ON CONFLICT DO NOTHING`, w.ID, keys, values); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// LiveAgents returns which of ids name live agents.
func (r *WorkOrders) LiveAgents(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	var found []uuid.UUID
	if err := r.s.q(ctx).SelectContext(ctx, &found, `SELECT id FROM agents WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL`,
		uuidStrings(ids)); err != nil {
		return nil, mapErr(err)
	}
	out := make(map[uuid.UUID]bool, len(found))
	for _, id := range found {
		out[id] = true
	}
	return out, nil
}

// AgentLive reports whether id names a live agent.
func (r *WorkOrders) AgentLive(ctx context.Context, id uuid.UUID) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND deleted_at IS NULL)`, id)
	return ok, mapErr(err)
}

// ListWorkOrders returns active orders matching f, newest first.
func (r *WorkOrders) ListWorkOrders(ctx context.Context, f workorders.ListFilter) ([]workorder.WorkOrder, error) {
	var w filter
	if f.Status != "" {
		w.add("status = $%d", f.Status)
	}
	if f.WorkType != "" {
		w.add("work_type = $%d", f.WorkType)
	}
	if f.ScheduleID != nil {
		w.add("schedule_id = $%d", *f.ScheduleID)
	}
	return selectAll[workorder.WorkOrder](ctx, r.s.q(ctx), `SELECT `+workOrderCols+` FROM work_orders`+w.where()+` ORDER BY created_at DESC, id`, w.args...)
}

// GetWorkOrder returns an active order.
func (r *WorkOrders) GetWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	return getOne[workorder.WorkOrder](ctx, r.s.q(ctx), "work_order_not_found", "Work order not found",
		`SELECT `+workOrderCols+` FROM work_orders WHERE id = $1`, id)
}

// LockWorkOrder returns an active order locked until the transaction ends.
func (r *WorkOrders) LockWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	return getOne[workorder.WorkOrder](ctx, r.s.q(ctx), "work_order_not_found", "Work order not found",
		`SELECT `+workOrderCols+` FROM work_orders WHERE id = $1 FOR UPDATE`, id)
}

// DeleteWorkOrder hard-deletes an active order; targeting goes by cascade.
func (r *WorkOrders) DeleteWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	return getOne[workorder.WorkOrder](ctx, r.s.q(ctx), "work_order_not_found", "Work order not found",
		`DELETE FROM work_orders WHERE id = $1 RETURNING `+workOrderCols, id)
}

// PendingForAgent lists the PENDING orders the agent is eligible for,
// oldest first.
func (r *WorkOrders) PendingForAgent(ctx context.Context, agentID uuid.UUID, workType string) ([]workorder.WorkOrder, error) {
	return selectAll[workorder.WorkOrder](ctx, r.s.q(ctx), `SELECT `+prefixed("wo.", workOrderCols)+` FROM work_orders wo
		WHERE wo.status = 'PENDING' AND ($2 = '' OR wo.work_type = $2) AND `+eligibleFor(1)+`
		ORDER BY wo.created_at, wo.id`, agentID, workType)
}

// ClaimWorkOrder is the claim: one UPDATE whose WHERE re-checks PENDING and
// eligibility. Concurrent claimers queue on the row lock and every one
// after the first finds the row no longer PENDING, so exactly one wins.
func (r *WorkOrders) ClaimWorkOrder(ctx context.Context, id, agentID uuid.UUID) (workorder.WorkOrder, error) {
	return getOne[workorder.WorkOrder](ctx, r.s.q(ctx), "work_order_not_claimable", "Work order not found or not claimable",
		`UPDATE work_orders wo SET status = 'CLAIMED', claimed_by = $2, claimed_at = now(),
			progress_message = NULL, progress_percent = NULL, progress_updated_at = NULL
		WHERE wo.id = $1 AND wo.status = 'PENDING' AND `+eligibleFor(2)+`
		RETURNING `+prefixed("wo.", workOrderCols), id, agentID)
}

// ReportProgress stores a progress report on an order CLAIMED by agentID.
func (r *WorkOrders) ReportProgress(ctx context.Context, id, agentID uuid.UUID, message *string, percent *int) (workorder.WorkOrder, bool, error) {
	var w workorder.WorkOrder
	err := r.s.q(ctx).GetContext(ctx, &w, `UPDATE work_orders SET progress_message = $3, progress_percent = $4,
			progress_updated_at = now()
		WHERE id = $1 AND status = 'CLAIMED' AND claimed_by = $2 RETURNING `+workOrderCols, id, agentID, message, percent)
	if err == nil {
		return w, true, nil
	}
	if !isNoRows(err) {
		return workorder.WorkOrder{}, false, mapErr(err)
	}
	cur, err := r.GetWorkOrder(ctx, id)
	return cur, false, err
}

// ScheduleRetry moves an order to RETRY_PENDING with retry n due after
// 2^n × backoff_seconds by the database clock.
func (r *WorkOrders) ScheduleRetry(ctx context.Context, id uuid.UUID, n int, lastError string) (workorder.WorkOrder, error) {
	return getOne[workorder.WorkOrder](ctx, r.s.q(ctx), "work_order_not_found", "Work order not found",
		`UPDATE work_orders SET status = 'RETRY_PENDING', retry_count = $2,
			next_retry_after = now() + make_interval(secs => backoff_seconds * power(2, $2::int)),
			claimed_by = NULL, claimed_at = NULL, last_error = $3, last_error_at = now(),
			progress_message = NULL, progress_percent = NULL, progress_updated_at = NULL
		WHERE id = $1 RETURNING `+workOrderCols, id, n, lastError)
}

// MoveToLog deletes the active order and writes its log entry, in one
// statement.
func (r *WorkOrders) MoveToLog(ctx context.Context, id uuid.UUID, success bool, message *string, retries int) (workorder.LogEntry, error) {
	return getOne[workorder.LogEntry](ctx, r.s.q(ctx), "work_order_not_found", "Work order not found",
		`WITH moved AS (DELETE FROM work_orders WHERE id = $1 RETURNING *)
		INSERT INTO work_order_log (id, work_type, created_at, claimed_at, claimed_by, success, retries_attempted,
			result_message, yaml_content, schedule_id, scheduled_at)
		SELECT id, work_type, created_at, claimed_at, claimed_by, $2, $3, $4, yaml_content, schedule_id, scheduled_at
		FROM moved RETURNING `+workOrderLogCols, id, success, retries, message)
}

// ListLog returns log entries matching f, newest first.
func (r *WorkOrders) ListLog(ctx context.Context, f workorders.LogFilter) ([]workorder.LogEntry, error) {
	var w filter
	if f.WorkType != "" {
		w.add("work_type = $%d", f.WorkType)
	}
	if f.Success != nil {
		w.add("success = $%d", *f.Success)
	}
	if f.AgentID != nil {
		w.add("claimed_by = $%d", *f.AgentID)
	}
	if f.ScheduleID != nil {
		w.add("schedule_id = $%d", *f.ScheduleID)
	}
	q := `SELECT ` + workOrderLogCols + ` FROM work_order_log` + w.where() + " ORDER BY completed_at DESC, id"
	if f.Limit != nil {
		q += fmt.Sprintf(" LIMIT $%d", w.arg(*f.Limit))
	}
	return selectAll[workorder.LogEntry](ctx, r.s.q(ctx), q, w.args...)
}

// GetLogEntry returns one log entry.
func (r *WorkOrders) GetLogEntry(ctx context.Context, id uuid.UUID) (workorder.LogEntry, error) {
	return getOne[workorder.LogEntry](ctx, r.s.q(ctx), "work_order_log_entry_not_found", "Work order log entry not found",
		`SELECT `+workOrderLogCols+` FROM work_order_log WHERE id = $1`, id)
}

// ReleaseRetry moves order id back to PENDING if it still waits for retry n
// and that retry is due.
func (r *WorkOrders) ReleaseRetry(ctx context.Context, id uuid.UUID, n int) (bool, *time.Time, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `UPDATE work_orders SET status = 'PENDING', next_retry_after = NULL
		WHERE id = $1 AND status = 'RETRY_PENDING' AND retry_count = $2 AND next_retry_after <= now()`, id, n)
	if err != nil {
		return false, nil, mapErr(err)
	}
	if rows, _ := res.RowsAffected(); rows == 1 {
		return true, nil, nil
	}
	var due []time.Time
	if err := r.s.q(ctx).SelectContext(ctx, &due, `SELECT next_retry_after FROM work_orders
		WHERE id = $1 AND status = 'RETRY_PENDING' AND retry_count = $2`, id, n); err != nil {
		return false, nil, mapErr(err)
	}
	if len(due) == 1 {
		return false, &due[0], nil
	}
	return false, nil, nil
}

// ReleaseDueRetries releases up to limit due RETRY_PENDING orders.
func (r *WorkOrders) ReleaseDueRetries(ctx context.Context, limit int) (int, error) {
	res, err := r.s.q(ctx).ExecContext(ctx, `WITH due AS (
			SELECT id FROM work_orders WHERE status = 'RETRY_PENDING' AND next_retry_after <= now()
			ORDER BY next_retry_after LIMIT $1 FOR UPDATE SKIP LOCKED)
		UPDATE work_orders wo SET status = 'PENDING', next_retry_after = NULL FROM due WHERE wo.id = due.id`, limit)
	if err != nil {
		return 0, mapErr(err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// LockStaleClaims locks up to limit claims that outlived their timeout,
// counted from the claim or the latest progress report.
func (r *WorkOrders) LockStaleClaims(ctx context.Context, limit int) ([]workorder.WorkOrder, error) {
	return selectAll[workorder.WorkOrder](ctx, r.s.q(ctx), `SELECT `+workOrderCols+` FROM work_orders
		WHERE status = 'CLAIMED'
		  AND GREATEST(claimed_at, progress_updated_at) + make_interval(secs => claim_timeout_seconds) < now()
		ORDER BY claimed_at LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
}
