package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

func testLine(stack uuid.UUID, pod string, i int) Frame {
	return LineFrame(domaintelemetry.PodLogLine{StackID: stack, Namespace: "ns", Pod: pod, Container: "app",
		TS: t0.Add(time.Duration(i) * time.Millisecond), Line: fmt.Sprintf("line %d", i)})
}

func TestSenderBatchesAtMostMaxFramesAndBytes(t *testing.T) {
	fb := &fakeBroker{}
	s := NewSender(fb, uuid.New(), SenderOptions{}, nil)
	stack := uuid.New()
	for i := range 1200 {
		s.Emit(testLine(stack, "p", i))
	}
	s.Flush()
	s.SendQueued(context.Background())
	if len(fb.batches) != 3 || len(fb.batches[0]) != 500 || len(fb.batches[1]) != 500 || len(fb.batches[2]) != 200 {
		t.Fatalf("batch sizes: %d batches", len(fb.batches))
	}
	// 16 KiB lines: the byte bound cuts first.
	fb.batches = nil
	big := strings.Repeat("x", domaintelemetry.MaxLineBytes)
	for range 200 {
		s.Emit(LineFrame(domaintelemetry.PodLogLine{StackID: stack, TS: t0, Line: big}))
	}
	s.Flush()
	s.SendQueued(context.Background())
	total := 0
	for _, b := range fb.batches {
		body, _ := json.Marshal(map[string]any{"frames": b})
		if len(body) > 1<<20 {
			t.Fatalf("a request body of %d bytes, over 1 MiB", len(body))
		}
		total += len(b)
	}
	if total != 200 || len(fb.batches) < 4 {
		t.Fatalf("%d frames in %d batches", total, len(fb.batches))
	}
}

func TestSenderQueueFullDropsIntoABufferFullGap(t *testing.T) {
	fb := &fakeBroker{}
	agentID := uuid.New()
	s := NewSender(fb, agentID, SenderOptions{MaxFrames: 10, QueueBatches: 2}, nil)
	stack := uuid.New()
	// 50 frames: batches of 10; two fit in the queue, the next two are
	// dropped when they are cut, the fifth is still open.
	for i := range 50 {
		s.Emit(testLine(stack, "p", i))
	}
	pending := s.Pending()
	if len(pending) != 1 || pending[0].Reason != domaintelemetry.GapBufferFull || pending[0].DroppedCount != 20 ||
		!pending[0].SinceTS.Equal(t0.Add(20*time.Millisecond)) || pending[0].Pod != "p" || pending[0].AgentID != agentID {
		t.Fatalf("pending gaps = %+v", pending)
	}
	// The queue is still full: the gap waits rather than being dropped too.
	s.Flush()
	if p := s.Pending(); len(p) != 1 || p[0].DroppedCount != 30 {
		t.Fatalf("after a flush into a full queue: %+v", p)
	}
	s.SendQueued(context.Background())
	s.Flush()
	s.SendQueued(context.Background())
	if len(s.Pending()) != 0 {
		t.Fatalf("gaps left: %+v", s.Pending())
	}
	sent := fb.sent()
	g := gaps(sent)
	if len(lines(sent)) != 20 || len(g) != 1 || g[0].DroppedCount != 30 || g[0].Reason != domaintelemetry.GapBufferFull {
		t.Fatalf("sent %d lines and gaps %+v", len(lines(sent)), g)
	}
}

func TestSenderQueueIsBoundedInBytes(t *testing.T) {
	fb := &fakeBroker{}
	s := NewSender(fb, uuid.New(), SenderOptions{MaxFrames: 1, QueueBytes: 3 * (domaintelemetry.MaxLineBytes + 300)}, nil)
	stack := uuid.New()
	big := strings.Repeat("x", domaintelemetry.MaxLineBytes)
	for i := range 10 { // one 16 KiB frame a batch: three fit
		s.Emit(LineFrame(domaintelemetry.PodLogLine{StackID: stack, TS: t0.Add(time.Duration(i) * time.Millisecond), Line: big}))
	}
	// Frames 3 to 8 were dropped when cut; the flush queues their gap
	// (small: it fits) and drops the open batch, frame 9, into a new one.
	s.Flush()
	if p := s.Pending(); len(p) != 1 || p[0].Reason != domaintelemetry.GapBufferFull || p[0].DroppedCount != 1 {
		t.Fatalf("pending = %+v", p)
	}
	s.SendQueued(context.Background())
	sent := fb.sent()
	if g := gaps(sent); len(lines(sent)) != 3 || len(g) != 1 || g[0].DroppedCount != 6 || s.queuedBytes != 0 {
		t.Fatalf("sent %d lines and gaps %+v; %d bytes still counted", len(lines(sent)), g, s.queuedBytes)
	}
}

