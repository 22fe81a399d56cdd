// Package tasks is the work-order-scheduler's driving adapter: the asynq
// handlers that call the work-order, schedule and housekeeping use cases,
// and the periodic scheduler that enqueues them. Every replica runs both;
// the use cases make concurrent runs safe (single guarded statements, SKIP
// LOCKED, a unique key per schedule window), so replicas need no leader.
package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	asynqlib "github.com/hibiken/asynq"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// Options configure a Scheduler.
type Options struct {
	Conn  asynqlib.RedisConnOpt
	Queue string
	// Concurrency is how many tasks run at once.
	Concurrency int
	// PollInterval: how often the worker looks for due tasks (0: 1 s).
	PollInterval time.Duration
	// SyncInterval: how often the periodic task list is re-read from the
	// live settings (0: 10 s).
	SyncInterval time.Duration
	// Settings returns the live configuration (config.Store.Current).
	Settings func() config.Settings
	Log      *slog.Logger
	Metrics  *Metrics
	// Rollouts advances progressive rollouts (nil: no rollout tasks).
	Rollouts *rollouts.Service
}

// Scheduler is one replica: an asynq worker plus a periodic scheduler.
type Scheduler struct {
	orders    *workorders.Service
	schedules *workorders.Schedules
	house     *housekeeping.Service
	rollouts  *rollouts.Service
	settings  func() config.Settings
	metrics   *Metrics
	log       *slog.Logger

	worker   *asynqadapter.Worker
	periodic *asynqadapter.Periodic
}

// New builds a replica.
func New(orders *workorders.Service, schedules *workorders.Schedules, house *housekeeping.Service, o Options) (*Scheduler, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	s := &Scheduler{orders: orders, schedules: schedules, house: house, rollouts: o.Rollouts, settings: o.Settings,
		metrics: o.Metrics, log: log}
	s.worker = asynqadapter.NewWorker(o.Conn, o.Queue, asynqadapter.WorkerOptions{
		Concurrency: o.Concurrency, PollInterval: o.PollInterval, Logger: log, Observe: o.Metrics.observe})
	s.worker.Handle(asynqadapter.TypeReleaseRetry, s.releaseRetry)
	s.worker.Handle(asynqadapter.TypeWorkOrderMaintenance, s.workOrderMaintenance)
	s.worker.Handle(asynqadapter.TypeScheduleTick, s.scheduleTick)
	s.worker.Handle(asynqadapter.TypeDiagnosticsCleanup, s.diagnostics)
	s.worker.Handle(asynqadapter.TypeAuditRetention, s.auditRetention)
	s.worker.Handle(asynqadapter.TypeIdempotencyKeys, s.idempotencyKeys)
	s.worker.Handle(asynqadapter.TypeTelemetrySweep, s.telemetry)
	if s.rollouts != nil {
		s.worker.Handle(asynqadapter.TypeRolloutAdvance, s.rolloutAdvance)
		s.worker.Handle(asynqadapter.TypeRolloutWake, s.rolloutWake)
	}
	p, err := asynqadapter.NewPeriodic(o.Conn, o.Queue, s.periodicTasks, o.SyncInterval, log)
	if err != nil {
		return nil, err
	}
	s.periodic = p
	return s, nil
}

// periodicTasks reads the intervals from the live settings, so a reloaded
// interval applies at the next sync.
func (s *Scheduler) periodicTasks() []asynqadapter.PeriodicTask {
	cfg := s.settings()
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	out := []asynqadapter.PeriodicTask{
		{Type: asynqadapter.TypeWorkOrderMaintenance, Every: sec(cfg.Scheduler.MaintenanceIntervalSeconds)},
		{Type: asynqadapter.TypeScheduleTick, Every: sec(cfg.Scheduler.ScheduleIntervalSeconds)},
		{Type: asynqadapter.TypeDiagnosticsCleanup, Every: sec(cfg.Broker.DiagnosticCleanupIntervalSeconds)},
		{Type: asynqadapter.TypeAuditRetention, Every: sec(cfg.Scheduler.AuditCleanupIntervalSeconds)},
		{Type: asynqadapter.TypeIdempotencyKeys, Every: sec(cfg.Scheduler.MaintenanceIntervalSeconds)},
		{Type: asynqadapter.TypeTelemetrySweep, Every: sec(cfg.Broker.TelemetrySweepIntervalSeconds)},
	}
	if s.rollouts != nil && cfg.Scheduler.RolloutIntervalSeconds > 0 {
		out = append(out, asynqadapter.PeriodicTask{Type: asynqadapter.TypeRolloutAdvance, Every: sec(cfg.Scheduler.RolloutIntervalSeconds)})
	}
	return out
}

// Start starts the worker, then the periodic scheduler (which runs every
// periodic task once right away).
func (s *Scheduler) Start(ctx context.Context) error {
	if err := s.worker.Start(); err != nil {
		return err
	}
	if err := s.periodic.Start(ctx); err != nil {
		s.worker.Shutdown()
		return err
	}
	return nil
}

// Shutdown stops enqueuing, then drains running tasks. Tasks that do not
// finish go back to the queue for another replica or the next start.
func (s *Scheduler) Shutdown() {
	s.periodic.Shutdown()
	s.worker.Shutdown()
}

// Ping checks Redis (readiness).
func (s *Scheduler) Ping() error { return s.worker.Ping() }

