package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsContentType is the Prometheus text format 0.0.4 the original
// serves; scrapers and the original's ServiceMonitor expect exactly this.
const MetricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// Check is one readiness dependency, e.g. {"database", pool.Ping}.
type Check struct {
	Name  string
	Probe func(context.Context) error
}

// Ops configures the unauthenticated operational routes.
type Ops struct {
	// Ready lists the dependencies /readyz probes; none means always ready.
	Ready []Check
	// ReadyTimeout bounds all probes together; 0 means 2 s, well inside a
	// Kubernetes probe's default 1 s… 10 s window.
	ReadyTimeout time.Duration
	// Metrics is served on /metrics; nil leaves the route out.
	Metrics prometheus.Gatherer
	// Logger records failing probes (their errors are not shown to
	// callers); nil discards.
	Logger *slog.Logger
}

// Mount adds GET /healthz, /readyz and /metrics to r.
func Mount(r gin.IRoutes, ops Ops) {
	log := ops.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	timeout := ops.ReadyTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}

	// Liveness never checks dependencies: restarting a healthy process
	// because PostgreSQL is down only makes the outage worse.
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "OK") })

	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), timeout)
		defer cancel()
		failed := make([]string, len(ops.Ready))
		var wg sync.WaitGroup
		for i, chk := range ops.Ready {
			wg.Go(func() {
				if err := chk.Probe(ctx); err != nil {
					log.WarnContext(ctx, "readiness check failed", "check", chk.Name, "error", err)
					failed[i] = chk.Name + " unavailable"
				}
			})
		}
		wg.Wait()
		var msgs []string
		for _, f := range failed {
			if f != "" {
				msgs = append(msgs, f)
			}
		}
		if len(msgs) > 0 {
			c.String(http.StatusServiceUnavailable, strings.Join(msgs, "; "))
			return
		}
		c.String(http.StatusOK, "Ready")
	})

	if ops.Metrics != nil {
		h := promhttp.HandlerFor(ops.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
		r.GET("/metrics", func(c *gin.Context) {
			// Without an Accept header promhttp picks the text format; the
			// wrapper then pins the Content-Type to the original's, without
			// the escaping parameter newer client libraries append.
			c.Request.Header.Del("Accept")
			h.ServeHTTP(&fixedContentType{ResponseWriter: c.Writer, ct: MetricsContentType}, c.Request)
		})
	}
}

type fixedContentType struct {
	http.ResponseWriter
	ct    string
	wrote bool
}

func (w *fixedContentType) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if code == http.StatusOK {
			w.Header().Set("Content-Type", w.ct)
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
