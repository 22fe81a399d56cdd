package httpserver

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a fresh registry with the Go runtime and process
// collectors. Each server gets its own instead of the global default, so
// tests (and two servers in one process) never collide.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// HTTPMetrics are the original broker's request metrics, same names,
// labels and buckets (docs/compatibility.md#http-metrics).
type HTTPMetrics struct {
	Requests *prometheus.CounterVec
	Duration *prometheus.HistogramVec
}

// RegisterHTTPMetrics registers the metrics on reg, or returns the ones
// already there, so several engines may share one registry.
func RegisterHTTPMetrics(reg prometheus.Registerer) (*HTTPMetrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brokkr_http_requests_total",
		Help: "Total number of HTTP requests",
	}, []string{"endpoint", "method", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "brokkr_http_request_duration_seconds",
		Help:    "HTTP request latency in seconds",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"endpoint", "method"})

	var err error
	if requests, err = RegisterOrReuse(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = RegisterOrReuse(reg, duration); err != nil {
		return nil, err
	}
	return &HTTPMetrics{Requests: requests, Duration: duration}, nil
}

// RegisterOrReuse registers c on reg, or returns the collector of the same
// type already registered under its name (a second server or replica in
// one process shares the series instead of failing).
func RegisterOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// middleware records every request except the /metrics scrape itself,
// including those rejected by auth or by the body limit.
func (m *HTTPMetrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.URL.Path == "/metrics" {
			c.Next()
			return
		}
		start := time.Now()
		c.Next()
		ep, method := RouteLabel(c), methodLabel(c.Request.Method)
		m.Requests.WithLabelValues(ep, method, strconv.Itoa(c.Writer.Status())).Inc()
		m.Duration.WithLabelValues(ep, method).Observe(time.Since(start).Seconds())
	}
}

// RouteLabel is the endpoint label of a request: the route template gin
// matched ("/api/v1/agents/:id"), or "unmatched" when no route matched.
// Never the raw path: that would give every scanner's probe its own series,
// and a path that is not valid UTF-8 makes the Prometheus client panic.
// The method is bounded the same way, since clients may send any token.
func RouteLabel(c *gin.Context) string {
	if p := c.FullPath(); p != "" {
		return p
	}
	return "unmatched"
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
