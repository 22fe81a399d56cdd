package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// The two ways every handler ends: a JSON answer or no content, or the
// use case's error through the error table (docs/architecture.md#errors).

// respond writes v with status, or the error.
func respond(c *gin.Context, status int, v any, err error) {
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(status, v)
}

// noContent answers 204 or the error.
func noContent(c *gin.Context, err error) {
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
