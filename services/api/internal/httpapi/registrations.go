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

// registrationArgs reads what register and deregister both take: the
// generator id from the path and the optional body's agent_id.
func registrationArgs(c *gin.Context) (generatorID uuid.UUID, agentID *uuid.UUID, ok bool) {
	if generatorID, ok = pathID(c, "id"); !ok {
		return
	}
	var body registrationBody
	if ok = bindOptionalJSON(c, &body); !ok {
		return
	}
	return generatorID, body.AgentID, true
}

func (h registrationHandlers) register(c *gin.Context) {
	id, agentID, ok := registrationArgs(c)
	if !ok {
		return
	}
	out, err := h.svc.Register(c.Request.Context(), principal(c), id, agentID)
	respond(c, http.StatusCreated, out, err)
}

func (h registrationHandlers) deregister(c *gin.Context) {
	id, agentID, ok := registrationArgs(c)
	if !ok {
		return
	}
	noContent(c, h.svc.Deregister(c.Request.Context(), principal(c), id, agentID))
}
