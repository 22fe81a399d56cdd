package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Metrics are the original agent's metric families
// (services/agent/README.md#metrics),
// same names, labels and buckets, plus a few for what the Go agent adds
// (outbox, drift, reconcile outcomes).
type Metrics struct {
	PollRequests       *prometheus.CounterVec
	PollDuration       prometheus.Histogram
	KubeOperations     *prometheus.CounterVec
	KubeOperationTime  *prometheus.HistogramVec
	HeartbeatSent      prometheus.Counter
	LastSuccessfulPoll prometheus.Gauge

	Reconciles     *prometheus.CounterVec
	DriftDetected  prometheus.Counter
	OutboxRecords  prometheus.Gauge
	OutboxBytes    prometheus.Gauge
	OutboxDropped  prometheus.Counter
	EventsSent     *prometheus.CounterVec
	LifecycleState *prometheus.GaugeVec
}

// NewMetrics registers the families on reg (or reuses those another agent
// in the same process registered); a clash with other families panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := httpserver.NewFamilies(reg)
	m := &Metrics{
		PollRequests: f.CounterVec("brokkr_agent_poll_requests_total", "Total number of broker poll requests", "status"),
		PollDuration: f.Histogram("brokkr_agent_poll_duration_seconds", "Broker poll request latency in seconds",
			[]float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}),
		KubeOperations: f.CounterVec("brokkr_agent_kubernetes_operations_total",
			"Total number of Kubernetes API operations", "operation"),
		KubeOperationTime: f.HistogramVec("brokkr_agent_kubernetes_operation_duration_seconds",
			"Kubernetes operation latency in seconds", []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10}, "operation"),
		HeartbeatSent: f.Counter("brokkr_agent_heartbeat_sent_total", "Total number of heartbeats sent to the broker"),
		LastSuccessfulPoll: f.Gauge("brokkr_agent_last_successful_poll_timestamp",
			"Unix timestamp of the last successful broker poll"),
		Reconciles:     f.CounterVec("brokkr_agent_reconciles_total", "Deployment object reconciles by result", "result"),
		DriftDetected:  f.Counter("brokkr_agent_drift_detected_total", "Drift checks that found drifted objects"),
		OutboxRecords:  f.Gauge("brokkr_agent_outbox_records", "Reports waiting in the outbox for the broker"),
		OutboxBytes:    f.Gauge("brokkr_agent_outbox_bytes", "Bytes held by the outbox"),
		OutboxDropped:  f.Counter("brokkr_agent_outbox_dropped_total", "Reports dropped from the outbox without delivery"),
		EventsSent:     f.CounterVec("brokkr_agent_events_sent_total", "Reports delivered to the broker by kind", "kind"),
		LifecycleState: f.GaugeVec("brokkr_agent_lifecycle_state", "1 for the agent's current lifecycle state", "state"),
	}
	f.Must()
	return m
}
