package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// telemetryHandlers serve stack telemetry (docs/telemetry.md): the agent's
// ingest, the history per stack and the live tail.
type telemetryHandlers struct {
	svc *telemetry.Service
	hub *telemetry.Hub
}

// ingest answers POST /agents/{id}/telemetry: 202 {accepted, dropped}.
// Over 1 MiB or 500 frames is 413; malformed JSON 400; an unknown frame
// type or a body of the wrong shape 422.
func (h telemetryHandlers) ingest(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, domaintelemetry.MaxBodyBytes)
	body, ok := readJSON(c)
	if !ok {
		return
	}
	var in struct {
		Frames *[]telemetry.Frame `json:"frames"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&in); err != nil {
		httpserver.Fail(c, domain.Unprocessable("Failed to deserialize the JSON body into the target type: "+err.Error()))
		return
	}
	if in.Frames == nil {
		httpserver.Fail(c, domain.Unprocessable("Failed to deserialize the JSON body into the target type: missing field `frames`"))
		return
	}
	if len(*in.Frames) > domaintelemetry.MaxFrames {
		httpserver.AbortError(c, http.StatusRequestEntityTooLarge, "a telemetry batch carries at most 500 frames")
		return
	}
	res, err := h.svc.Ingest(c.Request.Context(), principal(c), id, *in.Frames)
	respond(c, http.StatusAccepted, res, err)
}

// historyQuery reads since (RFC 3339) and limit.
func historyQuery(c *gin.Context) (telemetry.Query, bool) {
	q := query{c: c}
	var out telemetry.Query
	if v := c.Query("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			q.bad = "since must be an RFC 3339 timestamp"
		}
		out.Since = &t
	}
	out.Limit = q.int("limit")
	return out, q.ok()
}

// history answers a history route with read, the use case's Logs or
// Events: GET /stacks/{id}/logs (0.9.1's PodLogHistoryResponse) and
// GET /stacks/{id}/events (K8sEventHistoryResponse).
func history[T any](read func(context.Context, identity.Principal, uuid.UUID, telemetry.Query) (T, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		q, ok := historyQuery(c)
		if !ok {
			return
		}
		out, err := read(c.Request.Context(), principal(c), id, q)
		respond(c, http.StatusOK, out, err)
	}
}

// live answers GET /stacks/{id}/live: a read-only WebSocket of the stack's
// WsMessage frames (pod_log_line, k8s_event, log_gap), admin or the owning
// generator only. A subscriber that falls LiveBuffer frames behind loses
// frames and reads a log_gap with reason buffer_full.
func (h telemetryHandlers) live(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	if h.hub == nil || h.svc == nil {
		httpserver.Fail(c, domain.Unavailable("the live tail is not configured", nil))
		return
	}
	// Ownership before the upgrade check: another generator gets 403.
	if err := h.svc.CheckRead(c.Request.Context(), principal(c), id); err != nil {
		httpserver.Fail(c, err)
		return
	}
	if !wantsUpgrade(c, "GET /stacks/{id}/live") {
		return
	}
	sub, err := h.hub.Subscribe(c.Request.Context(), principal(c), id)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	defer sub.Close()
	serveWebSocket(c, func(ctx context.Context) (any, error) { return sub.Next(ctx) })
}
