package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type stackHandlers struct{ svc *stacks.Service }

func (h stackHandlers) list(c *gin.Context) {
	tenant, ok := pakIDQuery(c)
	if !ok {
		return
	}
	if tenant != nil {
		out, err := h.svc.ListTenant(c.Request.Context(), principal(c), *tenant)
		respond(c, http.StatusOK, out, err)
		return
	}
	out, err := h.svc.List(c.Request.Context(), principal(c))
	respond(c, http.StatusOK, out, err)
}

func (h stackHandlers) create(c *gin.Context) {
	var body struct {
		Name        string      `json:"name"`
		Description *string     `json:"description"`
		GeneratorID *uuid.UUID  `json:"generator_id"`
		DependsOn   []uuid.UUID `json:"depends_on"`
	}
	if !bindJSON(c, &body) {
		return
	}
	st, err := h.svc.Create(c.Request.Context(), principal(c), stacks.CreateInput{
		Name: body.Name, Description: body.Description, GeneratorID: body.GeneratorID, DependsOn: body.DependsOn})
	respond(c, http.StatusCreated, st, err)
}

func (h stackHandlers) update(c *gin.Context) {
	var body struct {
		ID          *uuid.UUID       `json:"id"`
		Name        optional[string] `json:"name"`
		Description optional[string] `json:"description"`
		// DependsOn absent keeps the dependencies; null or [] clears them.
		DependsOn optional[[]uuid.UUID] `json:"depends_on"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	in := stacks.UpdateInput{ID: body.ID, Name: body.Name.ptr(), Description: body.Description.ptr(),
		ClearDescription: body.Description.Null}
	if body.DependsOn.Set {
		deps := body.DependsOn.Value
		in.DependsOn = &deps
	}
	st, err := h.svc.Update(c.Request.Context(), principal(c), id, in)
	respond(c, http.StatusOK, st, err)
}

func (h stackHandlers) createDeploymentObject(c *gin.Context) {
	var body struct {
		YAMLContent      *string `json:"yaml_content"`
		IsDeletionMarker any     `json:"is_deletion_marker"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	if body.YAMLContent == nil {
		httpserver.Fail(c, domain.InvalidCode("invalid_deployment_object", "Missing or invalid yaml_content"))
		return
	}
	// The original treats a non-boolean marker flag as false.
	marker, _ := body.IsDeletionMarker.(bool)
	d, err := h.svc.CreateDeploymentObject(c.Request.Context(), principal(c), id, stacks.DeploymentInput{
		YAMLContent: *body.YAMLContent, IsDeletionMarker: marker})
	respond(c, http.StatusCreated, d, err)
}
