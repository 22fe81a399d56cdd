package tasks

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Metrics are the scheduler's own Prometheus series.
type Metrics struct {
	tasks        *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	released     *prometheus.CounterVec
	expired      prometheus.Counter
	scheduleRuns *prometheus.CounterVec
	purged       *prometheus.CounterVec
}

// NewMetrics registers the series on reg (or reuses them when another
// replica in the same process registered them first).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := httpserver.NewFamilies(reg)
	m := &Metrics{
		tasks: f.CounterVec("brokkr_scheduler_tasks_total",
			"Tasks run by the work-order-scheduler, by type and outcome (ok, error).", "task", "outcome"),
		duration: f.HistogramVec("brokkr_scheduler_task_duration_seconds", "Run time of work-order-scheduler tasks.",
			[]float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "task"),
		released: f.CounterVec("brokkr_work_orders_released_total",
			"RETRY_PENDING work orders moved back to PENDING, by path (timer, sweep).", "path"),
		expired: f.Counter("brokkr_work_order_claims_expired_total",
			"Claims that outlived claim_timeout_seconds and counted as a failed attempt."),
		scheduleRuns: f.CounterVec("brokkr_work_order_schedule_runs_total",
			"Schedule windows handled by this replica, by status (created, skipped).", "status"),
		purged: f.CounterVec("brokkr_housekeeping_rows_total",
			"Rows changed by housekeeping, by kind (audit_logs_deleted, diagnostics_expired, diagnostics_deleted, idempotency_keys_deleted, telemetry_expired, telemetry_capped).", "kind"),
	}
	f.Must()
	return m
}

func (m *Metrics) observe(task string, took time.Duration, err error) {
	outcome := "ok"
	var later *asynqadapter.RetryAt
	switch {
	case errors.As(err, &later):
		outcome = "deferred"
	case err != nil:
		outcome = "error"
	}
	m.tasks.WithLabelValues(task, outcome).Inc()
	m.duration.WithLabelValues(task).Observe(took.Seconds())
}
