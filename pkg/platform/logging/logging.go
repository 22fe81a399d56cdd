// Package logging builds the log/slog logger every service uses: text or
// JSON, a `service` attribute on every line, a level that hot reload can
// change, and the request id and trace id taken from the context so a line
// can be joined with its request and its trace.
package logging

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// Attribute keys added from the context.
const (
	KeyService   = "service"
	KeyRequestID = "request_id"
	KeyTraceID   = "trace_id"
	KeySpanID    = "span_id"
)

// New returns a logger writing to w and the LevelVar that controls it. Keep
// the LevelVar and hand it to Follow so log.level hot reload works.
func New(service string, cfg config.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(cfg.SlogLevel())
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if cfg.JSON() {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	h = NewContextHandler(h).WithAttrs([]slog.Attr{slog.String(KeyService, service)})
	return slog.New(h), lv
}

// Follow returns a config subscriber that applies log.level on reload:
// store.Subscribe(logging.Follow(levelVar)).
func Follow(lv *slog.LevelVar) func(config.Settings) {
	return func(s config.Settings) { lv.Set(s.Log.SlogLevel()) }
}

type requestIDKey struct{}

// WithRequestID stores the request id for the logger (and anything else
// that wants to echo it).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the id stored by WithRequestID, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// ContextHandler adds request_id, trace_id and span_id from the record's
// context. Use the *Context logging methods (InfoContext, LogAttrs) to get
// them.
type ContextHandler struct {
	inner slog.Handler
}

// NewContextHandler wraps h.
func NewContextHandler(h slog.Handler) *ContextHandler { return &ContextHandler{inner: h} }

// Enabled defers to the wrapped handler.
func (h *ContextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle adds the context attributes the record does not already carry.
func (h *ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := RequestID(ctx); id != "" && !hasAttr(r, KeyRequestID) {
			r.AddAttrs(slog.String(KeyRequestID, id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !hasAttr(r, KeyTraceID) {
			r.AddAttrs(slog.String(KeyTraceID, sc.TraceID().String()), slog.String(KeySpanID, sc.SpanID().String()))
		}
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs keeps the wrapper around the derived handler.
func (h *ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ContextHandler{inner: h.inner.WithAttrs(as)}
}

// WithGroup keeps the wrapper around the derived handler.
func (h *ContextHandler) WithGroup(name string) slog.Handler {
	return &ContextHandler{inner: h.inner.WithGroup(name)}
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			found = true
			return false
		}
		return true
	})
	return found
}
