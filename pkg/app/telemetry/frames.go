package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// The frames' wire contract (types, bodies, gap reasons, limits and the
// checks a body must pass) is pkg/domain/telemetry, shared with the agent
// that sends the frames.

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
	line    *domaintelemetry.PodLogLine
	event   *domaintelemetry.K8sEvent
	gap     *domaintelemetry.LogGap
}

func (d decoded) frame() Frame {
	var v any
	typ := domaintelemetry.TypePodLogLine
	switch {
	case d.event != nil:
		typ, v = domaintelemetry.TypeK8sEvent, d.event
	case d.gap != nil:
		typ, v = domaintelemetry.TypeLogGap, d.gap
	default:
		v = d.line
	}
	body, _ := json.Marshal(v) // plain structs: cannot fail
	return Frame{Type: typ, Body: body}
}

// decodeFrame validates frame i of agent agentID's batch: 422 for an
// unknown type or a body of the wrong shape, 400 agent_id_mismatch for a
// body naming another agent. An omitted agent_id is the caller's; a line
// or message longer than the domain's MaxLineBytes is cut.
func decodeFrame(i int, f Frame, agentID uuid.UUID) (decoded, error) {
	bad := func(msg string) error {
		return domain.Unprocessable(fmt.Sprintf("frames[%d] (%s): %s", i, f.Type, msg))
	}
	if len(bytes.TrimSpace(f.Body)) == 0 || bytes.Equal(bytes.TrimSpace(f.Body), []byte("null")) {
		return decoded{}, bad("body is required")
	}
	var (
		d     decoded
		err   error
		owner *uuid.UUID
	)
	switch f.Type {
	case domaintelemetry.TypePodLogLine:
		if d.line, err = decodeBody[domaintelemetry.PodLogLine](f.Body); err == nil {
			d.line.Line = domaintelemetry.TruncateLine(d.line.Line)
			d.stackID, owner = d.line.StackID, &d.line.AgentID
		}
	case domaintelemetry.TypeK8sEvent:
		if d.event, err = decodeBody[domaintelemetry.K8sEvent](f.Body); err == nil {
			d.event.Message = domaintelemetry.TruncateLine(d.event.Message)
			d.stackID, owner = d.event.StackID, &d.event.AgentID
		}
	case domaintelemetry.TypeLogGap:
		if d.gap, err = decodeBody[domaintelemetry.LogGap](f.Body); err == nil {
			d.stackID, owner = d.gap.StackID, &d.gap.AgentID
		}
	default:
		return decoded{}, domain.Unprocessable(fmt.Sprintf("frames[%d]: unknown frame type %q (pod_log_line, k8s_event or log_gap)", i, f.Type))
	}
	if err != nil {
		return decoded{}, bad(err.Error())
	}
	switch *owner {
	case uuid.Nil:
		*owner = agentID
	case agentID:
	default:
		return decoded{}, domain.InvalidCode("agent_id_mismatch", fmt.Sprintf("frames[%d]: agent_id is not the path's agent", i))
	}
	return d, nil
}

// decodeBody decodes a frame's body and checks it (pkg/domain/telemetry).
func decodeBody[B interface{ Validate() error }](raw json.RawMessage) (*B, error) {
	var b B
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, err
	}
	return &b, b.Validate()
}
