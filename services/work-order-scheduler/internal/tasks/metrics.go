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
	m := &Metrics{
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_scheduler_tasks_total",
			Help: "Tasks run by the work-order-scheduler, by type and outcome (ok, error).",
		}, []string{"task", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "brokkr_scheduler_task_duration_seconds",
			Help:    "Run time of work-order-scheduler tasks.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"task"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_work_orders_released_total",
			Help: "RETRY_PENDING work orders moved back to PENDING, by path (timer, sweep).",
		}, []string{"path"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brokkr_work_order_claims_expired_total",
			Help: "Claims that outlived claim_timeout_seconds and counted as a failed attempt.",
		}),
		scheduleRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_work_order_schedule_runs_total",
			Help: "Schedule windows handled by this replica, by status (created, skipped).",
		}, []string{"status"}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_housekeeping_rows_total",
			Help: "Rows changed by housekeeping, by kind (audit_logs_deleted, diagnostics_expired, diagnostics_deleted, idempotency_keys_deleted, telemetry_expired, telemetry_capped).",
		}, []string{"kind"}),
	}
	m.tasks = register(reg, m.tasks)
	m.duration = register(reg, m.duration)
	m.released = register(reg, m.released)
	m.expired = register(reg, m.expired)
	m.scheduleRuns = register(reg, m.scheduleRuns)
	m.purged = register(reg, m.purged)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	c, err := httpserver.RegisterOrReuse(reg, c)
	if err != nil {
		panic(err)
	}
	return c
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
