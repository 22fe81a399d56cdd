package httpserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
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
// labels and buckets (broker.md §8.2).
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
	if requests, err = registerOrReuse(reg, requests); err != nil {
		return nil, err
	}
	if duration, err = registerOrReuse(reg, duration); err != nil {
		return nil, err
	}
	return &HTTPMetrics{Requests: requests, Duration: duration}, nil
}

func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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
		status := c.Writer.Status()
		ep := Endpoint(c.Request.URL.Path)
		// A 404 that matched no route would give every scanner's probe its
		// own series; such requests share one label value instead.
		if c.FullPath() == "" && status == http.StatusNotFound {
			ep = "unmatched"
		}
		m.Requests.WithLabelValues(ep, c.Request.Method, strconv.Itoa(status)).Inc()
		m.Duration.WithLabelValues(ep, c.Request.Method).Observe(time.Since(start).Seconds())
	}
}

// Endpoint is the original's label: the path with every UUID-like segment
// (36 characters, 4 hyphens) and every all-digit segment replaced by ":id".
func Endpoint(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if (len(s) == 36 && strings.Count(s, "-") == 4) || allDigits(s) {
			segs[i] = ":id"
		}
	}
	return strings.Join(segs, "/")
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
