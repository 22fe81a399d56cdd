package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// Gauges computes the broker's inventory gauges when /metrics is scraped
// (the docs' "computed lazily"), with the original's metric names, instead of
// as side effects of list calls.
type Gauges struct {
	store *Store
	log   *slog.Logger

	activeAgents *prometheus.Desc
	stacks       *prometheus.Desc
	objects      *prometheus.Desc
	heartbeatAge *prometheus.Desc
}

// NewGauges returns a collector over the store.
func NewGauges(store *Store, log *slog.Logger) *Gauges {
	return &Gauges{
		store:        store,
		log:          log,
		activeAgents: prometheus.NewDesc("brokkr_active_agents", "Number of live agents with status ACTIVE.", nil, nil),
		stacks:       prometheus.NewDesc("brokkr_stacks_total", "Number of live stacks.", nil, nil),
		objects:      prometheus.NewDesc("brokkr_deployment_objects_total", "Number of live deployment objects.", nil, nil),
		heartbeatAge: prometheus.NewDesc("brokkr_agent_heartbeat_age_seconds", "Seconds since each live agent's last heartbeat.",
			[]string{"agent_id", "agent_name"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *Gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.activeAgents
	ch <- g.stacks
	ch <- g.objects
	ch <- g.heartbeatAge
}

// Collect implements prometheus.Collector with one bounded round of queries.
func (g *Gauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var counts struct {
		Active  int64 `db:"active"`
		Stacks  int64 `db:"stacks"`
		Objects int64 `db:"objects"`
	}
	err := g.store.q(ctx).GetContext(ctx, &counts, `SELECT
		(SELECT count(*) FROM agents WHERE deleted_at IS NULL AND status = 'ACTIVE') AS active,
		(SELECT count(*) FROM stacks WHERE deleted_at IS NULL) AS stacks,
		(SELECT count(*) FROM deployment_objects WHERE deleted_at IS NULL) AS objects`)
	if err != nil {
		g.log.Warn("metrics: inventory query failed", "error", err)
	} else {
		ch <- prometheus.MustNewConstMetric(g.activeAgents, prometheus.GaugeValue, float64(counts.Active))
		ch <- prometheus.MustNewConstMetric(g.stacks, prometheus.GaugeValue, float64(counts.Stacks))
		ch <- prometheus.MustNewConstMetric(g.objects, prometheus.GaugeValue, float64(counts.Objects))
	}
	var beats []struct {
		ID   string  `db:"id"`
		Name string  `db:"name"`
		Age  float64 `db:"age"`
	}
	err = g.store.q(ctx).SelectContext(ctx, &beats, `SELECT id::text AS id, name,
		extract(epoch FROM now() - last_heartbeat)::float8 AS age
		FROM agents WHERE deleted_at IS NULL AND last_heartbeat IS NOT NULL`)
	if err != nil {
		g.log.Warn("metrics: heartbeat query failed", "error", err)
		return
	}
	for _, b := range beats {
		ch <- prometheus.MustNewConstMetric(g.heartbeatAge, prometheus.GaugeValue, b.Age, b.ID, b.Name)
	}
}

// WebhookCounts answers webhook-dispatch's gauges: deliveries by status and
// the outbox backlog.
type WebhookCounts struct{ s *Store }

// NewWebhookCounts returns the webhook gauges' queries over s.
func NewWebhookCounts(s *Store) *WebhookCounts { return &WebhookCounts{s: s} }

// DeliveryStatusCounts counts deliveries per non-success status (metrics;
// success rows are the bulk and are not counted on every scrape).
func (r *WebhookCounts) DeliveryStatusCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
	}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT status, count(*) AS n FROM webhook_deliveries
		WHERE status IN ('pending', 'acquired', 'failed', 'dead') GROUP BY status`)
	out := map[string]int64{webhook.StatusPending: 0, webhook.StatusAcquired: 0, webhook.StatusFailed: 0, webhook.StatusDead: 0}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, mapErr(err)
}

// UndispatchedEvents counts outbox events the relay has not moved on.
func (r *WebhookCounts) UndispatchedEvents(ctx context.Context) (int64, error) {
	var n int64
	err := r.s.q(ctx).GetContext(ctx, &n, `SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL`)
	return n, mapErr(err)
}
