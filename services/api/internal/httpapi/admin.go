package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/app/configreload"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type adminHandlers struct {
	audit  *auditlog.Service
	reload *configreload.Service
}

// auditLogs answers GET /admin/audit-logs with the original's filters.
func (h adminHandlers) auditLogs(c *gin.Context) {
	var f audit.Filter
	var bad string
	uuidParam := func(name string) *uuid.UUID {
		v := c.Query(name)
		if v == "" {
			return nil
		}
		id, err := uuid.Parse(v)
		if err != nil {
			bad = name + " must be a UUID"
			return nil
		}
		return &id
	}
	timeParam := func(name string) *time.Time {
		v := c.Query(name)
		if v == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			bad = name + " must be an RFC 3339 timestamp"
			return nil
		}
		return &t
	}
	intParam := func(name string) int {
		v := c.Query(name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			bad = name + " must be an integer"
		}
		return n
	}
	f.ActorType = c.Query("actor_type")
	f.ActorID = uuidParam("actor_id")
	f.Action = c.Query("action")
	f.ResourceType = c.Query("resource_type")
	f.ResourceID = uuidParam("resource_id")
	f.From = timeParam("from")
	f.To = timeParam("to")
	f.Limit = intParam("limit")
	f.Offset = intParam("offset")
	if bad != "" {
		httpserver.Fail(c, domain.Invalid("Failed to deserialize query string: "+bad))
		return
	}
	page, err := h.audit.Query(c.Request.Context(), principal(c), f)
	respond(c, http.StatusOK, page, err)
}

func (h adminHandlers) reloadConfig(c *gin.Context) {
	res, err := h.reload.Reload(c.Request.Context(), principal(c))
	respond(c, http.StatusOK, res, err)
}

// verifyPAK answers POST /auth/pak with the caller's identity.
func verifyPAK(c *gin.Context) {
	c.JSON(http.StatusOK, principal(c).Payload())
}
