package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func TestNewOpsReadiness(t *testing.T) {
	var down error
	reg := NewRegistry()
	e := NewOps("brokkr-test", config.Settings{}, slog.New(slog.DiscardHandler), reg,
		Check{Name: "database", Probe: func(context.Context) error { return down }})
	get := func(path string) int {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if c := get("/readyz"); c != http.StatusOK {
		t.Fatalf("/readyz with the database up = %d", c)
	}
	down = errors.New("gone")
	if c := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database down = %d, want 503", c)
	}
	if c := get("/healthz"); c != http.StatusOK {
		t.Fatalf("/healthz = %d", c)
	}
	if c := get("/metrics"); c != http.StatusOK {
		t.Fatalf("/metrics = %d", c)
	}
}
