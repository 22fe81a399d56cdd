package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// TestStartupSelfRegistration: the agent registers itself with each of
// agent.generator_ids (no agent_id in the body: it acts on itself), counts
// 409 already_registered as success, skips malformed ids and carries on
// past other failures without retrying a permanent one.
func TestStartupSelfRegistration(t *testing.T) {
	fresh, known, broken := uuid.New(), uuid.New(), uuid.New()
	var mu sync.Mutex
	calls := map[uuid.UUID]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if r.Method != http.MethodPost || len(parts) != 5 || parts[2] != "generators" || parts[4] != "register" {
			t.Errorf("unexpected call %s %s", r.Method, r.URL.Path)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "agent_id") {
			t.Errorf("self-registration sent an agent_id: %s", body)
		}
		gen := uuid.MustParse(parts[3])
		mu.Lock()
		calls[gen]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch gen {
		case fresh:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"` + uuid.NewString() + `","agent_id":"` + uuid.NewString() + `","generator_id":"` + gen.String() + `","registered_at":"2026-01-01T00:00:00Z"}`))
		case known:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"code":"already_registered","message":"already","error":"already"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"generator_not_found","message":"Generator not found","error":"Generator not found"}`))
		}
	}))
	defer srv.Close()
	c, err := broker.New(srv.URL, "brokkr_BRtest1234_abcdefghijklmnopqrstuvwx", broker.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	a := &Agent{broker: c, log: slog.New(slog.NewTextHandler(&logs, nil)),
		set: Settings{Agent: config.Agent{MaxRetries: 3,
			GeneratorIDs: []string{fresh.String(), " not-a-uuid ", known.String(), "", broken.String()}}}}
	a.registerWithGenerators(context.Background())

	mu.Lock()
	defer mu.Unlock()
	if calls[fresh] != 1 || calls[known] != 1 || calls[broken] != 1 || len(calls) != 3 {
		t.Fatalf("registration calls = %v", calls)
	}
	out := logs.String()
	for _, want := range []string{"registered with generator", "already registered with generator",
		"skipping a malformed generator id", "could not register with generator"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
