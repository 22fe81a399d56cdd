package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

const scheduleCols = `id, created_at, updated_at, name, description, cron_expression, time_zone, enabled,
	concurrency_policy, work_type, yaml_content, max_retries, backoff_seconds, claim_timeout_seconds,
	targeting, anchor_at, last_scheduled_at`

const runCols = `id, schedule_id, scheduled_at, created_at, status, work_order_id, message`

// scheduleRow is a schedule as scheduleCols selects it: the targeting
// column is a JSON document, decoded by schedule(); every other column
// scans into the embedded workorder.Schedule by name.
type scheduleRow struct {
	workorder.Schedule
	Targeting []byte
}

func (r scheduleRow) schedule() (workorder.Schedule, error) {
	sc := r.Schedule
	if err := json.Unmarshal(r.Targeting, &sc.Targeting); err != nil {
		return sc, fmt.Errorf("schedule %s: targeting: %w", sc.ID, err)
	}
	sc.Targeting = sc.Targeting.Normalize()
	return sc, nil
}

// Schedules is the repository of work-order schedules and the windows
// they fired.
type Schedules struct{ s *Store }

// NewSchedules returns the schedule repository over s.
func NewSchedules(s *Store) *Schedules { return &Schedules{s: s} }

func targetingJSON(t workorder.Targeting) (string, error) {
	b, err := json.Marshal(t.Normalize())
	return string(b), err
}

func (r *Schedules) getSchedule(ctx context.Context, query string, args ...any) (workorder.Schedule, error) {
	var row scheduleRow
	if err := r.s.q(ctx).GetContext(ctx, &row, query, args...); err != nil {
		return workorder.Schedule{}, notFound(err, "schedule_not_found", "Schedule not found")
	}
	return row.schedule()
}

// CreateSchedule inserts sc, filling id and timestamps.
func (r *Schedules) CreateSchedule(ctx context.Context, sc *workorder.Schedule) error {
	t, err := targetingJSON(sc.Targeting)
	if err != nil {
		return err
	}
	out, err := r.getSchedule(ctx, `INSERT INTO work_order_schedules (name, description, cron_expression, time_zone,
			enabled, concurrency_policy, work_type, yaml_content, max_retries, backoff_seconds, claim_timeout_seconds,
			targeting, anchor_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13) RETURNING `+scheduleCols,
		sc.Name, sc.Description, sc.CronExpression, sc.TimeZone, sc.Enabled, sc.ConcurrencyPolicy, sc.WorkType,
		sc.YAMLContent, sc.MaxRetries, sc.BackoffSeconds, sc.ClaimTimeoutSeconds, t, sc.AnchorAt)
	if err != nil {
		return err
	}
	*sc = out
	return nil
}

// ListSchedules returns every schedule by name.
func (r *Schedules) ListSchedules(ctx context.Context) ([]workorder.Schedule, error) {
	var rows []scheduleRow
	if err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+scheduleCols+` FROM work_order_schedules ORDER BY name, id`); err != nil {
		return nil, mapErr(err)
	}
	out := make([]workorder.Schedule, 0, len(rows))
	for _, row := range rows {
		sc, err := row.schedule()
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// GetSchedule returns one schedule.
func (r *Schedules) GetSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error) {
	return r.getSchedule(ctx, `SELECT `+scheduleCols+` FROM work_order_schedules WHERE id = $1`, id)
}

// LockSchedule returns one schedule locked until the transaction ends.
func (r *Schedules) LockSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error) {
	return r.getSchedule(ctx, `SELECT `+scheduleCols+` FROM work_order_schedules WHERE id = $1 FOR UPDATE`, id)
}

// SaveSchedule writes back every field of sc.
func (r *Schedules) SaveSchedule(ctx context.Context, sc *workorder.Schedule) error {
	t, err := targetingJSON(sc.Targeting)
	if err != nil {
		return err
	}
	out, err := r.getSchedule(ctx, `UPDATE work_order_schedules SET name = $2, description = $3, cron_expression = $4,
			time_zone = $5, enabled = $6, concurrency_policy = $7, work_type = $8, yaml_content = $9, max_retries = $10,
			backoff_seconds = $11, claim_timeout_seconds = $12, targeting = $13::jsonb, anchor_at = $14
		WHERE id = $1 RETURNING `+scheduleCols,
		sc.ID, sc.Name, sc.Description, sc.CronExpression, sc.TimeZone, sc.Enabled, sc.ConcurrencyPolicy, sc.WorkType,
		sc.YAMLContent, sc.MaxRetries, sc.BackoffSeconds, sc.ClaimTimeoutSeconds, t, sc.AnchorAt)
	if err != nil {
		return err
	}
	*sc = out
	return nil
}

// DeleteSchedule deletes a schedule; its runs go by cascade, its orders
// keep running with schedule_id cleared by the foreign key.
func (r *Schedules) DeleteSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error) {
	return r.getSchedule(ctx, `DELETE FROM work_order_schedules WHERE id = $1 RETURNING `+scheduleCols, id)
}

// ListScheduleRuns returns a schedule's runs, newest window first.
func (r *Schedules) ListScheduleRuns(ctx context.Context, id uuid.UUID, limit int) ([]workorder.Run, error) {
	return selectAll[workorder.Run](ctx, r.s.q(ctx), `SELECT `+runCols+` FROM work_order_schedule_runs
		WHERE schedule_id = $1 ORDER BY scheduled_at DESC LIMIT $2`, id, limit)
}

// OpenScheduleOrders locks the schedule's active orders, oldest first.
func (r *Schedules) OpenScheduleOrders(ctx context.Context, id uuid.UUID) ([]workorder.WorkOrder, error) {
	return selectAll[workorder.WorkOrder](ctx, r.s.q(ctx), `SELECT `+workOrderCols+` FROM work_orders
		WHERE schedule_id = $1 ORDER BY created_at, id FOR UPDATE`, id)
}

// InsertScheduleRun records a fired window; false when that window is
// already recorded.
func (r *Schedules) InsertScheduleRun(ctx context.Context, run *workorder.Run) (bool, error) {
	var stored workorder.Run
	err := r.s.q(ctx).GetContext(ctx, &stored, `INSERT INTO work_order_schedule_runs (schedule_id, scheduled_at, status, work_order_id, message)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (schedule_id, scheduled_at) DO NOTHING RETURNING `+runCols,
		run.ScheduleID, run.ScheduledAt, run.Status, run.WorkOrderID, run.Message)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, mapErr(err)
	}
	*run = stored
	return true, nil
}

// MarkScheduled records the window a schedule last fired for.
func (r *Schedules) MarkScheduled(ctx context.Context, id uuid.UUID, at time.Time) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `UPDATE work_order_schedules
		SET last_scheduled_at = GREATEST(last_scheduled_at, $2) WHERE id = $1`, id, at)
	return mapErr(err)
}
