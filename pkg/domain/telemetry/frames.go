// Package telemetry is the wire contract of stack telemetry
// (docs/telemetry.md): the frames an agent posts to
// POST /api/v1/agents/{id}/telemetry and a live-tail subscriber reads
// (pod_log_line, k8s_event, log_gap, named as 0.9.1's WsMessage variants),
// their bodies, the ingest limits and the checks a body must pass. The
// agent that sends them (services/agent/internal/telemetry) and the broker
// that accepts them (pkg/app/telemetry) both use it, so the two cannot
// drift apart.
package telemetry

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Frame types: the "type" of a frame.
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
	// MaxLineBytes is the longest log line or event message; longer ones
	// are cut (TruncateLine).
	MaxLineBytes = 16 << 10
)

// PodLogLine is the body of a pod_log_line frame: one container log line
// (0.9.1's PodLogLine).
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

// K8sEvent is the body of a k8s_event frame: a Kubernetes Event of a
// stack's object (0.9.1's K8sEvent).
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

// LogGap is the body of a log_gap frame (0.9.1's LogGap): DroppedCount
// frames of the stack (of one container when the container fields, which
// are optional, are set) were lost since SinceTS, for Reason.
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

// Validate reports the required fields the line lacks. agent_id is not
// required: the broker takes the posting agent's.
func (l PodLogLine) Validate() error {
	return missing(l.StackID,
		field{"namespace", l.Namespace == ""},
		field{"pod", l.Pod == ""},
		field{"container", l.Container == ""},
		field{"ts", l.TS.IsZero()})
}

// Validate reports the required fields the event lacks.
func (e K8sEvent) Validate() error {
	return missing(e.StackID,
		field{"observed_at", e.ObservedAt.IsZero()},
		field{"reason", e.Reason == ""},
		field{"event_type", e.EventType == ""},
		field{"involved_object.kind", e.InvolvedObject.Kind == ""},
		field{"involved_object.name", e.InvolvedObject.Name == ""})
}

// Validate reports an unknown reason, a negative count, or the required
// fields the gap lacks, in that order.
func (g LogGap) Validate() error {
	switch g.Reason {
	case GapRateLimit, GapBufferFull, GapDisconnected:
	default:
		return fmt.Errorf("reason %q is not one of rate_limit, buffer_full, disconnected", g.Reason)
	}
	if g.DroppedCount < 0 {
		return errors.New("dropped_count must not be negative")
	}
	return missing(g.StackID, field{"since_ts", g.SinceTS.IsZero()})
}

// field is a required body field by its JSON name, and whether it is empty.
type field struct {
	name  string
	empty bool
}

// missing names the empty fields, then stack_id when it is nil (every body
// needs one): "missing a, b".
func missing(stackID uuid.UUID, fields ...field) error {
	var names []string
	for _, f := range fields {
		if f.empty {
			names = append(names, f.name)
		}
	}
	if stackID == uuid.Nil {
		names = append(names, "stack_id")
	}
	if len(names) == 0 {
		return nil
	}
	return errors.New("missing " + strings.Join(names, ", "))
}

// TruncateLine cuts s to at most MaxLineBytes without splitting a UTF-8
// sequence.
func TruncateLine(s string) string {
	n := MaxLineBytes
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
