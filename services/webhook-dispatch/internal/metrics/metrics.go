// Package metrics holds webhook-dispatch's Prometheus metrics: attempts by
// outcome with their latency, dead letters, relay throughput and per-host
// throttling, counted as they happen; and, computed when scraped, the queue
// depth (asynq) and the deliveries per status and outbox backlog
// (PostgreSQL). No label carries a URL or host: those are secrets.
package metrics

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Observer counts what the dispatcher does; it implements webhooks.Observer.
type Observer struct {
	attempts    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	deadLetters prometheus.Counter
	events      prometheus.Counter
	created     prometheus.Counter
	throttled   prometheus.Counter
}

var _ webhooks.Observer = (*Observer)(nil)

// NewObserver registers the counters on reg (or reuses them).
func NewObserver(reg prometheus.Registerer) (*Observer, error) {
	f := httpserver.NewFamilies(reg)
	o := &Observer{
		attempts: f.CounterVec("brokkr_webhook_deliveries_total",
			"Delivery attempts by the resulting status (success, failed = retry scheduled, dead).", "outcome"),
		latency: f.HistogramVec("brokkr_webhook_delivery_duration_seconds",
			"Duration of delivery attempts (HTTP exchange) by resulting status.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, "outcome"),
		deadLetters: f.Counter("brokkr_webhook_dead_letters_total", "Deliveries that ended dead (no more attempts)."),
		events:      f.Counter("brokkr_webhook_events_relayed_total", "Outbox events moved on by the relay."),
		created:     f.Counter("brokkr_webhook_deliveries_created_total", "Delivery rows created by fan-out."),
		throttled: f.Counter("brokkr_webhook_host_throttled_total",
			"Attempts postponed because their receiver host was at its concurrency limit."),
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	for _, s := range []string{webhook.StatusSuccess, webhook.StatusFailed, webhook.StatusDead} {
		o.attempts.WithLabelValues(s)
	}
	return o, nil
}

// Attempted implements webhooks.Observer.
func (o *Observer) Attempted(status string, took time.Duration) {
	o.attempts.WithLabelValues(status).Inc()
	o.latency.WithLabelValues(status).Observe(took.Seconds())
	if status == webhook.StatusDead {
		o.deadLetters.Inc()
	}
}

// Relayed implements webhooks.Observer.
func (o *Observer) Relayed(events, deliveries int) {
	o.events.Add(float64(events))
	o.created.Add(float64(deliveries))
}

// Throttled implements webhooks.Observer.
func (o *Observer) Throttled() { o.throttled.Inc() }

// Counts reads the state gauges from PostgreSQL.
type Counts interface {
	DeliveryStatusCounts(ctx context.Context) (map[string]int64, error)
	UndispatchedEvents(ctx context.Context) (int64, error)
}

// Gauges computes the state gauges on every scrape.
type Gauges struct {
	inspector *asynq.Inspector
	queue     string
	db        Counts
	log       *slog.Logger

	depth, deliveries, backlog *prometheus.Desc
}

// NewGauges returns the scrape-time collector.
func NewGauges(inspector *asynq.Inspector, queue string, db Counts, log *slog.Logger) *Gauges {
	return &Gauges{inspector: inspector, queue: queue, db: db, log: log,
		depth: prometheus.NewDesc("brokkr_webhook_queue_depth",
			"Tasks in the webhook queue by state (pending, active, scheduled, retry, archived).", []string{"state"}, nil),
		deliveries: prometheus.NewDesc("brokkr_webhook_deliveries",
			"Deliveries by status (pending, acquired, failed, dead); dead ones are the dead letters kept for retention.",
			[]string{"status"}, nil),
		backlog: prometheus.NewDesc("brokkr_webhook_outbox_backlog",
			"Outbox events not yet moved on by the relay.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *Gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.depth
	ch <- g.deliveries
	ch <- g.backlog
}

// Collect implements prometheus.Collector. A failing source leaves its
// series out of this scrape rather than failing the whole scrape.
func (g *Gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	depth := map[string]int{"pending": 0, "active": 0, "scheduled": 0, "retry": 0, "archived": 0}
	queues, err := g.inspector.Queues()
	if err == nil && slices.Contains(queues, g.queue) {
		// A queue that never held a task does not exist yet: it is empty.
		var info *asynq.QueueInfo
		if info, err = g.inspector.GetQueueInfo(g.queue); err == nil {
			depth = map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
				"retry": info.Retry, "archived": info.Archived}
		}
	}
	if err == nil {
		for state, n := range depth {
			ch <- prometheus.MustNewConstMetric(g.depth, prometheus.GaugeValue, float64(n), state)
		}
	}
	if counts, err := g.db.DeliveryStatusCounts(ctx); err == nil {
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(g.deliveries, prometheus.GaugeValue, float64(n), status)
		}
	} else {
		g.log.Debug("delivery counts unavailable for /metrics", "error", err)
	}
	if n, err := g.db.UndispatchedEvents(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(g.backlog, prometheus.GaugeValue, float64(n))
	}
}
