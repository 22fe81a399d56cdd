package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type generatorHandlers struct{ svc *generators.Service }

func (h generatorHandlers) create(c *gin.Context) {
	var body struct {
		Name        string  `json:"name"`
		Description *string `json:"description"`
	}
	if !bindJSON(c, &body) {
		return
	}
	g, pak, err := h.svc.Create(c.Request.Context(), principal(c), generators.CreateInput{Name: body.Name, Description: body.Description})
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"generator": g, "pak": pak.Reveal()})
}

func (h generatorHandlers) update(c *gin.Context) {
	var body struct {
		Name        optional[string] `json:"name"`
		Description optional[string] `json:"description"`
		IsActive    optional[bool]   `json:"is_active"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	g, err := h.svc.Update(c.Request.Context(), principal(c), id, generators.UpdateInput{
		Name: body.Name.ptr(), Description: body.Description.ptr(), ClearDescription: body.Description.Null,
		IsActive: body.IsActive.ptr()})
	respond(c, http.StatusOK, g, err)
}

func (h generatorHandlers) rotate(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	g, pak, err := h.svc.RotatePAK(c.Request.Context(), principal(c), id)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"generator": g, "pak": pak.Reveal()})
}