func (s *Scheduler) releaseRetry(ctx context.Context, payload []byte) error {
	var p asynqadapter.RetryPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("bad release payload: %v: %w", err, asynqlib.SkipRetry)
	}
	id, err := uuid.Parse(p.WorkOrderID)
	if err != nil {
		return fmt.Errorf("bad work order id %q: %w", p.WorkOrderID, asynqlib.SkipRetry)
	}
	released, due, err := s.orders.ReleaseRetry(ctx, id, p.RetryCount)
	if err != nil {
		return err
	}
	switch {
	case released:
		s.metrics.released.WithLabelValues("timer").Inc()
		s.log.DebugContext(ctx, "retry released", "work_order_id", id, "retry_count", p.RetryCount)
	case due != nil:
		// The timer fired before the database's clock says the retry is
		// due (clock skew): run again then.
		return &asynqadapter.RetryAt{At: *due}
	}
	return nil
}

func (s *Scheduler) workOrderMaintenance(ctx context.Context, _ []byte) error {
	expired, err := s.orders.ExpireStaleClaims(ctx)
	s.metrics.expired.Add(float64(expired))
	if expired > 0 {
		s.log.InfoContext(ctx, "stale claims expired", "count", expired)
	}
	released, serr := s.orders.SweepRetries(ctx)
	s.metrics.released.WithLabelValues("sweep").Add(float64(released))
	if released > 0 {
		s.log.InfoContext(ctx, "due retries released by the sweep", "count", released)
	}
	if err != nil {
		return err
	}
	return serr
}

func (s *Scheduler) scheduleTick(ctx context.Context, _ []byte) error {
	res, err := s.schedules.Tick(ctx)
	s.metrics.scheduleRuns.WithLabelValues("created").Add(float64(res.Fired))
	s.metrics.scheduleRuns.WithLabelValues("skipped").Add(float64(res.Skipped))
	return err
}

func (s *Scheduler) diagnostics(ctx context.Context, _ []byte) error {
	res, err := s.house.ExpireDiagnostics(ctx)
	if res.Skipped {
		s.log.DebugContext(ctx, "diagnostics housekeeping skipped: no diagnostics tables in this schema")
		return err
	}
	s.purgedRows(ctx, "diagnostic requests cleaned up",
		purged{"diagnostics_expired", "expired", res.Expired}, purged{"diagnostics_deleted", "deleted", res.Deleted})
	return err
}

func (s *Scheduler) auditRetention(ctx context.Context, _ []byte) error {
	n, err := s.house.PurgeAuditLogs(ctx)
	s.purgedRows(ctx, "audit entries past retention deleted", purged{"audit_logs_deleted", "count", n})
	return err
}

func (s *Scheduler) idempotencyKeys(ctx context.Context, _ []byte) error {
	n, err := s.house.PurgeIdempotencyKeys(ctx)
	s.purgedRows(ctx, "idempotency keys past their window deleted", purged{"idempotency_keys_deleted", "count", n})
	return err
}

// purged is one count of rows a housekeeping task removed: kind is its
// brokkr_housekeeping_rows_total label, key its key in the log line.
type purged struct {
	kind, key string
	n         int
}

// purgedRows records each count in brokkr_housekeeping_rows_total and,
// when any is above zero, logs msg with all of them. Callers run it before
// returning the task's error: the batches removed before a failure still
// count.
func (s *Scheduler) purgedRows(ctx context.Context, msg string, counts ...purged) {
	total := 0
	args := make([]any, 0, 2*len(counts))
	for _, c := range counts {
		s.metrics.purged.WithLabelValues(c.kind).Add(float64(c.n))
		total += c.n
		args = append(args, c.key, c.n)
	}
	if total > 0 {
		s.log.InfoContext(ctx, msg, args...)
	}
}

func (s *Scheduler) telemetry(ctx context.Context, _ []byte) error {
	res, err := s.house.SweepTelemetry(ctx)
	s.purgedRows(ctx, "stack telemetry past its window or row cap deleted",
		purged{"telemetry_expired", "expired", res.Expired}, purged{"telemetry_capped", "capped", res.Capped})
	return err
}

// rolloutAdvance advances every progressing rollout; replicas running it
// at once skip the rollouts another holds (docs/rollouts.md#advancing).
func (s *Scheduler) rolloutAdvance(ctx context.Context, _ []byte) error {
	n, err := s.rollouts.AdvanceAll(ctx)
	if n > 0 {
		s.log.DebugContext(ctx, "rollouts advanced", "count", n)
	}
	return err
}

// rolloutWake advances one stack's rollout after an agent reported on it.
func (s *Scheduler) rolloutWake(ctx context.Context, payload []byte) error {
	var p asynqadapter.WakePayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("bad wake payload: %v: %w", err, asynqlib.SkipRetry)
	}
	id, err := uuid.Parse(p.StackID)
	if err != nil {
		return fmt.Errorf("bad stack id %q: %w", p.StackID, asynqlib.SkipRetry)
	}
	_, err = s.rollouts.WakeStack(ctx, id)
	return err
}

// Retention adapts the live settings to the housekeeping use case.
func Retention(settings func() config.Settings) func() housekeeping.Retention {
	return func() housekeeping.Retention {
		b := settings().Broker
		return housekeeping.Retention{
			DiagnosticMaxAge: time.Duration(b.DiagnosticMaxAgeHours) * time.Hour,
			AuditLog:         time.Duration(b.AuditLogRetentionDays) * 24 * time.Hour,
			IdempotencyKeys:  time.Duration(b.IdempotencyKeyTTLHours) * time.Hour,
			Telemetry:        time.Duration(b.TelemetryRetentionSeconds) * time.Second,
			TelemetryRowCap:  b.TelemetryMaxRowsPerStack,
		}
	}
}
