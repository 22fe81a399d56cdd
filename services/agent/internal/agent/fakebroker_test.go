package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// fakeBroker is a small, real HTTP broker with the contract the agent uses
// (docs/compatibility.md#target-state): target state per stack (latest object,
// minus objects acknowledged with SUCCESS), ETag and ?wait= long-poll, events,
// heartbeat.
type fakeBroker struct {
	t   *testing.T
	srv *httptest.Server
	pak string

	mu         sync.Mutex
	agent      domainagent.Agent
	objects    map[uuid.UUID]stack.DeploymentObject // latest per stack
	events     []broker.Event
	seq        int64
	down       bool // every endpoint answers 503
	eventsDown bool // only POST events answers 503
	heartbeats int
	changed    chan struct{}
}

func newFakeBroker(t *testing.T) *fakeBroker {
	b := &fakeBroker{t: t, pak: "brokkr_BRtest1234_abcdefghijklmnopqrstuvwx", objects: map[uuid.UUID]stack.DeploymentObject{},
		changed: make(chan struct{})}
	now := time.Now().UTC()
	b.agent = domainagent.Agent{ID: uuid.New(), CreatedAt: now, UpdatedAt: now, Name: "test-agent", ClusterName: "test-cluster", Status: domainagent.StatusActive}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *fakeBroker) notify() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *fakeBroker) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

func (b *fakeBroker) setEventsDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.eventsDown = down
}

func (b *fakeBroker) setStatus(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.agent.Status = s
	b.notify()
}

// deploy posts a new deployment object for the stack.
func (b *fakeBroker) deploy(stackID uuid.UUID, yaml string, marker bool) stack.DeploymentObject {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	do := stack.DeploymentObject{ID: uuid.New(), StackID: stackID, SequenceID: b.seq, YAMLContent: yaml,
		YAMLChecksum: stack.Checksum(yaml), IsDeletionMarker: marker, SubmittedAt: time.Now().UTC()}
	b.objects[stackID] = do
	b.notify()
	return do
}

func (b *fakeBroker) eventsFor(id uuid.UUID) []broker.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []broker.Event
	for _, e := range b.events {
		if e.DeploymentObjectID == id {
			out = append(out, e)
		}
	}
	return out
}

func (b *fakeBroker) allEvents() []broker.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]broker.Event(nil), b.events...)
}

func (b *fakeBroker) acked(id uuid.UUID) bool {
	for _, e := range b.events {
		if e.DeploymentObjectID == id && e.Status == domainagent.EventSuccess && e.EventType == domainagent.EventTypeDeploy {
			return true
		}
	}
	return false
}

// targetState must be called with mu held.
func (b *fakeBroker) targetState(full bool) ([]stack.DeploymentObject, string) {
	out := []stack.DeploymentObject{}
	if b.agent.Status == domainagent.StatusActive {
		for _, do := range b.objects {
			if !full && b.acked(do.ID) {
				continue
			}
			out = append(out, do)
		}
	}
	for i := 1; i < len(out); i++ { // ascending sequence
		for j := i; j > 0 && out[j].SequenceID < out[j-1].SequenceID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	h := sha256.New()
	h.Write([]byte(b.agent.Status))
	for _, o := range out {
		h.Write(o.ID[:])
	}
	return out, `"` + hex.EncodeToString(h.Sum(nil)[:8]) + `"`
}

func (b *fakeBroker) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	down := b.down
	b.mu.Unlock()
	if down {
		http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path == "/readyz" {
		_, _ = w.Write([]byte("Ready"))
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+b.pak {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"Unauthorized"}`))
		return
	}
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	agentPath := "/api/v1/agents/" + b.agent.ID.String()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/auth/pak":
		writeJSON(map[string]any{"admin": false, "agent": b.agent.ID, "generator": nil})
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/agents/":
		b.mu.Lock()
		a := b.agent
		b.mu.Unlock()
		if r.URL.Query().Get("name") != a.Name || r.URL.Query().Get("cluster_name") != a.ClusterName {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"Agent not found"}`))
			return
		}
		writeJSON(a)
	case r.Method == http.MethodGet && r.URL.Path == agentPath:
		b.mu.Lock()
		a := b.agent
		b.mu.Unlock()
		writeJSON(a)
	case r.Method == http.MethodPost && r.URL.Path == agentPath+"/heartbeat":
		b.mu.Lock()
		now := time.Now().UTC()
		b.agent.LastHeartbeat = &now
		b.heartbeats++
		a := b.agent
		b.mu.Unlock()
		writeJSON(a)
	case r.Method == http.MethodGet && r.URL.Path == agentPath+"/target-state":
		full := r.URL.Query().Get("mode") == "full"
		wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
		deadline := time.Now().Add(wait)
		for {
			b.mu.Lock()
			objs, etag := b.targetState(full)
			ch := b.changed
			b.mu.Unlock()
			if etag != r.Header.Get("If-None-Match") {
				w.Header().Set("ETag", etag)
				writeJSON(objs)
				return
			}
			if wait == 0 || time.Now().After(deadline) {
				w.Header().Set("ETag", etag)
				w.WriteHeader(http.StatusNotModified)
				return
			}
			select {
			case <-ch:
			case <-time.After(time.Until(deadline)):
			case <-r.Context().Done():
				return
			}
		}
	case r.Method == http.MethodPost && r.URL.Path == agentPath+"/events":
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.eventsDown {
			http.Error(w, `{"error":"down"}`, http.StatusServiceUnavailable)
			return
		}
		var e broker.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil || e.DeploymentObjectID == uuid.Nil || e.AgentID != b.agent.ID {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"bad event"}`))
			return
		}
		b.events = append(b.events, e)
		b.notify()
		// 201, as the broker answers a create (api-spec/openapi.yaml).
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(e)
	case r.Method == http.MethodGet && r.URL.Path == agentPath+"/events":
		b.mu.Lock()
		var out []domainagent.Event
		for _, e := range b.events {
			out = append(out, domainagent.Event{AgentID: e.AgentID, DeploymentObjectID: e.DeploymentObjectID,
				EventType: e.EventType, Status: e.Status, Message: e.Message})
		}
		b.mu.Unlock()
		writeJSON(out)
	default:
		if strings.HasPrefix(r.URL.Path, "/api/v1/agents/") {
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"Unauthorized"}`))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not found"}`))
	}
}
