package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Frame types of the ingest batch and the live tail, named as 0.9.1's
// WsMessage variants (docs/telemetry.md).
const (
	TypePodLogLine = "pod_log_line"
	TypeK8sEvent   = "k8s_event"
	TypeLogGap     = "log_gap"
)

// Gap reasons of a log_gap frame.
const (
	GapRateLimit    = "rate_limit"
	GapBufferFull   = "buffer_full"
	GapDisconnected = "disconnected"
)

// Ingest limits (docs/telemetry.md#limits).
const (
	// MaxFrames is the most frames one ingest request carries.
	MaxFrames = 500
	// MaxBodyBytes is the largest ingest request body.
	MaxBodyBytes = 1 << 20
	// MaxLineBytes is the longest stored log line; longer ones are cut.
	MaxLineBytes = 16 << 10
)

// PodLogLine is one container log line (0.9.1's PodLogLine body).
type PodLogLine struct {
	AgentID   uuid.UUID `json:"agent_id"`
	StackID   uuid.UUID `json:"stack_id"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	TS        time.Time `json:"ts"`
	Line      string    `json:"line"`
}

// ObjectRef is the object a Kubernetes event is about.
type ObjectRef struct {
	APIVersion string `json:"api_version"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid"`
}

// K8sEvent is a Kubernetes Event of a stack's object (0.9.1's K8sEvent body).
type K8sEvent struct {
	AgentID        uuid.UUID `json:"agent_id"`
	StackID        uuid.UUID `json:"stack_id"`
	ObservedAt     time.Time `json:"observed_at"`
	Reason         string    `json:"reason"`
	Message        string    `json:"message"`
	EventType      string    `json:"event_type"`
	Source         *string   `json:"source"`
	InvolvedObject ObjectRef `json:"involved_object"`
}

// LogGap marks dropped log lines (0.9.1's LogGap body); the container
// fields are optional.
type LogGap struct {
	AgentID      uuid.UUID `json:"agent_id"`
	StackID      uuid.UUID `json:"stack_id"`
	SinceTS      time.Time `json:"since_ts"`
	DroppedCount int64     `json:"dropped_count"`
	Reason       string    `json:"reason"`
	Namespace    string    `json:"namespace,omitempty"`
	Pod          string    `json:"pod,omitempty"`
	Container    string    `json:"container,omitempty"`
}

// Frame is a WsMessage {type, body}: what an agent sends in a batch and
// what a live-tail subscriber receives.
type Frame struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// decoded is one validated frame of a batch: exactly one of its pointers
// is set.
type decoded struct {
	stackID uuid.UUID
	line    *PodLogLine
	event   *K8sEvent
	gap     *LogGap
}

func (d decoded) frame() Frame {
	var v any
	typ := TypePodLogLine
	switch {
	case d.event != nil:
		typ, v = TypeK8sEvent, d.event
	case d.gap != nil:
		typ, v = TypeLogGap, d.gap
	default:
		v = d.line
	}
	body, _ := json.Marshal(v) // plain structs: cannot fail
	return Frame{Type: typ, Body: body}
}

// decodeFrame validates frame i of agent agentID's batch: 422 for an
// unknown type or a body of the wrong shape, 400 agent_id_mismatch for a
// body naming another agent. An omitted agent_id is the caller's; a line
// longer than MaxLineBytes is cut.
func decodeFrame(i int, f Frame, agentID uuid.UUID) (decoded, error) {
	bad := func(msg string) error {
		return domain.Unprocessable(fmt.Sprintf("frames[%d] (%s): %s", i, f.Type, msg))
	}
	if len(bytes.TrimSpace(f.Body)) == 0 || bytes.Equal(bytes.TrimSpace(f.Body), []byte("null")) {
		return decoded{}, bad("body is required")
	}
	var (
		d       decoded
		owner   *uuid.UUID
		stackID *uuid.UUID
		missing []string
	)
	need := func(name string, empty bool) {
		if empty {
			missing = append(missing, name)
		}
	}
	switch f.Type {
	case TypePodLogLine:
		var b PodLogLine
		if err := json.Unmarshal(f.Body, &b); err != nil {
			return decoded{}, bad(err.Error())
		}
		need("namespace", b.Namespace == "")
		need("pod", b.Pod == "")
		need("container", b.Container == "")
		need("ts", b.TS.IsZero())
		b.Line = truncate(b.Line, MaxLineBytes)
		d.line, owner, stackID = &b, &b.AgentID, &b.StackID
	case TypeK8sEvent:
		var b K8sEvent
		if err := json.Unmarshal(f.Body, &b); err != nil {
			return decoded{}, bad(err.Error())
		}
		need("observed_at", b.ObservedAt.IsZero())
		need("reason", b.Reason == "")
		need("event_type", b.EventType == "")
		need("involved_object.kind", b.InvolvedObject.Kind == "")
		need("involved_object.name", b.InvolvedObject.Name == "")
		b.Message = truncate(b.Message, MaxLineBytes)
		d.event, owner, stackID = &b, &b.AgentID, &b.StackID
	case TypeLogGap:
		var b LogGap
		if err := json.Unmarshal(f.Body, &b); err != nil {
			return decoded{}, bad(err.Error())
		}
		need("since_ts", b.SinceTS.IsZero())
		switch b.Reason {
		case GapRateLimit, GapBufferFull, GapDisconnected:
		default:
			return decoded{}, bad(fmt.Sprintf("reason %q is not one of rate_limit, buffer_full, disconnected", b.Reason))
		}
		if b.DroppedCount < 0 {
			return decoded{}, bad("dropped_count must not be negative")
		}
		d.gap, owner, stackID = &b, &b.AgentID, &b.StackID
	default:
		return decoded{}, domain.Unprocessable(fmt.Sprintf("frames[%d]: unknown frame type %q (pod_log_line, k8s_event or log_gap)", i, f.Type))
	}
	need("stack_id", *stackID == uuid.Nil)
	if len(missing) > 0 {
		return decoded{}, bad("missing " + strings.Join(missing, ", "))
	}
	switch *owner {
	case uuid.Nil:
		*owner = agentID
	case agentID:
	default:
		return decoded{}, domain.InvalidCode("agent_id_mismatch", fmt.Sprintf("frames[%d]: agent_id is not the path's agent", i))
	}
	d.stackID = *stackID
	return d, nil
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop a rune cut in half (at most UTFMax-1 trailing bytes).
	for i := 1; i < utf8.UTFMax && !utf8.ValidString(s); i++ {
		s = s[:len(s)-1]
	}
	return s
}
