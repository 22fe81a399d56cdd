package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/labeling"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// labelHandlers serve the label and annotation routes of one owner kind
// (/agents/:id/... and /stacks/:id/...). The JSON names the owner by its
// own field (agent_id, stack_id), as the original does.
type labelHandlers struct {
	svc *labeling.Service
	// ownerField is the owner id's JSON field: "agent_id" or "stack_id".
	ownerField string
	// annotationMismatch, when set, answers an annotation body naming
	// another owner with that message (the original's for stacks) instead
	// of sameOwner's.
	annotationMismatch string
}

func (h labelHandlers) list(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	out, err := h.svc.Labels(c.Request.Context(), principal(c), id)
	respond(c, http.StatusOK, h.labelViews(out), err)
}

func (h labelHandlers) add(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	owner := ownerRef{field: h.ownerField}
	label, ok := stringOrObject(c, "label", &owner)
	if !ok || !sameOwner(c, owner.id, id, h.ownerField) {
		return
	}
	out, err := h.svc.AddLabel(c.Request.Context(), principal(c), id, label)
	respond(c, http.StatusCreated, labelView{h.ownerField, out}, err)
}

func (h labelHandlers) annotations(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	out, err := h.svc.Annotations(c.Request.Context(), principal(c), id)
	respond(c, http.StatusOK, h.annotationViews(out), err)
}

func (h labelHandlers) addAnnotation(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	body := annotationBody{owner: ownerRef{field: h.ownerField}}
	if !bindJSON(c, &body) {
		return
	}
	if h.annotationMismatch != "" {
		if body.owner.id != nil && *body.owner.id != id {
			httpserver.Fail(c, domain.InvalidCode("stack_id_mismatch", h.annotationMismatch))
			return
		}
	} else if !sameOwner(c, body.owner.id, id, h.ownerField) {
		return
	}
	out, err := h.svc.AddAnnotation(c.Request.Context(), principal(c), id, body.Key, body.Value)
	respond(c, http.StatusCreated, annotationView{h.ownerField, out}, err)
}

func (h labelHandlers) labelViews(ls []labels.Label) []labelView {
	out := make([]labelView, len(ls))
	for i, l := range ls {
		out[i] = labelView{h.ownerField, l}
	}
	return out
}

func (h labelHandlers) annotationViews(as []labels.Annotation) []annotationView {
	out := make([]annotationView, len(as))
	for i, a := range as {
		out[i] = annotationView{h.ownerField, a}
	}
	return out
}

// ownerRef decodes the owner id a label or annotation body may carry under
// field (docs/compatibility.md#label-bodies); absent or null leaves id nil.
type ownerRef struct {
	field string
	id    *uuid.UUID
}

func (o *ownerRef) UnmarshalJSON(b []byte) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	if raw, ok := obj[o.field]; ok {
		return json.Unmarshal(raw, &o.id)
	}
	return nil
}

// annotationBody is the body of POST .../annotations.
type annotationBody struct {
	owner ownerRef
	Key   string
	Value string
}

func (a *annotationBody) UnmarshalJSON(b []byte) error {
	var kv struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &kv); err != nil {
		return err
	}
	a.Key, a.Value = kv.Key, kv.Value
	return a.owner.UnmarshalJSON(b)
}

// labelView is a label on the wire: {"id", "<owner>_id", "label"}.
type labelView struct {
	ownerField string
	l          labels.Label
}

func (v labelView) MarshalJSON() ([]byte, error) {
	return object("id", v.l.ID, v.ownerField, v.l.OwnerID, "label", v.l.Label)
}

// annotationView is an annotation on the wire:
// {"id", "<owner>_id", "key", "value"}.
type annotationView struct {
	ownerField string
	a          labels.Annotation
}

func (v annotationView) MarshalJSON() ([]byte, error) {
	return object("id", v.a.ID, v.ownerField, v.a.OwnerID, "key", v.a.Key, "value", v.a.Value)
}

// object marshals alternating names and values as one JSON object, in
// that order.
func object(kv ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		name, err := json.Marshal(kv[i])
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(kv[i+1])
		if err != nil {
			return nil, err
		}
		b.Write(name)
		b.WriteByte(':')
		b.Write(value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
