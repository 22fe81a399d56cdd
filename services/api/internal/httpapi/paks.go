package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/paks"
)

// pakHandlers serves GET /paks: the tenants a scope selector offers, as
// 0.9.1's PakSummary {id, name} (docs/compatibility.md#paks-listing).
type pakHandlers struct{ svc *paks.Tenants }

func (h pakHandlers) list(c *gin.Context) {
	out, err := h.svc.List(c.Request.Context(), principal(c))
	respond(c, http.StatusOK, out, err)
}
