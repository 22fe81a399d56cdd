package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/telemetry"
)

// TestTelemetrySenderAgainstTheBroker sends the three frame types through
// the agent's sender and broker client to the real api: what the broker
// stores (GET /stacks/{id}/logs and /events) is what was sent, gaps
// included, and live-tail subscribers that opened GET /stacks/{id}/live
// before the agent emitted (the admin by header and by the browser's
// subprotocols) receive the same frames as WsMessage {type, body}. The
// agent's own PAK is refused on /live. No cluster needed.
func TestTelemetrySenderAgainstTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	var st struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "telemetry-" + uuid.NewString()[:6]}, &st)
	created := registerAgent(t, b, "sender", st.ID)
	// The agent's status, as created: the broker stores telemetry of
	// associated stacks whatever it is.
	bc, err := broker.New(b.url, secret.String(created.pak), broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	agentID := created.id

	if _, resp, err := dialLive(b, st.ID, bearerPAK(created.pak)); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("agent PAK on /live: want 403, got %v %v", resp, err)
	}
	header := openLive(t, b, st.ID, bearerPAK(b.adminPAK))
	browser, resp, err := dialLive(b, st.ID, &websocket.DialOptions{Subprotocols: []string{"brokkr.pak." + b.adminPAK, "brokkr.v1"}})
	if err != nil {
		t.Fatalf("browser subprotocols on /live: %v", err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "brokkr.v1" {
		t.Errorf("echoed subprotocol %q, want brokkr.v1", got)
	}
	subscribers := map[string]*liveTail{"header": header, "browser": newLiveTail(t, browser)}

	s := telemetry.NewSender(bc, agentID, telemetry.SenderOptions{FlushEvery: 20 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	ts := time.Now().UTC().Truncate(time.Millisecond)
	// The api relays frames to its subscribers through Redis; its readiness
	// does not wait for that subscription, so probe lines go out until each
	// tail has one, then the frames under test.
	for name, tail := range subscribers {
		for i := 0; !tail.probed; i++ {
			if i == 300 {
				t.Fatalf("%s: no probe line arrived on /live", name)
			}
			s.Emit(telemetry.LineFrame(domaintelemetry.PodLogLine{AgentID: agentID, StackID: st.ID, Namespace: "ns", Pod: "probe",
				Container: "app", TS: ts, Line: "probe"}))
			tail.awaitProbe(100 * time.Millisecond)
		}
	}
	s.Emit(telemetry.LineFrame(domaintelemetry.PodLogLine{AgentID: agentID, StackID: st.ID, Namespace: "ns", Pod: "web-1",
		Container: "app", TS: ts, Line: "listening on :8080"}))
	s.Emit(telemetry.GapFrame(domaintelemetry.LogGap{AgentID: agentID, StackID: st.ID, Namespace: "ns", Pod: "web-1",
		Container: "app", SinceTS: ts, DroppedCount: 42, Reason: domaintelemetry.GapRateLimit}))
	s.Emit(telemetry.EventFrame(domaintelemetry.K8sEvent{AgentID: agentID, StackID: st.ID, ObservedAt: ts, Reason: "BackOff",
		Message: "Back-off restarting failed container", EventType: "Warning", Source: new("kubelet"),
		InvolvedObject: domaintelemetry.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "web-1", UID: "u-1"}}))
	// A stack the agent is not associated with: dropped by the broker,
	// not a failure of the batch.
	s.Emit(telemetry.LineFrame(domaintelemetry.PodLogLine{AgentID: agentID, StackID: uuid.New(), Namespace: "ns", Pod: "x",
		Container: "app", TS: ts, Line: "not mine"}))

	for name, tail := range subscribers {
		got := tail.collect(t, name, st.ID, agentID, 3)
		want := "pod_log_line ns/web-1/app listening on :8080|log_gap web-1 rate_limit 42|k8s_event Warning BackOff Pod/web-1 u-1"
		if strings.Join(got, "|") != want {
			t.Errorf("%s received %q, want %q", name, got, want)
		}
	}

	eventually(t, 30*time.Second, func() string {
		var got struct {
			Lines []struct {
				Kind         string  `json:"kind"`
				Pod          string  `json:"pod"`
				Line         string  `json:"line"`
				DroppedCount *int64  `json:"dropped_count"`
				Reason       *string `json:"reason"`
			} `json:"lines"`
		}
		b.call(t, http.MethodGet, "/stacks/"+st.ID.String()+"/logs", nil, &got)
		line, gap := false, false
		for _, l := range got.Lines {
			line = line || (l.Kind == "line" && l.Pod == "web-1" && l.Line == "listening on :8080")
			gap = gap || (l.Kind == "gap" && l.DroppedCount != nil && *l.DroppedCount == 42 && l.Reason != nil && *l.Reason == "rate_limit")
		}
		if !line || !gap {
			return fmt.Sprintf("/logs has line=%v gap=%v: %+v", line, gap, got.Lines)
		}
		return ""
	})
	eventually(t, 30*time.Second, func() string {
		var got struct {
			Events []struct {
				Reason         string `json:"reason"`
				EventType      string `json:"event_type"`
				InvolvedObject struct {
					Name, UID string
				} `json:"involved_object"`
			} `json:"events"`
		}
		b.call(t, http.MethodGet, "/stacks/"+st.ID.String()+"/events", nil, &got)
		for _, e := range got.Events {
			if e.Reason == "BackOff" && e.EventType == "Warning" && e.InvolvedObject.Name == "web-1" && e.InvolvedObject.UID == "u-1" {
				return ""
			}
		}
		return fmt.Sprintf("/events: %+v", got.Events)
	})
}

func dialLive(b brokerEnv, stackID uuid.UUID, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.url, "http")+"/api/v1/stacks/"+stackID.String()+"/live", opts)
}

