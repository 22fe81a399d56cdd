package workorders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// ScheduleRepository stores work-order schedules.
type ScheduleRepository interface {
	// CreateSchedule inserts s, filling id and timestamps; domain.ErrConflict
	// when the name is taken.
	CreateSchedule(ctx context.Context, s *workorder.Schedule) error
	// ListSchedules returns every schedule by name.
	ListSchedules(ctx context.Context) ([]workorder.Schedule, error)
	// GetSchedule returns a schedule (404 "Schedule not found").
	GetSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error)
	// LockSchedule is GetSchedule with a row lock held to the end of the
	// transaction: firing and editing a schedule serialise on it.
	LockSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error)
	// SaveSchedule writes back every field of a locked schedule.
	SaveSchedule(ctx context.Context, s *workorder.Schedule) error
	DeleteSchedule(ctx context.Context, id uuid.UUID) (workorder.Schedule, error)
}

// RunRepository records the windows a schedule fired and finds the orders
// it has open.
type RunRepository interface {
	// ListScheduleRuns returns up to limit runs, newest window first.
	ListScheduleRuns(ctx context.Context, id uuid.UUID, limit int) ([]workorder.Run, error)
	// OpenScheduleOrders locks the schedule's active orders, oldest first.
	OpenScheduleOrders(ctx context.Context, id uuid.UUID) ([]workorder.WorkOrder, error)
	// InsertScheduleRun records a fired window; false when that window of
	// the schedule is already recorded (fired by another replica).
	InsertScheduleRun(ctx context.Context, r *workorder.Run) (bool, error)
	// MarkScheduled moves last_scheduled_at forward to at (never back).
	MarkScheduled(ctx context.Context, id uuid.UUID, at time.Time) error
}

// ScheduleRepos is the persistence the schedule use cases need, sharing the
// transaction Tx opens.
type ScheduleRepos struct {
	Tx        journal.Transactor
	Journal   journal.Recorder
	Schedules ScheduleRepository
	Runs      RunRepository
}

// Clock tells the time; schedules are evaluated against it so tests can
// move time by hand.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// Schedules implements the schedule use cases: CRUD for the admin, and
// Tick, which the work-order-scheduler runs every second or so.
type Schedules struct {
	repos  ScheduleRepos
	orders *Service
	clock  Clock
	log    *slog.Logger

	mu    sync.Mutex
	noted map[uuid.UUID]string // last skip reason logged per schedule
}

// NewSchedules wires the schedule use cases.
func NewSchedules(repos ScheduleRepos, orders *Service, clock Clock, log *slog.Logger) *Schedules {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Schedules{repos: repos, orders: orders, clock: clock, log: log, noted: map[uuid.UUID]string{}}
}

const msgScheduleName = "A schedule with this name already exists"

// ScheduleInput is the body of POST /work-order-schedules; Template carries
// the defaults for omitted retry settings. Enabled nil means true.
type ScheduleInput struct {
	Name              string
	Description       *string
	CronExpression    string
	TimeZone          string
	Enabled           *bool
	ConcurrencyPolicy string
	Template          workorder.Template
	Targeting         workorder.Targeting
}

// CreateSchedule stores a validated schedule (admin only). Its first window
// is the first match after now: nothing before creation fires.
func (s *Schedules) CreateSchedule(ctx context.Context, p identity.Principal, in ScheduleInput) (workorder.Schedule, error) {
	if !p.IsAdmin() {
		return workorder.Schedule{}, errAdminOnly
	}
	now := s.clock.Now()
	enabled := in.Enabled == nil || *in.Enabled
	spec := workorder.ScheduleSpec{Name: in.Name, Description: in.Description, CronExpression: in.CronExpression,
		TimeZone: in.TimeZone, Enabled: enabled, ConcurrencyPolicy: in.ConcurrencyPolicy, Template: in.Template,
		Targeting: in.Targeting.Normalize()}
	if err := spec.Validate(now); err != nil {
		return workorder.Schedule{}, err
	}
	sc := workorder.Schedule{Name: spec.Name, Description: spec.Description, CronExpression: spec.CronExpression,
		TimeZone: spec.TimeZone, Enabled: spec.Enabled, ConcurrencyPolicy: spec.ConcurrencyPolicy,
		Template: spec.Template, Targeting: spec.Targeting, AnchorAt: now.UTC()}
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.orders.requireAgents(ctx, sc.Targeting.AgentIDs); err != nil {
			return err
		}
		if err := s.repos.Schedules.CreateSchedule(ctx, &sc); err != nil {
			return domain.Rephrase(err, domain.ErrConflict, msgScheduleName)
		}
		ev := event.New(workorder.EventScheduleCreated, map[string]any{"schedule_id": sc.ID, "name": sc.Name,
			"cron_expression": sc.CronExpression, "time_zone": sc.TimeZone, "enabled": sc.Enabled,
			"concurrency_policy": sc.ConcurrencyPolicy, "work_type": sc.WorkType, "created_at": sc.CreatedAt})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, workorder.ActionScheduleCreated, workorder.ResourceSchedule, sc.ID,
			map[string]any{"name": sc.Name, "cron_expression": sc.CronExpression, "time_zone": sc.TimeZone,
				"enabled": sc.Enabled, "concurrency_policy": sc.ConcurrencyPolicy, "work_type": sc.WorkType}), &ev)
	})
	if err != nil {
		return workorder.Schedule{}, err
	}
	return s.present(sc, now), nil
}

