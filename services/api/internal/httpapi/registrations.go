package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/registrations"
)

// registrationHandlers serve generator registration
// (docs/compatibility.md#generator-registration).
type registrationHandlers struct{ svc *registrations.Service }

// registrationBody is 0.9.1's AgentRegistrationBody: agent_id is omitted
// by an agent acting on itself. The body itself is optional for them.
type registrationBody struct {
	AgentID *uuid.UUID `json:"agent_id"`
}

func (h registrationHandlers) register(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	var body registrationBody
	if !bindOptionalJSON(c, &body) {
		return
	}
	out, err := h.svc.Register(c.Request.Context(), principal(c), id, body.AgentID)
	respond(c, http.StatusCreated, out, err)
}

func (h registrationHandlers) deregister(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	var body registrationBody
	if !bindOptionalJSON(c, &body) {
		return
	}
	noContent(c, h.svc.Deregister(c.Request.Context(), principal(c), id, body.AgentID))
}

func (h registrationHandlers) forAgent(c *gin.Context) {
	byID(c, h.svc.ForAgent)
}

func (h registrationHandlers) forGenerator(c *gin.Context) {
	byID(c, h.svc.ForGenerator)
}