func bearerPAK(pak string) *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + pak}}}
}

func openLive(t *testing.T, b brokerEnv, stackID uuid.UUID, opts *websocket.DialOptions) *liveTail {
	t.Helper()
	conn, _, err := dialLive(b, stackID, opts)
	if err != nil {
		t.Fatalf("/live: %v", err)
	}
	return newLiveTail(t, conn)
}

// wsMessage is the broker's live-tail frame.
type wsMessage struct {
	Type string         `json:"type"`
	Body map[string]any `json:"body"`
}

// liveTail reads one /live socket into a channel (a Read whose context
// ends would close the socket).
type liveTail struct {
	frames chan wsMessage
	err    chan error
	probed bool
}

func newLiveTail(t *testing.T, conn *websocket.Conn) *liveTail {
	ctx, cancel := context.WithCancel(context.Background())
	lt := &liveTail{frames: make(chan wsMessage, 1024), err: make(chan error, 1)}
	go func() {
		for {
			var m wsMessage
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				lt.err <- err
				return
			}
			lt.frames <- m
		}
	}()
	t.Cleanup(func() { cancel(); conn.CloseNow() })
	return lt
}

// awaitProbe waits up to d for a frame; any frame means the relay is up
// (only probe lines have been emitted so far).
func (lt *liveTail) awaitProbe(d time.Duration) {
	select {
	case <-lt.frames:
		lt.probed = true
	case <-time.After(d):
	}
}

// collect reads frames, skipping probe lines, until it has n, and
// describes each; every frame must carry the stack and the agent.
func (lt *liveTail) collect(t *testing.T, name string, stackID, agentID uuid.UUID, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		var m wsMessage
		select {
		case m = <-lt.frames:
		case err := <-lt.err:
			t.Fatalf("%s: after %q: %v", name, got, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: after %q: no more frames", name, got)
		}
		if m.Body["stack_id"] != stackID.String() || m.Body["agent_id"] != agentID.String() {
			t.Errorf("%s: frame of another stack or agent: %+v", name, m)
		}
		str := func(k string) string { v, _ := m.Body[k].(string); return v }
		switch m.Type {
		case "pod_log_line":
			if str("line") == "probe" {
				continue
			}
			got = append(got, fmt.Sprintf("%s %s/%s/%s %s", m.Type, str("namespace"), str("pod"), str("container"), str("line")))
		case "log_gap":
			got = append(got, fmt.Sprintf("%s %s %s %v", m.Type, str("pod"), str("reason"), m.Body["dropped_count"]))
		case "k8s_event":
			obj, _ := m.Body["involved_object"].(map[string]any)
			got = append(got, fmt.Sprintf("%s %s %s %v/%v %v", m.Type, str("event_type"), str("reason"), obj["kind"], obj["name"], obj["uid"]))
		default:
			got = append(got, m.Type)
		}
	}
	return got
}