// ListSchedules returns every schedule (admin only).
func (s *Schedules) ListSchedules(ctx context.Context, p identity.Principal) ([]workorder.Schedule, error) {
	if !p.IsAdmin() {
		return nil, errAdminOnly
	}
	out, err := s.repos.Schedules.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	for i := range out {
		out[i] = s.present(out[i], now)
	}
	return out, nil
}

// GetSchedule returns one schedule (admin only).
func (s *Schedules) GetSchedule(ctx context.Context, p identity.Principal, id uuid.UUID) (workorder.Schedule, error) {
	if !p.IsAdmin() {
		return workorder.Schedule{}, errAdminOnly
	}
	sc, err := s.repos.Schedules.GetSchedule(ctx, id)
	if err != nil {
		return sc, err
	}
	return s.present(sc, s.clock.Now()), nil
}

// ScheduleUpdate is a partial update: nil fields are unchanged; Targeting,
// when given, replaces the whole targeting.
type ScheduleUpdate struct {
	Name                *string
	Description         *string
	ClearDescription    bool
	CronExpression      *string
	TimeZone            *string
	Enabled             *bool
	ConcurrencyPolicy   *string
	WorkType            *string
	YAMLContent         *string
	MaxRetries          *int
	BackoffSeconds      *int
	ClaimTimeoutSeconds *int
	Targeting           *workorder.Targeting
}

// UpdateSchedule changes a schedule (admin only). Changing the expression
// or zone, or enabling it, restarts its windows from now, so no window from
// before the change fires as "missed". Orders already made are untouched.
func (s *Schedules) UpdateSchedule(ctx context.Context, p identity.Principal, id uuid.UUID, in ScheduleUpdate) (workorder.Schedule, error) {
	if !p.IsAdmin() {
		return workorder.Schedule{}, errAdminOnly
	}
	return s.edit(ctx, p, id, workorder.ActionScheduleUpdated, func(sc *workorder.Schedule) {
		set(&sc.Name, in.Name)
		set(&sc.CronExpression, in.CronExpression)
		set(&sc.TimeZone, in.TimeZone)
		set(&sc.Enabled, in.Enabled)
		set(&sc.ConcurrencyPolicy, in.ConcurrencyPolicy)
		set(&sc.WorkType, in.WorkType)
		set(&sc.YAMLContent, in.YAMLContent)
		set(&sc.MaxRetries, in.MaxRetries)
		set(&sc.BackoffSeconds, in.BackoffSeconds)
		set(&sc.ClaimTimeoutSeconds, in.ClaimTimeoutSeconds)
		if in.Description != nil {
			sc.Description = in.Description
		}
		if in.ClearDescription {
			sc.Description = nil
		}
		if in.Targeting != nil {
			sc.Targeting = in.Targeting.Normalize()
		}
	})
}

