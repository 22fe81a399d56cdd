package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// pakHandlers serves GET /paks: the tenants a scope selector offers, as
// 0.9.1's PakSummary {id, name} (docs/compatibility.md#paks-listing).
type pakHandlers struct{ svc *paks.Tenants }

// pakIDQuery reads 0.9.1's ?pak_id=<generator id> view filter (GET /fleet,
// /stacks, /agent-events; docs/compatibility.md#pak-id-filter): nil when
// absent; a value that is not a UUID is answered 400 and ok is false.
func pakIDQuery(c *gin.Context) (*uuid.UUID, bool) {
	v, present := c.GetQuery("pak_id")
	if !present {
		return nil, true
	}
	id, err := uuid.Parse(v)
	if err != nil {
		httpserver.Fail(c, domain.Invalid("pak_id must be a UUID"))
		return nil, false
	}
	return &id, true
}

func (h pakHandlers) list(c *gin.Context) {
	out, err := h.svc.List(c.Request.Context(), principal(c))
	respond(c, http.StatusOK, out, err)
}
