package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// MetricsContentType is exactly what the original agent serves (its
// integration test asserts this string).
const MetricsContentType = "text/plain; version=0.0.4"

// HealthReport is the /health body: the original's fields plus the
// lifecycle state and what the agent is doing.
type HealthReport struct {
	Status     string           `json:"status"`
	State      State            `json:"state"`
	Kubernetes KubernetesHealth `json:"kubernetes"`
	Broker     BrokerHealth     `json:"broker"`
	Agent      *AgentIdentity   `json:"agent,omitempty"`
	Outbox     OutboxHealth     `json:"outbox"`
	Uptime     uint64           `json:"uptime_seconds"`
	Version    string           `json:"version"`
	Timestamp  string           `json:"timestamp"`
}

// KubernetesHealth is /health's kubernetes section.
type KubernetesHealth struct {
	Connected bool   `json:"connected"`
	Version   string `json:"version,omitempty"`
	Error     string `json:"error,omitempty"`
}

// BrokerHealth is /health's broker section.
type BrokerHealth struct {
	Connected     bool    `json:"connected"`
	LastHeartbeat *string `json:"last_heartbeat,omitempty"`
}

// AgentIdentity names the agent in /health once it is known.
type AgentIdentity struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ClusterName string `json:"cluster_name"`
	Status      string `json:"status"`
}

// OutboxHealth is /health's outbox section.
type OutboxHealth struct {
	Pending int    `json:"pending"`
	Bytes   int64  `json:"bytes"`
	Dropped uint64 `json:"dropped"`
	Durable bool   `json:"durable"`
}

// Handler returns the health and metrics routes: /healthz, /readyz,
// /health and /metrics.
func (a *Agent) Handler() http.Handler {
	e := httpserver.New(httpserver.Options{Service: "brokkr-agent", Logger: a.log})
	httpserver.Mount(e, httpserver.Ops{
		Logger: a.log,
		Ready: []httpserver.Check{
			{Name: "start-up", Probe: func(context.Context) error {
				if !a.ready.Load() {
					return errNotStarted
				}
				return nil
			}},
			{Name: "Kubernetes API", Probe: a.probeKube},
		},
		ReadyTimeout: 3 * time.Second,
	})
	e.GET("/health", func(c *gin.Context) {
		rep := a.Health(c.Request.Context())
		code := http.StatusOK
		if rep.Status != "healthy" {
			code = http.StatusServiceUnavailable
		}
		c.JSON(code, rep)
	})
	h := promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	e.GET("/metrics", func(c *gin.Context) {
		c.Request.Header.Del("Accept")
		h.ServeHTTP(&fixedContentType{ResponseWriter: c.Writer}, c.Request)
	})
	return e
}

func (a *Agent) probeKube(ctx context.Context) error {
	k := a.kubeClient()
	if k == nil {
		return errNotStarted
	}
	_, err := k.ServerVersion(ctx)
	return err
}

// Health computes the /health report.
func (a *Agent) Health(ctx context.Context) HealthReport {
	now := time.Now().UTC()
	rep := HealthReport{
		State:     a.State(),
		Uptime:    uint64(now.Sub(a.started).Seconds()),
		Version:   a.set.Version,
		Timestamp: now.Format(time.RFC3339),
		Broker:    BrokerHealth{Connected: a.brokerConnected.Load()},
	}
	if t := a.lastHeartbeat.Load(); t != nil {
		s := t.UTC().Format(time.RFC3339)
		rep.Broker.LastHeartbeat = &s
	}
	if self := a.self(); self != nil {
		rep.Agent = &AgentIdentity{ID: self.ID.String(), Name: self.Name, ClusterName: self.ClusterName, Status: self.Status}
	}
	if ob := a.outbox.Load(); ob != nil {
		n, b, d := ob.Stats()
		rep.Outbox = OutboxHealth{Pending: n, Bytes: b, Dropped: d, Durable: ob.Durable()}
	}
	if k := a.kubeClient(); k != nil {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		info, err := k.ServerVersion(pctx)
		cancel()
		if err != nil {
			rep.Kubernetes.Error = err.Error()
		} else {
			rep.Kubernetes = KubernetesHealth{Connected: true, Version: info.GitVersion}
		}
	} else {
		rep.Kubernetes.Error = "not connected yet"
	}
	rep.Status = "unhealthy"
	if rep.Kubernetes.Connected && rep.Broker.Connected {
		rep.Status = "healthy"
	}
	return rep
}

type fixedContentType struct {
	http.ResponseWriter
	wrote bool
}

func (w *fixedContentType) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if code == http.StatusOK {
			w.Header().Set("Content-Type", MetricsContentType)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *fixedContentType) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

var _ prometheus.Gatherer = (*prometheus.Registry)(nil)
