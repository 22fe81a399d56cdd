package agent

import (
	"github.com/prometheus/client_golang/prometheus"
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

// NewMetrics registers the families on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		PollRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_agent_poll_requests_total", Help: "Total number of broker poll requests",
		}, []string{"status"}),
		PollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "brokkr_agent_poll_duration_seconds", Help: "Broker poll request latency in seconds",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		KubeOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_agent_kubernetes_operations_total", Help: "Total number of Kubernetes API operations",
		}, []string{"operation"}),
		KubeOperationTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "brokkr_agent_kubernetes_operation_duration_seconds", Help: "Kubernetes operation latency in seconds",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		HeartbeatSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brokkr_agent_heartbeat_sent_total", Help: "Total number of heartbeats sent to the broker",
		}),
		LastSuccessfulPoll: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brokkr_agent_last_successful_poll_timestamp", Help: "Unix timestamp of the last successful broker poll",
		}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_agent_reconciles_total", Help: "Deployment object reconciles by result",
		}, []string{"result"}),
		DriftDetected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brokkr_agent_drift_detected_total", Help: "Drift checks that found drifted objects",
		}),
		OutboxRecords: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brokkr_agent_outbox_records", Help: "Reports waiting in the outbox for the broker",
		}),
		OutboxBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "brokkr_agent_outbox_bytes", Help: "Bytes held by the outbox",
		}),
		OutboxDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "brokkr_agent_outbox_dropped_total", Help: "Reports dropped from the outbox without delivery",
		}),
		EventsSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "brokkr_agent_events_sent_total", Help: "Reports delivered to the broker by kind",
		}, []string{"kind"}),
		LifecycleState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "brokkr_agent_lifecycle_state", Help: "1 for the agent's current lifecycle state",
		}, []string{"state"}),
	}
	reg.MustRegister(m.PollRequests, m.PollDuration, m.KubeOperations, m.KubeOperationTime, m.HeartbeatSent,
		m.LastSuccessfulPoll, m.Reconciles, m.DriftDetected, m.OutboxRecords, m.OutboxBytes, m.OutboxDropped,
		m.EventsSent, m.LifecycleState)
	return m
}
