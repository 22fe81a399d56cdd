// Package httpserver holds the gin building blocks every Brokkr HTTP
// service shares: request ids, tracing, panic recovery, body limits, access
// logs, the original's Prometheus metrics, CORS, the ops routes
// (/healthz, /readyz, /metrics), JSON 404/405 and graceful shutdown.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// DefaultAPIPrefix is where the configurable CORS policy applies.
const DefaultAPIPrefix = "/api/v1"

// Options configure New.
type Options struct {
	// Service names the server in traces.
	Service string
	// Logger receives access logs and panics; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; ≤0 means the 2 MiB default.
	MaxBodyBytes int64
	// Registry receives the HTTP metrics; nil records none. Use one
	// NewRegistry per process (not the global one) so tests do not collide.
	Registry prometheus.Registerer
	// CORS returns the live CORS settings (e.g. store.CORS) for preflights
	// under APIPrefix; nil answers every preflight permissively.
	CORS func() config.CORS
	// APIPrefix is where CORS applies; "" means DefaultAPIPrefix.
	APIPrefix string
	// TrustedProxies (http.trusted_proxies) are the CIDRs/IPs whose
	// X-Forwarded-For / X-Real-IP is believed for the client IP that auth
	// throttles on and audit records. Empty trusts none: any client could
	// otherwise pick its own address and evade throttling.
	TrustedProxies []string
	// NoTracing leaves out the per-request span middleware: with
	// telemetry disabled it would only cost CPU on every request (about a
	// twelfth of the api's under a polling fleet, docs/benchmarks.md), and
	// an incoming trace context is then not continued.
	NoTracing bool
}

// New returns a gin engine with the shared middleware, outermost first:
// last-resort recovery → request id → trace → access log → metrics →
// recovery → URL check → preflight CORS → body limit. Logging and metrics
// sit outside the inner recovery so that a request whose handler panicked is
// still logged and counted, with its 500; the outer one catches a panic in
// those middlewares themselves, so no request ever loses its connection.
func New(opts Options) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	maxBody := opts.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = config.Defaults().HTTP.MaxBodyBytes
	}
	prefix := opts.APIPrefix
	if prefix == "" {
		prefix = DefaultAPIPrefix
	}

	e := gin.New()
	e.HandleMethodNotAllowed = true
	// A trailing-slash redirect is answered before any middleware runs (no
	// request id, log or metric) and the original answers 404 there anyway.
	e.RedirectTrailingSlash = false
	// Handlers pass *gin.Context as a context.Context; fall back to the
	// request's context so request id, trace and cancellation flow.
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(trimmed(opts.TrustedProxies)); err != nil {
		panic(fmt.Sprintf("httpserver: trusted proxies: %v", err))
	}

	e.Use(recovery(log), requestID())
	if !opts.NoTracing {
		e.Use(otelgin.Middleware(opts.Service, otelgin.WithFilter(func(r *http.Request) bool { return !isOpsPath(r.URL.Path) })))
	}
	e.Use(accessLog(log))
	if opts.Registry != nil {
		m, err := RegisterHTTPMetrics(opts.Registry)
		if err != nil {
			panic(fmt.Sprintf("httpserver: metrics: %v", err))
		}
		e.Use(m.middleware())
	}
	e.Use(
		recovery(log),
		sanitizeURL(),
		preflight(prefix, opts.CORS),
		bodyLimit(maxBody),
	)
	e.NoRoute(func(c *gin.Context) { AbortError(c, http.StatusNotFound, "not found") })
	e.NoMethod(func(c *gin.Context) { AbortError(c, http.StatusMethodNotAllowed, "method not allowed") })
	return e
}

// trimmed drops blanks and surrounding space; nil (trust none) stays nil.
func trimmed(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func isOpsPath(p string) bool {
	return p == "/healthz" || p == "/readyz" || p == "/metrics"
}

// NewServer wraps h in an *http.Server with the timeouts a public listener
// needs. There is deliberately no write timeout: target-state long-polls
// hold a response open for up to the requested wait.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
}

// TLSConfig loads the certificate named by cfg, or returns nil when TLS is
// off. Set it as srv.TLSConfig and Run serves TLS.
func TLSConfig(cfg config.TLS) (*tls.Config, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertPath, cfg.KeyPath)
	if err != nil {
		return nil, fmt.Errorf("tls: loading %s / %s: %w", cfg.CertPath, cfg.KeyPath, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Run listens on srv.Addr and serves until ctx ends, then drains (see Serve).
func Run(ctx context.Context, srv *http.Server, shutdownTimeout time.Duration) error {
	addr := srv.Addr
	if addr == "" {
		addr = ":http"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return Serve(ctx, srv, ln, shutdownTimeout)
}

// Serve serves on ln until ctx ends, then stops accepting and waits up to
// shutdownTimeout for in-flight requests to finish; what is still running
// then is cut off and reported as an error. It returns nil after a clean
// drain, or the serve error if the listener failed first. TLS is used when
// srv.TLSConfig carries a certificate.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, shutdownTimeout time.Duration) error {
	errc := make(chan error, 1)
	go func() {
		if t := srv.TLSConfig; t != nil && (len(t.Certificates) > 0 || t.GetCertificate != nil) {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()

	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close()
		err = fmt.Errorf("graceful shutdown after %s: %w", shutdownTimeout, err)
	}
	if serr := <-errc; err == nil && serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = serr
	}
	return err
}

// NewOps is the engine of a service other than api: the limits from the
// settings, /healthz, /readyz over ready and /metrics from reg. It is the
// workers' whole HTTP surface; auth and templating add their internal
// routes to it.
func NewOps(service string, cfg config.Settings, log *slog.Logger, reg *prometheus.Registry, ready ...Check) *gin.Engine {
	e := New(Options{Service: service, Logger: log,
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes, TrustedProxies: cfg.HTTP.TrustedProxies, Registry: reg})
	Mount(e, Ops{Ready: ready, Metrics: reg, Logger: log})
	return e
}
