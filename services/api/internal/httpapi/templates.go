package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type templateHandlers struct{ svc *templates.Service }

// templateBody accepts the documented field names and the aliases one docs
// example uses (template_yaml, schema_json); the schema may be sent as a
// JSON string (documented) or as a JSON object.
type templateBody struct {
	Name             string           `json:"name"`
	Description      optional[string] `json:"description"`
	TemplateContent  string           `json:"template_content"`
	TemplateYAML     string           `json:"template_yaml"`
	ParametersSchema json.RawMessage  `json:"parameters_schema"`
	SchemaJSON       json.RawMessage  `json:"schema_json"`
}

func (b templateBody) content() string {
	if b.TemplateContent != "" {
		return b.TemplateContent
	}
	return b.TemplateYAML
}

func (b templateBody) schema() string {
	raw := b.ParametersSchema
	if len(raw) == 0 || string(raw) == "null" {
		raw = b.SchemaJSON
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (h templateHandlers) create(c *gin.Context) {
	var b templateBody
	if !bindJSON(c, &b) {
		return
	}
	t, err := h.svc.Create(c.Request.Context(), principal(c), templates.CreateInput{
		Name: b.Name, Description: b.Description.ptr(), TemplateContent: b.content(), ParametersSchema: b.schema()})
	respond(c, http.StatusCreated, t, err)
}

func (h templateHandlers) update(c *gin.Context) {
	var b templateBody
	id, ok := pathIDAndJSON(c, &b)
	if !ok {
		return
	}
	t, err := h.svc.Update(c.Request.Context(), principal(c), id, templates.UpdateInput{
		Description: b.Description.ptr(), TemplateContent: b.content(), ParametersSchema: b.schema()})
	respond(c, http.StatusOK, t, err)
}

func (h templateHandlers) addLabel(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	label, ok := stringOrObject(c, "label", nil)
	if !ok {
		return
	}
	out, err := h.svc.AddLabel(c.Request.Context(), principal(c), id, label)
	respond(c, http.StatusCreated, out, err)
}

func (h templateHandlers) addAnnotation(c *gin.Context) {
	var body struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	out, err := h.svc.AddAnnotation(c.Request.Context(), principal(c), id, body.Key, body.Value)
	respond(c, http.StatusCreated, out, err)
}

// instantiate answers POST /stacks/{id}/deployment-objects/from-template
// with a JSON array holding the new object
// (docs/compatibility.md#instantiate-returns-array).
func (h templateHandlers) instantiate(c *gin.Context) {
	var body struct {
		TemplateID uuid.UUID       `json:"template_id"`
		Version    *int            `json:"version"`
		Parameters json.RawMessage `json:"parameters"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	d, err := h.svc.Instantiate(c.Request.Context(), principal(c), id, templates.InstantiateInput{
		TemplateID: body.TemplateID, Version: body.Version, Parameters: body.Parameters})
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, []any{d})
}
