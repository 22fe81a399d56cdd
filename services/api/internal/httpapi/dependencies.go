package httpapi

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// explainedTargetState is the body of GET /agents/{id}/target-state
// ?explain=true (docs/dependencies.md#explain).
type explainedTargetState struct {
	Objects  []stack.DeploymentObject `json:"objects"`
	Withheld []stack.Withheld         `json:"withheld"`
}

// explainRequested reads ?explain: ok=false (after answering 400) when it
// is not a boolean.
func explainRequested(c *gin.Context) (explain, ok bool) {
	v := c.Query("explain")
	if v == "" {
		return false, true
	}
	explain, err := strconv.ParseBool(v)
	if err != nil {
		httpserver.Fail(c, domain.Invalid("explain must be true or false"))
		return false, false
	}
	return explain, true
}

// explainTargetState answers the agent's current target state (the same
// objects as without explain, ?mode=full honoured) with the stacks whose
// latest object it does not receive yet and what each waits for. It never
// long-polls and sends no ETag: it is a diagnosis, not a poll.
func (h agentHandlers) explainTargetState(c *gin.Context, id uuid.UUID) {
	ctx, p := c.Request.Context(), principal(c)
	res, err := h.state.Get(ctx, p, targetstate.Query{AgentID: id, Full: c.Query("mode") == "full"})
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	withheld, err := h.deps.Withheld(ctx, p, id)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	objects := res.Objects
	if objects == nil {
		objects = []stack.DeploymentObject{}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, explainedTargetState{Objects: objects, Withheld: withheld})
}
