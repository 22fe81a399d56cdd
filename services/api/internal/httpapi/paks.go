package httpapi

import (
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

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