// SetEnabled enables or disables a schedule (admin only).
func (s *Schedules) SetEnabled(ctx context.Context, p identity.Principal, id uuid.UUID, enabled bool) (workorder.Schedule, error) {
	if !p.IsAdmin() {
		return workorder.Schedule{}, errAdminOnly
	}
	action := workorder.ActionScheduleDisabled
	if enabled {
		action = workorder.ActionScheduleEnabled
	}
	return s.edit(ctx, p, id, action, func(sc *workorder.Schedule) { sc.Enabled = enabled })
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// edit applies change to the locked schedule, validates the result and
// writes it with its audit entry and event.
func (s *Schedules) edit(ctx context.Context, p identity.Principal, id uuid.UUID, action string, change func(*workorder.Schedule)) (workorder.Schedule, error) {
	now := s.clock.Now()
	var sc workorder.Schedule
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if sc, err = s.repos.Schedules.LockSchedule(ctx, id); err != nil {
			return err
		}
		before := sc
		change(&sc)
		spec := workorder.ScheduleSpec{Name: sc.Name, Description: sc.Description, CronExpression: sc.CronExpression,
			TimeZone: sc.TimeZone, Enabled: sc.Enabled, ConcurrencyPolicy: sc.ConcurrencyPolicy, Template: sc.Template,
			Targeting: sc.Targeting}
		if err := spec.Validate(now); err != nil {
			return err
		}
		sc.TimeZone, sc.ConcurrencyPolicy = spec.TimeZone, spec.ConcurrencyPolicy
		if sc.CronExpression != before.CronExpression || sc.TimeZone != before.TimeZone || (sc.Enabled && !before.Enabled) {
			sc.AnchorAt = now.UTC()
		}
		if err := s.orders.requireAgents(ctx, newAgents(before.Targeting.AgentIDs, sc.Targeting.AgentIDs)); err != nil {
			return err
		}
		if err := s.repos.Schedules.SaveSchedule(ctx, &sc); err != nil {
			return domain.Rephrase(err, domain.ErrConflict, msgScheduleName)
		}
		ev := event.New(workorder.EventScheduleUpdated, map[string]any{"schedule_id": sc.ID, "name": sc.Name,
			"cron_expression": sc.CronExpression, "time_zone": sc.TimeZone, "enabled": sc.Enabled,
			"concurrency_policy": sc.ConcurrencyPolicy, "updated_at": sc.UpdatedAt})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, action, workorder.ResourceSchedule, sc.ID,
			map[string]any{"name": sc.Name, "cron_expression": sc.CronExpression, "time_zone": sc.TimeZone,
				"enabled": sc.Enabled, "concurrency_policy": sc.ConcurrencyPolicy}), &ev)
	})
	if err != nil {
		return workorder.Schedule{}, err
	}
	return s.present(sc, now), nil
}

// newAgents returns the ids in after that are not in before: only agents
// added by an edit must exist; a schedule keeps working when an agent it
// targeted is deleted.
func newAgents(before, after []uuid.UUID) []uuid.UUID {
	had := map[uuid.UUID]bool{}
	for _, id := range before {
		had[id] = true
	}
	var out []uuid.UUID
	for _, id := range after {
		if !had[id] {
			out = append(out, id)
		}
	}
	return out
}

// DeleteSchedule removes a schedule and its run history (admin only).
// Its open orders stay; they and the log keep the schedule id.
func (s *Schedules) DeleteSchedule(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if !p.IsAdmin() {
		return errAdminOnly
	}
	return s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		sc, err := s.repos.Schedules.DeleteSchedule(ctx, id)
		if err != nil {
			return err
		}
		ev := event.New(workorder.EventScheduleDeleted, map[string]any{"schedule_id": sc.ID, "name": sc.Name,
			"deleted_at": time.Now().UTC()})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, workorder.ActionScheduleDeleted, workorder.ResourceSchedule, sc.ID,
			map[string]any{"name": sc.Name}), &ev)
	})
}

// Runs lists a schedule's fired windows, newest first (admin only).
func (s *Schedules) Runs(ctx context.Context, p identity.Principal, id uuid.UUID, limit int) ([]workorder.Run, error) {
	if !p.IsAdmin() {
		return nil, errAdminOnly
	}
	if limit < 0 {
		return nil, domain.Invalid("limit must not be negative")
	}
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	if _, err := s.repos.Schedules.GetSchedule(ctx, id); err != nil {
		return nil, err
	}
	return s.repos.Runs.ListScheduleRuns(ctx, id, limit)
}

// present fills the computed next_run_at.
func (s *Schedules) present(sc workorder.Schedule, now time.Time) workorder.Schedule {
	sc.NextRunAt = nil
	if !sc.Enabled {
		return sc
	}
	c, err := workorder.ParseCron(sc.CronExpression, sc.TimeZone)
	if err != nil {
		return sc
	}
	if due, ok := c.LatestDue(sc.From(), now); ok {
		sc.NextRunAt = &due
		return sc
	}
	from := sc.From()
	if now.After(from) {
		from = now
	}
	if n := c.Next(from); !n.IsZero() {
		sc.NextRunAt = &n
	}
	return sc
}

