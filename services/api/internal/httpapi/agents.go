package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type agentHandlers struct {
	svc   *agents.Service
	state *targetstate.Service
	// stacks explains withheld stacks (?explain=true, dependencies.go).
	deps *stacks.Service
}

func (h agentHandlers) create(c *gin.Context) {
	var body struct {
		Name         string      `json:"name"`
		ClusterName  string      `json:"cluster_name"`
		GeneratorIDs []uuid.UUID `json:"generator_ids"`
	}
	if !bindJSON(c, &body) {
		return
	}
	a, pak, err := h.svc.Create(c.Request.Context(), principal(c), agents.CreateInput{Name: body.Name, ClusterName: body.ClusterName,
		GeneratorIDs: body.GeneratorIDs})
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	// initial_pak is the original's field; pak is what the quick start reads.
	c.JSON(http.StatusCreated, gin.H{"agent": a, "initial_pak": pak.Reveal(), "pak": pak.Reveal()})
}

func (h agentHandlers) search(c *gin.Context) {
	a, err := h.svc.Search(c.Request.Context(), principal(c), c.Query("name"), c.Query("cluster_name"))
	respond(c, http.StatusOK, a, err)
}

func (h agentHandlers) update(c *gin.Context) {
	var body struct {
		Name        optional[string] `json:"name"`
		ClusterName optional[string] `json:"cluster_name"`
		Status      optional[string] `json:"status"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	a, err := h.svc.Update(c.Request.Context(), principal(c), id, agents.UpdateInput{
		Name: body.Name.ptr(), ClusterName: body.ClusterName.ptr(), Status: body.Status.ptr()})
	respond(c, http.StatusOK, a, err)
}

func (h agentHandlers) reportEvent(c *gin.Context) {
	var body struct {
		AgentID            *uuid.UUID `json:"agent_id"`
		DeploymentObjectID uuid.UUID  `json:"deployment_object_id"`
		EventType          string     `json:"event_type"`
		Status             string     `json:"status"`
		Message            *string    `json:"message"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	e, err := h.svc.ReportEvent(c.Request.Context(), principal(c), id, agents.EventInput{
		AgentID: body.AgentID, DeploymentObjectID: body.DeploymentObjectID, EventType: body.EventType,
		Status: body.Status, Message: body.Message})
	respond(c, http.StatusCreated, e, err)
}

func (h agentHandlers) addTarget(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	var body struct {
		AgentID *uuid.UUID `json:"agent_id"`
		StackID uuid.UUID  `json:"stack_id"`
	}
	if !bindJSON(c, &body) || !sameOwner(c, body.AgentID, id, "agent_id") {
		return
	}
	if body.StackID == uuid.Nil {
		httpserver.Fail(c, domain.Invalid("stack_id is required"))
		return
	}
	out, err := h.svc.AddTarget(c.Request.Context(), principal(c), id, body.StackID)
	respond(c, http.StatusCreated, out, err)
}

func (h agentHandlers) removeTarget(c *gin.Context) {
	id, stackID, ok := pathIDPair(c, "stack_id")
	if !ok {
		return
	}
	noContent(c, h.svc.RemoveTarget(c.Request.Context(), principal(c), id, stackID))
}

func (h agentHandlers) rotate(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	a, pak, err := h.svc.RotatePAK(c.Request.Context(), principal(c), id)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"agent": a, "pak": pak.Reveal()})
}

// targetState answers GET /agents/{id}/target-state with ETag support and
// an optional ?wait= long-poll.
func (h agentHandlers) targetState(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	if explain, ok := explainRequested(c); !ok || explain {
		if ok {
			h.explainTargetState(c, id)
		}
		return
	}
	wait, err := parseWait(c.Query("wait"))
	if err != nil {
		httpserver.Fail(c, domain.Invalid("wait must be a duration such as 30s"))
		return
	}
	res, err := h.state.Get(c.Request.Context(), principal(c), targetstate.Query{
		AgentID: id, Full: c.Query("mode") == "full", IfNoneMatch: c.GetHeader("If-None-Match"), Wait: wait})
	if err != nil {
		if errors.Is(err, targetstate.ErrOverloaded) {
			// Load shedding: the agent backs off and comes back.
			c.Header("Retry-After", httpserver.RetryAfter())
		}
		httpserver.Fail(c, err)
		return
	}
	c.Header("ETag", res.ETag)
	if res.NotModified {
		c.Status(http.StatusNotModified)
		return
	}
	if res.Body != nil {
		// The index encodes each distinct answer once (same bytes as c.JSON).
		c.Data(http.StatusOK, "application/json; charset=utf-8", res.Body)
		return
	}
	c.JSON(http.StatusOK, res.Objects)
}

// parseWait accepts a Go duration ("30s") or whole seconds ("30").
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

func (h agentHandlers) allEvents(c *gin.Context) {
	tenant, ok := pakIDQuery(c)
	if !ok {
		return
	}
	out, err := h.svc.AllEvents(c.Request.Context(), principal(c), tenant)
	respond(c, http.StatusOK, out, err)
}

// sameOwner enforces that an owner id sent in a body equals the path id
// (docs/compatibility.md#label-bodies).
func sameOwner(c *gin.Context, body *uuid.UUID, path uuid.UUID, field string) bool {
	if body != nil && *body != path {
		// 0.9.1's codes: agent_id_mismatch, stack_id_mismatch.
		httpserver.Fail(c, domain.InvalidCode(field+"_mismatch", field+" in the body must match the path"))
		return false
	}
	return true
}
