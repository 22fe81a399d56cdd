package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type webhookHandlers struct{ svc *webhooks.Service }

// registerWebhooks mounts the webhook routes. Role checks (and, for body
// routes under an id, the 404) come before the body is read
// (docs/compatibility.md#check-order).
func registerWebhooks(v1 *gin.RouterGroup, s Services) {
	h := webhookHandlers{svc: s.Webhooks}
	admin := guard(webhooks.AdminOnly)
	subscriptionFound := guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		_, err := s.Webhooks.Get(ctx, p, id)
		return err
	})
	heldByCaller := guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		return s.Webhooks.CheckReport(ctx, p, id)
	})

	v1.GET("/webhooks", admin, byPrincipal(s.Webhooks.List))
	v1.POST("/webhooks", admin, h.create)
	v1.GET("/webhooks/event-types", admin, byPrincipal(s.Webhooks.EventTypes))
	v1.GET("/webhooks/:id", admin, byID(s.Webhooks.Get))
	v1.PUT("/webhooks/:id", admin, subscriptionFound, h.update)
	v1.DELETE("/webhooks/:id", admin, actOnID(s.Webhooks.Delete))
	v1.GET("/webhooks/:id/deliveries", admin, h.deliveries)
	v1.POST("/webhooks/:id/test", admin, byID(s.Webhooks.Test))
	v1.POST("/webhooks/:id/deliveries/:delivery_id/retry", admin, h.retry)
	v1.GET("/agents/:id/webhooks/pending", guardID(webhooks.AdminOrAgentSelf), h.pending)
	v1.POST("/webhook-deliveries/:id/result", guard(webhooks.AgentOnly), heldByCaller, h.result)
}

// webhookBody is POST /webhooks and PUT /webhooks/{id}. Every field is
// optional on PUT, where an explicit null clears auth_header,
// signing_secret, filters and target_labels
// (docs/compatibility.md#partial-put). Read-only
// fields a client echoes back (id, has_url, created_at …) are ignored.
type webhookBody struct {
	Name           optional[string]          `json:"name"`
	URL            optional[string]          `json:"url"`
	AuthHeader     optional[string]          `json:"auth_header"`
	SigningSecret  optional[string]          `json:"signing_secret"`
	EventTypes     optional[[]string]        `json:"event_types"`
	Filters        optional[webhook.Filters] `json:"filters"`
	TargetLabels   optional[[]string]        `json:"target_labels"`
	Enabled        optional[bool]            `json:"enabled"`
	MaxRetries     optional[int]             `json:"max_retries"`
	TimeoutSeconds optional[int]             `json:"timeout_seconds"`
	Validate       optional[bool]            `json:"validate"`
}

func nullable[T any](o optional[T]) webhooks.Nullable[T] {
	return webhooks.Nullable[T]{Set: o.Set, Value: o.ptr()}
}

func (h webhookHandlers) create(c *gin.Context) {
	var b webhookBody
	if !bindJSON(c, &b) {
		return
	}
	in := webhooks.CreateInput{Name: b.Name.Value, URL: b.URL.Value, AuthHeader: b.AuthHeader.ptr(),
		SigningSecret: b.SigningSecret.ptr(), EventTypes: b.EventTypes.Value, Filters: b.Filters.ptr(),
		TargetLabels: b.TargetLabels.Value, MaxRetries: b.MaxRetries.ptr(), TimeoutSeconds: b.TimeoutSeconds.ptr(),
		Enabled: b.Enabled.ptr()}
	if v := b.Validate.ptr(); v != nil {
		in.Validate = *v
	}
	out, err := h.svc.Create(c.Request.Context(), principal(c), in)
	respond(c, http.StatusCreated, out, err)
}

func (h webhookHandlers) update(c *gin.Context) {
	var b webhookBody
	id, ok := pathIDAndJSON(c, &b)
	if !ok {
		return
	}
	in := webhooks.UpdateInput{Name: b.Name.ptr(), URL: b.URL.ptr(), AuthHeader: nullable(b.AuthHeader),
		SigningSecret: nullable(b.SigningSecret), EventTypes: b.EventTypes.ptr(), Filters: nullable(b.Filters),
		TargetLabels: nullable(b.TargetLabels), Enabled: b.Enabled.ptr(), MaxRetries: b.MaxRetries.ptr(),
		TimeoutSeconds: b.TimeoutSeconds.ptr()}
	for name, o := range map[string]bool{"name": b.Name.Null, "url": b.URL.Null, "event_types": b.EventTypes.Null,
		"enabled": b.Enabled.Null, "max_retries": b.MaxRetries.Null, "timeout_seconds": b.TimeoutSeconds.Null} {
		if o {
			in.NullNotAllowed = append(in.NullNotAllowed, name)
		}
	}
	out, err := h.svc.Update(c.Request.Context(), principal(c), id, in)
	respond(c, http.StatusOK, out, err)
}

func (h webhookHandlers) deliveries(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	q := webhooks.DeliveryQuery{SubscriptionID: id, Status: c.Query("status")}
	for name, dst := range map[string]*int{"limit": &q.Limit, "offset": &q.Offset} {
		if v := c.Query(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				httpserver.Fail(c, domain.Invalid("Failed to deserialize query string: "+name+" must be a non-negative integer"))
				return
			}
			*dst = n
		}
	}
	out, err := h.svc.Deliveries(c.Request.Context(), principal(c), q)
	respond(c, http.StatusOK, out, err)
}

// retry answers POST /webhooks/{id}/deliveries/{delivery_id}/retry: a dead
// delivery goes back to pending with a fresh attempt budget.
func (h webhookHandlers) retry(c *gin.Context) {
	id, did, ok := pathIDPair(c, "delivery_id")
	if !ok {
		return
	}
	out, err := h.svc.RetryDelivery(c.Request.Context(), principal(c), id, did)
	respond(c, http.StatusOK, out, err)
}

// pending answers GET /agents/{id}/webhooks/pending (claims for the agent).
func (h webhookHandlers) pending(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	out, err := h.svc.Pending(c.Request.Context(), principal(c), id)
	if err == nil {
		// Decrypted URLs and auth headers must not be cached anywhere.
		c.Header("Cache-Control", "no-store")
	}
	respond(c, http.StatusOK, out, err)
}

// result answers POST /webhook-deliveries/{id}/result.
func (h webhookHandlers) result(c *gin.Context) {
	var b struct {
		Success    *bool   `json:"success"`
		StatusCode *int    `json:"status_code"`
		Error      *string `json:"error"`
		DurationMS *int64  `json:"duration_ms"`
	}
	id, ok := pathIDAndJSON(c, &b)
	if !ok {
		return
	}
	if b.Success == nil {
		httpserver.Fail(c, domain.Unprocessable("Failed to deserialize the JSON body into the target type: missing field `success`"))
		return
	}
	out, err := h.svc.Report(c.Request.Context(), principal(c), id, webhooks.ResultInput{Success: *b.Success,
		StatusCode: b.StatusCode, Error: b.Error, DurationMS: b.DurationMS})
	respond(c, http.StatusOK, out, err)
}
