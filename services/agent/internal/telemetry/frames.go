// Package telemetry is the agent's pod-log streaming and Kubernetes-event
// forwarding (services/agent/README.md#log-streaming): it tails the
// containers of Pods that opt in with the annotations k8s.brokkr.io/stack
// and brokkr.io/stream-logs: "true", rate-limited per container, forwards
// the Events of stack-managed objects, and posts both in batches to
// POST /api/v1/agents/{id}/telemetry. Telemetry is lossy by design: a
// bounded in-memory queue, never the outbox; whatever is lost is counted
// into log_gap frames. The frames' types, bodies and limits are the wire
// contract in pkg/domain/telemetry, shared with the broker.
package telemetry

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// The opt-in annotations on a Pod; both must be present.
const (
	AnnotationStack      = "k8s.brokkr.io/stack"
	AnnotationStreamLogs = "brokkr.io/stream-logs"
)

// Source is where a frame comes from: its stack and, for log lines and
// their gaps, its container. Lost frames are counted per Source.
type Source struct {
	StackID   uuid.UUID
	Namespace string
	Pod       string
	Container string
}

// Frame is one encoded frame plus what the sender needs to account for it
// when it is lost.
type Frame struct {
	Type string
	Body json.RawMessage
	// Source and TS (the line's or event's time) feed the log_gap that
	// counts the frame if it is dropped.
	Source Source
	TS     time.Time
	// Gap is set on log_gap frames: a dropped gap is merged back into the
	// pending gaps instead of being counted as a lost frame.
	Gap *domaintelemetry.LogGap
}

func (f Frame) wire() broker.TelemetryFrame { return broker.TelemetryFrame{Type: f.Type, Body: f.Body} }

// size is the frame's encoded size in a request body.
func (f Frame) size() int { return len(f.Type) + len(f.Body) + len(`{"type":"","body":},`) }

func encode(typ string, body any) json.RawMessage {
	b, err := json.Marshal(body)
	if err != nil { // the bodies are plain structs: cannot happen
		panic("telemetry: encoding a " + typ + " frame: " + err.Error())
	}
	return b
}

// LineFrame builds a pod_log_line frame.
func LineFrame(l domaintelemetry.PodLogLine) Frame {
	l.TS = l.TS.UTC()
	return Frame{Type: domaintelemetry.TypePodLogLine, Body: encode(domaintelemetry.TypePodLogLine, l), TS: l.TS,
		Source: Source{StackID: l.StackID, Namespace: l.Namespace, Pod: l.Pod, Container: l.Container}}
}

// EventFrame builds a k8s_event frame.
func EventFrame(e domaintelemetry.K8sEvent) Frame {
	e.ObservedAt = e.ObservedAt.UTC()
	return Frame{Type: domaintelemetry.TypeK8sEvent, Body: encode(domaintelemetry.TypeK8sEvent, e), TS: e.ObservedAt, Source: Source{StackID: e.StackID}}
}

// GapFrame builds a log_gap frame.
func GapFrame(g domaintelemetry.LogGap) Frame {
	g.SinceTS = g.SinceTS.UTC()
	return Frame{Type: domaintelemetry.TypeLogGap, Body: encode(domaintelemetry.TypeLogGap, g), TS: g.SinceTS, Gap: &g,
		Source: Source{StackID: g.StackID, Namespace: g.Namespace, Pod: g.Pod, Container: g.Container}}
}

// Emitter takes frames; it must not block (the Sender).
type Emitter interface {
	Emit(f Frame)
}