func TestSenderFailingBrokerDropsIntoADisconnectedGap(t *testing.T) {
	down := errors.New("connection refused")
	fb := &fakeBroker{errs: []error{down, down, down, down}}
	s := NewSender(fb, uuid.New(), SenderOptions{Retries: 3, Backoff: time.Nanosecond}, nil)
	stack := uuid.New()
	for i := range 5 {
		s.Emit(testLine(stack, "p", i))
	}
	s.Flush()
	s.SendQueued(context.Background())
	if fb.calls != 4 || len(fb.batches) != 0 {
		t.Fatalf("calls = %d, sent = %d; want 1 + 3 retries, nothing sent", fb.calls, len(fb.batches))
	}
	p := s.Pending()
	if len(p) != 1 || p[0].Reason != domaintelemetry.GapDisconnected || p[0].DroppedCount != 5 || !p[0].SinceTS.Equal(t0) {
		t.Fatalf("pending = %+v", p)
	}
	// The broker is back: the gap goes out.
	s.Flush()
	s.SendQueued(context.Background())
	if len(fb.batches) != 1 || fb.batches[0][0].Type != domaintelemetry.TypeLogGap {
		t.Fatalf("batches = %+v", fb.batches)
	}
}

func TestSenderLostGapsAreMergedNotMultiplied(t *testing.T) {
	down := errors.New("connection refused")
	fb := &fakeBroker{errs: []error{down, down}}
	s := NewSender(fb, uuid.New(), SenderOptions{Retries: 1, Backoff: time.Nanosecond}, nil)
	stack := uuid.New()
	s.Emit(GapFrame(domaintelemetry.LogGap{StackID: stack, Namespace: "ns", Pod: "p", Container: "app", SinceTS: t0, DroppedCount: 7, Reason: domaintelemetry.GapRateLimit}))
	s.Flush()
	s.SendQueued(context.Background()) // lost: merged back as the rate-limit gap it was
	p := s.Pending()
	if len(p) != 1 || p[0].Reason != domaintelemetry.GapRateLimit || p[0].DroppedCount != 7 {
		t.Fatalf("pending = %+v", p)
	}
}

func TestSenderRefusedBatchIsNotRetried(t *testing.T) {
	fb := &fakeBroker{errs: []error{&broker.StatusError{Code: http.StatusUnprocessableEntity}}}
	s := NewSender(fb, uuid.New(), SenderOptions{Backoff: time.Nanosecond}, nil)
	s.Emit(testLine(uuid.New(), "p", 0))
	s.Flush()
	s.SendQueued(context.Background())
	if fb.calls != 1 || len(s.Pending()) != 0 {
		t.Fatalf("calls = %d, pending = %+v", fb.calls, s.Pending())
	}
	if !transient(&broker.StatusError{Code: http.StatusServiceUnavailable}) || !transient(errors.New("eof")) ||
		transient(&broker.StatusError{Code: http.StatusRequestEntityTooLarge}) {
		t.Fatal("transient misclassifies")
	}
}

// contractServer checks each request against the telemetry ingest contract
// (services/agent/README.md#log-streaming) and answers 202.
type contractServer struct {
	t       *testing.T
	agentID uuid.UUID
	mu      sync.Mutex
	frames  []Frame
	got     chan struct{}
}

