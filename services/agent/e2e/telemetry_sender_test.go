package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/telemetry"
)

// TestTelemetrySenderAgainstTheBroker sends the three frame types through
// the agent's sender and broker client to the real api: what the broker
// stores (GET /stacks/{id}/logs and /events) is what was sent, gaps
// included. No cluster needed.
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
	s := telemetry.NewSender(bc, agentID, telemetry.SenderOptions{FlushEvery: 20 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	ts := time.Now().UTC().Truncate(time.Millisecond)
	s.Emit(telemetry.LineFrame(telemetry.PodLogLine{AgentID: agentID, StackID: st.ID, Namespace: "ns", Pod: "web-1",
		Container: "app", TS: ts, Line: "listening on :8080"}))
	s.Emit(telemetry.GapFrame(telemetry.LogGap{AgentID: agentID, StackID: st.ID, Namespace: "ns", Pod: "web-1",
		Container: "app", SinceTS: ts, DroppedCount: 42, Reason: telemetry.GapRateLimit}))
	s.Emit(telemetry.EventFrame(telemetry.K8sEvent{AgentID: agentID, StackID: st.ID, ObservedAt: ts, Reason: "BackOff",
		Message: "Back-off restarting failed container", EventType: "Warning", Source: "kubelet",
		InvolvedObject: telemetry.InvolvedObject{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: "web-1", UID: "u-1"}}))
	// A stack the agent is not associated with: dropped by the broker,
	// not a failure of the batch.
	s.Emit(telemetry.LineFrame(telemetry.PodLogLine{AgentID: agentID, StackID: uuid.New(), Namespace: "ns", Pod: "x",
		Container: "app", TS: ts, Line: "not mine"}))

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