// TickResult counts what one evaluation did.
type TickResult struct {
	Fired   int // windows that created a work order
	Skipped int // windows skipped by the Forbid policy
}

// errFiredElsewhere rolls back a fire that another replica already made.
var errFiredElsewhere = errors.New("window already fired")

// Tick evaluates every schedule against the clock and fires each one that
// has a due window: once, for its latest window, however many were missed
// (seed 002). Replicas may tick at the same time: a fire locks the
// schedule row and records (schedule, window) under a unique key, so each
// window yields at most one work order. Disabled schedules and ones whose
// expression no longer parses are skipped with a logged reason.
func (s *Schedules) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	now := s.clock.Now()
	all, err := s.repos.Schedules.ListSchedules(ctx)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, sc := range all {
		if !sc.Enabled {
			s.note(sc, slog.LevelDebug, "disabled")
			continue
		}
		c, err := workorder.ParseCron(sc.CronExpression, sc.TimeZone)
		if err != nil {
			s.note(sc, slog.LevelWarn, "invalid cron expression or time zone: "+err.Error())
			continue
		}
		s.note(sc, slog.LevelDebug, "")
		if _, ok := c.LatestDue(sc.From(), now); !ok {
			continue
		}
		created, err := s.fire(ctx, sc.ID, now)
		switch {
		case errors.Is(err, errFiredElsewhere):
		case err != nil:
			s.log.ErrorContext(ctx, "schedule fire failed", "schedule_id", sc.ID, "error", err)
			errs = append(errs, err)
		case created:
			res.Fired++
		default:
			res.Skipped++
		}
	}
	return res, errors.Join(errs...)
}

// note logs why a schedule is skipped, once per reason change, so a tick
// every second does not repeat it.
func (s *Schedules) note(sc workorder.Schedule, level slog.Level, reason string) {
	s.mu.Lock()
	prev, seen := s.noted[sc.ID]
	s.noted[sc.ID] = reason
	s.mu.Unlock()
	if reason == "" || (seen && prev == reason) {
		return
	}
	s.log.Log(context.Background(), level, "schedule skipped", "schedule_id", sc.ID, "schedule", sc.Name, "reason", reason)
}

// fire handles the latest due window of one schedule in one transaction:
// lock the schedule, re-check the window against the locked row, apply the
// concurrency policy, create the order, record the run and advance
// last_scheduled_at. created is false when the policy skipped the window.
func (s *Schedules) fire(ctx context.Context, id uuid.UUID, now time.Time) (created bool, err error) {
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		sc, err := s.repos.Schedules.LockSchedule(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			return errFiredElsewhere // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if !sc.Enabled {
			return errFiredElsewhere
		}
		c, err := workorder.ParseCron(sc.CronExpression, sc.TimeZone)
		if err != nil {
			return errFiredElsewhere
		}
		due, ok := c.LatestDue(sc.From(), now)
		if !ok {
			return errFiredElsewhere // another replica fired it first
		}
		open, err := s.repos.Runs.OpenScheduleOrders(ctx, sc.ID)
		if err != nil {
			return err
		}
		run := workorder.Run{ScheduleID: sc.ID, ScheduledAt: due, Status: workorder.RunCreated}
		switch {
		case sc.ConcurrencyPolicy == workorder.PolicyForbid && len(open) > 0:
			msg := fmt.Sprintf("skipped: work order %s of an earlier run is still %s (concurrency policy Forbid)",
				open[0].ID, open[0].Status)
			run.Status, run.Message = workorder.RunSkipped, &msg
		case sc.ConcurrencyPolicy == workorder.PolicyReplace && len(open) > 0:
			for _, w := range open {
				if _, err := s.orders.cancel(ctx, System, w.ID, "replaced by the schedule's run at "+due.Format(time.RFC3339)); err != nil {
					return err
				}
			}
			msg := fmt.Sprintf("replaced %d open work order(s) (concurrency policy Replace)", len(open))
			run.Message = &msg
		}
		if run.Status == workorder.RunCreated {
			w, err := s.orders.create(ctx, System, sc.Template, sc.Targeting, &origin{scheduleID: sc.ID, scheduledAt: due})
			if err != nil {
				return err
			}
			run.WorkOrderID = &w.ID
		}
		ok, err = s.repos.Runs.InsertScheduleRun(ctx, &run)
		if err != nil {
			return err
		}
		if !ok {
			return errFiredElsewhere
		}
		created = run.Status == workorder.RunCreated
		return s.repos.Runs.MarkScheduled(ctx, sc.ID, due)
	})
	return created, err
}