func (c *contractServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, format string, args ...any) {
		c.t.Errorf(format, args...)
		http.Error(w, fmt.Sprintf(format, args...), code)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agents/"+c.agentID.String()+"/telemetry" {
		fail(http.StatusNotFound, "unexpected %s %s", r.Method, r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer test-pak" || r.Header.Get("Content-Type") != "application/json" {
		fail(http.StatusUnauthorized, "headers %v", r.Header)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) > 1<<20 {
		fail(http.StatusRequestEntityTooLarge, "body of %d bytes", len(body))
		return
	}
	var req struct {
		Frames []struct {
			Type string          `json:"type"`
			Body json.RawMessage `json:"body"`
		} `json:"frames"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || len(req.Frames) == 0 || len(req.Frames) > 500 {
		fail(http.StatusBadRequest, "bad envelope (%d frames): %v", len(req.Frames), err)
		return
	}
	required := map[string][]string{
		domaintelemetry.TypePodLogLine: {"agent_id", "stack_id", "namespace", "pod", "container", "ts", "line"},
		domaintelemetry.TypeK8sEvent:   {"agent_id", "stack_id", "observed_at", "reason", "message", "event_type", "source", "involved_object"},
		domaintelemetry.TypeLogGap:     {"agent_id", "stack_id", "since_ts", "dropped_count", "reason"},
	}
	for _, f := range req.Frames {
		keys, ok := required[f.Type]
		if !ok {
			fail(http.StatusUnprocessableEntity, "unknown frame type %q", f.Type)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(f.Body, &m); err != nil {
			fail(http.StatusBadRequest, "body: %v", err)
			return
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				fail(http.StatusUnprocessableEntity, "%s without %s: %s", f.Type, k, f.Body)
				return
			}
		}
		if m["agent_id"] != c.agentID.String() {
			fail(http.StatusUnprocessableEntity, "agent_id %v, want %s", m["agent_id"], c.agentID)
			return
		}
		for _, k := range []string{"ts", "observed_at", "since_ts"} {
			if v, ok := m[k]; ok {
				if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(v)); err != nil {
					fail(http.StatusUnprocessableEntity, "%s is not RFC 3339: %v", k, v)
					return
				}
			}
		}
		if f.Type == domaintelemetry.TypeLogGap && !map[any]bool{domaintelemetry.GapRateLimit: true, domaintelemetry.GapBufferFull: true, domaintelemetry.GapDisconnected: true}[m["reason"]] {
			fail(http.StatusUnprocessableEntity, "log_gap reason %v", m["reason"])
			return
		}
		c.mu.Lock()
		c.frames = append(c.frames, Frame{Type: f.Type, Body: f.Body})
		c.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, `{"accepted":%d,"dropped":0}`, len(req.Frames))
	select {
	case c.got <- struct{}{}:
	default:
	}
}

func TestSenderPostsFramesAsTheContractSays(t *testing.T) {
	agentID := uuid.New()
	cs := &contractServer{t: t, agentID: agentID, got: make(chan struct{}, 1)}
	srv := httptest.NewServer(cs)
	defer srv.Close()
	bc, err := broker.New(srv.URL, secret.String("test-pak"), broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSender(bc, agentID, SenderOptions{FlushEvery: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()

	stack := uuid.New()
	s.Emit(LineFrame(domaintelemetry.PodLogLine{AgentID: agentID, StackID: stack, Namespace: "ns", Pod: "p", Container: "c", TS: t0, Line: "hi"}))
	s.Emit(EventFrame(domaintelemetry.K8sEvent{AgentID: agentID, StackID: stack, ObservedAt: t0, Reason: "Started", Message: "m",
		EventType: "Normal", Source: new("kubelet"), InvolvedObject: domaintelemetry.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "p", UID: "u"}}))
	s.Emit(GapFrame(domaintelemetry.LogGap{AgentID: agentID, StackID: stack, SinceTS: t0, DroppedCount: 3, Reason: domaintelemetry.GapRateLimit}))
	deadline := time.After(30 * time.Second)
	for {
		cs.mu.Lock()
		n := len(cs.frames)
		cs.mu.Unlock()
		if n == 3 {
			break
		}
		select {
		case <-cs.got:
		case <-deadline:
			t.Fatalf("the server got %d frames, want 3", n)
		}
	}
	cancel()
	<-done
	cs.mu.Lock()
	defer cs.mu.Unlock()
	types := []string{cs.frames[0].Type, cs.frames[1].Type, cs.frames[2].Type}
	if strings.Join(types, ",") != "pod_log_line,k8s_event,log_gap" {
		t.Fatalf("types = %v", types)
	}
}
