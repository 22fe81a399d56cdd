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

// scheduleRow is a work_order_schedules row; the targeting is the JSON the
// column holds.
type scheduleRow struct {
	ID                  uuid.UUID  `db:"id"`
	CreatedAt           time.Time  `db:"created_at"`
	UpdatedAt           time.Time  `db:"updated_at"`
	Name                string     `db:"name"`
	Description         *string    `db:"description"`
	CronExpression      string     `db:"cron_expression"`
	TimeZone            string     `db:"time_zone"`
	Enabled             bool       `db:"enabled"`
	ConcurrencyPolicy   string     `db:"concurrency_policy"`
	WorkType            string     `db:"work_type"`
	YAMLContent         string     `db:"yaml_content"`
	MaxRetries          int        `db:"max_retries"`
	BackoffSeconds      int        `db:"backoff_seconds"`
	ClaimTimeoutSeconds int        `db:"claim_timeout_seconds"`
	TargetingJSON       []byte     `db:"targeting"`
	AnchorAt            time.Time  `db:"anchor_at"`
	LastScheduledAt     *time.Time `db:"last_scheduled_at"`
}

func (r scheduleRow) schedule() (workorder.Schedule, error) {
	sc := workorder.Schedule{ID: r.ID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Name: r.Name,
		Description: r.Description, CronExpression: r.CronExpression, TimeZone: r.TimeZone, Enabled: r.Enabled,
		ConcurrencyPolicy: r.ConcurrencyPolicy, AnchorAt: r.AnchorAt, LastScheduledAt: r.LastScheduledAt,
		Template: workorder.Template{WorkType: r.WorkType, YAMLContent: r.YAMLContent, MaxRetries: r.MaxRetries,
			BackoffSeconds: r.BackoffSeconds, ClaimTimeoutSeconds: r.ClaimTimeoutSeconds}}
	if err := json.Unmarshal(r.TargetingJSON, &sc.Targeting); err != nil {
		return sc, fmt.Errorf("schedule %s: targeting: %w", sc.ID, err)
	}
	sc.Targeting = sc.Targeting.Normalize()
	return sc, nil
}

// runRow is a work_order_schedule_runs row.
type runRow struct {
	ID          uuid.UUID  `db:"id"`
	ScheduleID  uuid.UUID  `db:"schedule_id"`
	ScheduledAt time.Time  `db:"scheduled_at"`
	CreatedAt   time.Time  `db:"created_at"`
	Status      string     `db:"status"`
	WorkOrderID *uuid.UUID `db:"work_order_id"`
	Message     *string    `db:"message"`
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
	rows := []runRow{}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+runCols+` FROM work_order_schedule_runs
		WHERE schedule_id = $1 ORDER BY scheduled_at DESC LIMIT $2`, id, limit)
	out := make([]workorder.Run, len(rows))
	for i, run := range rows {
		out[i] = workorder.Run(run)
	}
	return out, mapErr(err)
}

// OpenScheduleOrders locks the schedule's active orders, oldest first.
func (r *Schedules) OpenScheduleOrders(ctx context.Context, id uuid.UUID) ([]workorder.WorkOrder, error) {
	rows := []workOrderRow{}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+workOrderCols+` FROM work_orders
		WHERE schedule_id = $1 ORDER BY created_at, id FOR UPDATE`, id)
	return workOrders(rows), mapErr(err)
}

// InsertScheduleRun records a fired window; false when that window is
// already recorded.
func (r *Schedules) InsertScheduleRun(ctx context.Context, run *workorder.Run) (bool, error) {
	var row runRow
	err := r.s.q(ctx).GetContext(ctx, &row, `INSERT INTO work_order_schedule_runs (schedule_id, scheduled_at, status, work_order_id, message)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (schedule_id, scheduled_at) DO NOTHING RETURNING `+runCols,
		run.ScheduleID, run.ScheduledAt, run.Status, run.WorkOrderID, run.Message)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, mapErr(err)
	}
	*run = workorder.Run(row)
	return true, nil
}

// MarkScheduled records the window a schedule last fired for.
func (r *Schedules) MarkScheduled(ctx context.Context, id uuid.UUID, at time.Time) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `UPDATE work_order_schedules
		SET last_scheduled_at = GREATEST(last_scheduled_at, $2) WHERE id = $1`, id, at)
	return mapErr(err)
}
