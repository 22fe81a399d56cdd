package broker

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"
)

// TelemetryFrame is one frame of POST /agents/{id}/telemetry: its type
// (pod_log_line, k8s_event, log_gap) and its body, already encoded (the
// sender measures each frame to keep a request under the broker's size
// limit). See services/agent/README.md#log-streaming.
type TelemetryFrame struct {
	Type string          `json:"type"`
	Body json.RawMessage `json:"body"`
}

// TelemetryResult is the broker's 202 answer: frames stored and frames
// dropped (for a stack the agent is not associated with, say).
type TelemetryResult struct {
	Accepted int `json:"accepted"`
	Dropped  int `json:"dropped"`
}

// TelemetryPath is where an agent posts telemetry.
func TelemetryPath(agentID uuid.UUID) string {
	return "/api/v1/agents/" + agentID.String() + "/telemetry"
}

// PostTelemetry sends one batch of telemetry frames. Telemetry is lossy by
// design: it does not go through the outbox and carries no
// Idempotency-Key; the caller decides what to retry.
func (c *Client) PostTelemetry(ctx context.Context, agentID uuid.UUID, frames []TelemetryFrame) (TelemetryResult, error) {
	body, err := json.Marshal(struct {
		Frames []TelemetryFrame `json:"frames"`
	}{frames})
	if err != nil {
		return TelemetryResult{}, err
	}
	resp, err := c.Do(ctx, http.MethodPost, TelemetryPath(agentID), body, nil, 0)
	if err != nil {
		return TelemetryResult{}, err
	}
	var out TelemetryResult
	if len(resp.Body) == 0 {
		return out, nil
	}
	return out, decode(resp, &out)
}
