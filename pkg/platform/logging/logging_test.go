package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

func jsonLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestFormatAndService(t *testing.T) {
	tests := []struct {
		format string
		want   []string
	}{
		{"json", []string{`"service":"api"`, `"msg":"hello"`, `"level":"INFO"`}},
		{"JSON", []string{`"service":"api"`}},
		{"text", []string{"service=api", "msg=hello", "level=INFO"}},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			var buf bytes.Buffer
			log, _ := New("api", config.Log{Level: "info", Format: tt.format}, &buf)
			log.Info("hello")
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("output %q lacks %q", buf.String(), w)
				}
			}
		})
	}
}

func TestLevelIsHotChangeable(t *testing.T) {
	var buf bytes.Buffer
	log, lv := New("api", config.Log{Level: "info", Format: "json"}, &buf)
	log.Debug("hidden")
	if buf.Len() != 0 {
		t.Fatalf("debug logged at info: %s", buf.String())
	}
	s := config.Defaults()
	s.Log.Level = "trace"
	Follow(lv)(s)
	log.Debug("shown")
	if !strings.Contains(buf.String(), "shown") {
		t.Fatalf("debug not logged after reload to trace: %q", buf.String())
	}
	s.Log.Level = "error"
	Follow(lv)(s)
	buf.Reset()
	log.Warn("hidden")
	if buf.Len() != 0 {
		t.Fatalf("warn logged at error: %s", buf.String())
	}
}

func TestContextAttributes(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled})

	tests := []struct {
		name string
		ctx  context.Context
		log  func(*slog.Logger, context.Context)
		want map[string]any
		not  []string
	}{
		{
			name: "nothing in context",
			ctx:  context.Background(),
			log:  func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") },
			not:  []string{KeyRequestID, KeyTraceID},
		},
		{
			name: "request id",
			ctx:  WithRequestID(context.Background(), "req-1"),
			log:  func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "m") },
			want: map[string]any{KeyRequestID: "req-1"},
			not:  []string{KeyTraceID},
		},
		{
			name: "request and trace id",
			ctx:  trace.ContextWithSpanContext(WithRequestID(context.Background(), "req-2"), sc),
			log:  func(l *slog.Logger, ctx context.Context) { l.With("agent_id", "a1").InfoContext(ctx, "m") },
			want: map[string]any{
				KeyRequestID: "req-2",
				KeyTraceID:   "4bf92f3577b34da6a3ce929d0e0e4736",
				KeySpanID:    "00f067aa0ba902b7",
				"agent_id":   "a1",
				KeyService:   "api",
			},
		},
		{
			name: "explicit request id is not duplicated",
			ctx:  WithRequestID(context.Background(), "req-3"),
			log: func(l *slog.Logger, ctx context.Context) {
				l.LogAttrs(ctx, slog.LevelInfo, "m", slog.String(KeyRequestID, "req-3"))
			},
			want: map[string]any{KeyRequestID: "req-3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log, _ := New("api", config.Log{Level: "debug", Format: "json"}, &buf)
			tt.log(log, tt.ctx)
			lines := jsonLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("want 1 line, got %d", len(lines))
			}
			for k, v := range tt.want {
				if lines[0][k] != v {
					t.Errorf("%s = %v, want %v", k, lines[0][k], v)
				}
			}
			for _, k := range tt.not {
				if _, ok := lines[0][k]; ok {
					t.Errorf("unexpected %s", k)
				}
			}
			if n := strings.Count(buf.String(), `"request_id"`); n > 1 {
				t.Errorf("request_id appears %d times", n)
			}
		})
	}
}

func TestSecretsAreRedacted(t *testing.T) {
	const pak = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	agent := config.Defaults().Agent
	agent.PAK = secret.String(pak)
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, _ := New("agent", config.Log{Level: "info", Format: format}, &buf)
			log.Info("starting", "pak", secret.String(pak), "agent_config", agent)
			log.With("pak", secret.String(pak)).Info("derived")
			out := buf.String()
			if strings.Contains(out, pak) || strings.Contains(out, "GK3QN7") {
				t.Fatalf("secret leaked: %s", out)
			}
			if strings.Count(out, secret.Redacted) < 3 {
				t.Fatalf("want [REDACTED] three times, got: %s", out)
			}
		})
	}
}
