package httpserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/brokkr-go/brokkr/pkg/platform/logging"
)

// RequestIDHeader carries the request id in both directions.
const RequestIDHeader = "X-Request-Id"

const ginRequestIDKey = "request_id"

// RequestID returns the id of the request being served.
func RequestID(c *gin.Context) string { return c.GetString(ginRequestIDKey) }

// requestID adopts a caller's X-Request-Id when it is short and plain (so
// ids from an ingress or a calling service join up), and otherwise makes a
// fresh UUID, so nothing a client sends can forge log structure.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		c.Set(ginRequestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Request = c.Request.WithContext(logging.WithRequestID(c.Request.Context(), id))
		c.Next()
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z') && !(b >= 'A' && b <= 'Z') && !(b >= '0' && b <= '9') &&
			b != '-' && b != '_' && b != '.' && b != ':' {
			return false
		}
	}
	return true
}

// accessLog writes one line per request after it completes. Probe and
// scrape traffic logs at debug so it does not drown the real requests.
func accessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		// The span exists now (otelgin runs before us); tagging it with the
		// request id lets a trace be found from a log line and vice versa.
		trace.SpanFromContext(c.Request.Context()).SetAttributes(attribute.String("http.request_id", RequestID(c)))
		c.Next()

		status := c.Writer.Status()
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case isOpsPath(c.Request.URL.Path), status < 400 && pollingRoutes[c.FullPath()], status == StatusClientClosedRequest:
			// Polls that succeed are routine (metrics count them), and so is a
			// client that hung up (a cancelled long-poll, a closed tab).
			level = slog.LevelDebug
		}
		log.LogAttrs(c.Request.Context(), level, "http request",
			slog.String("method", c.Request.Method),
			slog.String("path", strings.ToValidUTF8(c.Request.URL.Path, "\uFFFD")),
			slog.String("route", c.FullPath()),
			slog.Int("status", status),
			slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("request_id", RequestID(c)),
			slog.String("client_ip", c.ClientIP()),
			slog.Int("bytes", c.Writer.Size()),
		)
	}
}

// pollingRoutes are what every agent calls on a timer: one INFO line each
// would be most of the log at fleet scale. They log at debug when they
// succeed; brokkr_http_requests_total still counts every one.
var pollingRoutes = map[string]bool{
	"/api/v1/agents/:id/target-state":        true,
	"/api/v1/agents/:id/heartbeat":           true,
	"/api/v1/agents/:id/health-status":       true,
	"/api/v1/agents/:id/diagnostics/pending": true,
	"/api/v1/agents/:id/work-orders/pending": true,
	"/api/v1/agents/:id/webhooks/pending":    true,
}

// recovery turns a handler panic into a JSON 500 and a logged stack trace,
// so one bad request never takes the connection or the process down.
// http.ErrAbortHandler is re-raised: it is net/http's deliberate way to
// abort a response and must keep that meaning.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if err, ok := rec.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(rec)
			}
			log.LogAttrs(c.Request.Context(), slog.LevelError, "panic while serving request",
				slog.String("panic", fmt.Sprint(rec)),
				slog.String("stack", string(debug.Stack())),
				slog.String("method", c.Request.Method),
				slog.String("path", strings.ToValidUTF8(c.Request.URL.Path, "\uFFFD")),
			)
			if c.Writer.Written() {
				// Headers are gone; the client sees a truncated body,
				// which is the best that is left.
				c.Abort()
				return
			}
			AbortError(c, http.StatusInternalServerError, "internal server error")
		}()
		c.Next()
	}
}
