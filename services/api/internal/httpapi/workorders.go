package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// registerWorkOrders mounts the work-order routes (docs/work-orders.md#api), the
// progress route and /work-order-schedules.
func registerWorkOrders(v1 *gin.RouterGroup, s Services) {
	h := workOrderHandlers{svc: s.WorkOrders, sched: s.WorkOrderSchedules}
	admin := guard(workorders.AdminOnly)
	adminOrAgent := guard(workorders.AdminOrAgent)
	agentOnly := guard(workorders.AgentOnly)
	active := guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		return s.WorkOrders.Active(ctx, p, id)
	})
	scheduleFound := guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		_, err := s.WorkOrderSchedules.GetSchedule(ctx, p, id)
		return err
	})

	v1.GET("/work-orders", admin, h.list)
	v1.POST("/work-orders", admin, h.create)
	v1.GET("/work-orders/:id", admin, byID(s.WorkOrders.Get))
	v1.DELETE("/work-orders/:id", admin, actOnID(s.WorkOrders.Cancel))
	v1.POST("/work-orders/:id/claim", adminOrAgent, active, h.claim)
	v1.POST("/work-orders/:id/complete", adminOrAgent, active, h.complete)
	v1.POST("/work-orders/:id/progress", agentOnly, active, h.progress)
	v1.GET("/agents/:id/work-orders/pending", guardID(workorders.AdminOrSelf), h.pending)
	v1.GET("/work-order-log", admin, h.log)
	v1.GET("/work-order-log/:id", admin, byID(s.WorkOrders.LogEntry))

	v1.GET("/work-order-schedules", admin, byPrincipal(s.WorkOrderSchedules.ListSchedules))
	v1.POST("/work-order-schedules", admin, h.createSchedule)
	v1.GET("/work-order-schedules/:id", admin, byID(s.WorkOrderSchedules.GetSchedule))
	v1.PUT("/work-order-schedules/:id", admin, scheduleFound, h.updateSchedule)
	v1.DELETE("/work-order-schedules/:id", admin, actOnID(s.WorkOrderSchedules.DeleteSchedule))
	v1.POST("/work-order-schedules/:id/enable", admin, h.setEnabled(true))
	v1.POST("/work-order-schedules/:id/disable", admin, h.setEnabled(false))
	v1.GET("/work-order-schedules/:id/runs", admin, h.scheduleRuns)
}

type workOrderHandlers struct {
	svc   *workorders.Service
	sched *workorders.Schedules
}

// query reads optional query parameters, remembering the first bad one.
type query struct {
	c   *gin.Context
	bad string
}

func (q *query) uuid(name string) *uuid.UUID {
	v := q.c.Query(name)
	if v == "" {
		return nil
	}
	id, err := uuid.Parse(v)
	if err != nil && q.bad == "" {
		q.bad = name + " must be a UUID"
	}
	if err != nil {
		return nil
	}
	return &id
}

func (q *query) bool(name string) *bool {
	v := q.c.Query(name)
	if v == "" {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		if q.bad == "" {
			q.bad = name + " must be true or false"
		}
		return nil
	}
	return &b
}

func (q *query) int(name string) *int {
	v := q.c.Query(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		if q.bad == "" {
			q.bad = name + " must be a non-negative integer"
		}
		return nil
	}
	return &n
}

// ok answers 400 when a parameter was bad.
func (q *query) ok() bool {
	if q.bad != "" {
		httpserver.Fail(q.c, domain.Invalid("Failed to deserialize query string: "+q.bad))
		return false
	}
	return true
}

// targetingBody is the create body's targeting, plus the legacy top-level
// target_agent_ids merged into agent_ids.
type targetingBody struct {
	AgentIDs    []uuid.UUID       `json:"agent_ids"`
	Labels      []string          `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func targeting(t *targetingBody, legacy []uuid.UUID) workorder.Targeting {
	var out workorder.Targeting
	if t != nil {
		out = workorder.Targeting{AgentIDs: t.AgentIDs, Labels: t.Labels, Annotations: t.Annotations}
	}
	out.AgentIDs = append(out.AgentIDs, legacy...)
	return out
}

// templateFields are the work-order fields shared by orders and schedules.
type templateFields struct {
	WorkType            string         `json:"work_type"`
	YAMLContent         string         `json:"yaml_content"`
	MaxRetries          *int           `json:"max_retries"`
	BackoffSeconds      *int           `json:"backoff_seconds"`
	ClaimTimeoutSeconds *int           `json:"claim_timeout_seconds"`
	Targeting           *targetingBody `json:"targeting"`
	TargetAgentIDs      []uuid.UUID    `json:"target_agent_ids"`
}

func (f templateFields) template() workorder.Template {
	t := workorder.DefaultTemplate()
	t.WorkType, t.YAMLContent = f.WorkType, f.YAMLContent
	if f.MaxRetries != nil {
		t.MaxRetries = *f.MaxRetries
	}
	if f.BackoffSeconds != nil {
		t.BackoffSeconds = *f.BackoffSeconds
	}
	if f.ClaimTimeoutSeconds != nil {
		t.ClaimTimeoutSeconds = *f.ClaimTimeoutSeconds
	}
	return t
}

func (h workOrderHandlers) list(c *gin.Context) {
	q := query{c: c}
	f := workorders.ListFilter{Status: c.Query("status"), WorkType: c.Query("work_type"), ScheduleID: q.uuid("schedule_id")}
	if !q.ok() {
		return
	}
	out, err := h.svc.List(c.Request.Context(), principal(c), f)
	respond(c, http.StatusOK, out, err)
}

func (h workOrderHandlers) create(c *gin.Context) {
	var body templateFields
	if !bindJSON(c, &body) {
		return
	}
	w, err := h.svc.Create(c.Request.Context(), principal(c), workorders.CreateInput{
		Template: body.template(), Targeting: targeting(body.Targeting, body.TargetAgentIDs)})
	respond(c, http.StatusCreated, w, err)
}

func (h workOrderHandlers) pending(c *gin.Context) {
	byID(func(ctx context.Context, p identity.Principal, id uuid.UUID) ([]workorder.WorkOrder, error) {
		return h.svc.Pending(ctx, p, id, c.Query("work_type"))
	})(c)
}

// bindOptionalJSON is bindJSON for bodies a caller may leave out entirely.
func bindOptionalJSON(c *gin.Context, v any) bool {
	if c.Request.Body == nil || c.Request.ContentLength == 0 {
		return true
	}
	return bindJSON(c, v)
}

func (h workOrderHandlers) claim(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	// An agent may leave the body out: it claims for itself.
	var body struct {
		AgentID uuid.UUID `json:"agent_id"`
	}
	if !bindOptionalJSON(c, &body) {
		return
	}
	w, err := h.svc.Claim(c.Request.Context(), principal(c), id, body.AgentID)
	respond(c, http.StatusOK, w, err)
}

func (h workOrderHandlers) complete(c *gin.Context) {
	var body struct {
		Success   *bool   `json:"success"`
		Message   *string `json:"message"`
		Retryable *bool   `json:"retryable"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	if body.Success == nil {
		httpserver.Fail(c, domain.Unprocessable("Failed to deserialize the JSON body into the target type: missing field `success`"))
		return
	}
	in := workorders.CompleteInput{Success: *body.Success, Message: body.Message, Retryable: true}
	if body.Retryable != nil {
		in.Retryable = *body.Retryable
	}
	out, err := h.svc.Complete(c.Request.Context(), principal(c), id, in)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	if out.Retry != nil {
		c.JSON(http.StatusAccepted, gin.H{"status": "retry_scheduled", "work_order_id": out.Retry.ID,
			"retry_count": out.Retry.RetryCount, "next_retry_after": out.Retry.NextRetryAfter})
		return
	}
	c.JSON(http.StatusOK, out.Log)
}

func (h workOrderHandlers) progress(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	var body struct {
		Message *string `json:"message"`
		Percent *int    `json:"percent"`
	}
	if !bindOptionalJSON(c, &body) {
		return
	}
	w, err := h.svc.Progress(c.Request.Context(), principal(c), id, workorders.ProgressInput{Message: body.Message, Percent: body.Percent})
	respond(c, http.StatusOK, w, err)
}

func (h workOrderHandlers) log(c *gin.Context) {
	q := query{c: c}
	f := workorders.LogFilter{WorkType: c.Query("work_type"), Success: q.bool("success"), AgentID: q.uuid("agent_id"),
		ScheduleID: q.uuid("schedule_id"), Limit: q.int("limit")}
	if !q.ok() {
		return
	}
	out, err := h.svc.Log(c.Request.Context(), principal(c), f)
	respond(c, http.StatusOK, out, err)
}

func (h workOrderHandlers) createSchedule(c *gin.Context) {
	var body struct {
		templateFields
		Name              string  `json:"name"`
		Description       *string `json:"description"`
		CronExpression    string  `json:"cron_expression"`
		TimeZone          string  `json:"time_zone"`
		Enabled           *bool   `json:"enabled"`
		ConcurrencyPolicy string  `json:"concurrency_policy"`
	}
	if !bindJSON(c, &body) {
		return
	}
	sc, err := h.sched.CreateSchedule(c.Request.Context(), principal(c), workorders.ScheduleInput{
		Name: body.Name, Description: body.Description, CronExpression: body.CronExpression, TimeZone: body.TimeZone,
		Enabled: body.Enabled, ConcurrencyPolicy: body.ConcurrencyPolicy, Template: body.template(),
		Targeting: targeting(body.Targeting, body.TargetAgentIDs)})
	respond(c, http.StatusCreated, sc, err)
}

func (h workOrderHandlers) updateSchedule(c *gin.Context) {
	var body struct {
		Name                optional[string]         `json:"name"`
		Description         optional[string]         `json:"description"`
		CronExpression      optional[string]         `json:"cron_expression"`
		TimeZone            optional[string]         `json:"time_zone"`
		Enabled             optional[bool]           `json:"enabled"`
		ConcurrencyPolicy   optional[string]         `json:"concurrency_policy"`
		WorkType            optional[string]         `json:"work_type"`
		YAMLContent         optional[string]         `json:"yaml_content"`
		MaxRetries          optional[int]            `json:"max_retries"`
		BackoffSeconds      optional[int]            `json:"backoff_seconds"`
		ClaimTimeoutSeconds optional[int]            `json:"claim_timeout_seconds"`
		Targeting           optional[*targetingBody] `json:"targeting"`
		TargetAgentIDs      []uuid.UUID              `json:"target_agent_ids"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	in := workorders.ScheduleUpdate{Name: body.Name.ptr(), Description: body.Description.ptr(),
		ClearDescription: body.Description.Null, CronExpression: body.CronExpression.ptr(), TimeZone: body.TimeZone.ptr(),
		Enabled: body.Enabled.ptr(), ConcurrencyPolicy: body.ConcurrencyPolicy.ptr(), WorkType: body.WorkType.ptr(),
		YAMLContent: body.YAMLContent.ptr(), MaxRetries: body.MaxRetries.ptr(), BackoffSeconds: body.BackoffSeconds.ptr(),
		ClaimTimeoutSeconds: body.ClaimTimeoutSeconds.ptr()}
	if body.Targeting.Set || len(body.TargetAgentIDs) > 0 {
		t := targeting(body.Targeting.Value, body.TargetAgentIDs)
		in.Targeting = &t
	}
	sc, err := h.sched.UpdateSchedule(c.Request.Context(), principal(c), id, in)
	respond(c, http.StatusOK, sc, err)
}

// setEnabled is the handler of /enable (true) and /disable (false).
func (h workOrderHandlers) setEnabled(enabled bool) gin.HandlerFunc {
	return byID(func(ctx context.Context, p identity.Principal, id uuid.UUID) (workorder.Schedule, error) {
		return h.sched.SetEnabled(ctx, p, id, enabled)
	})
}

func (h workOrderHandlers) scheduleRuns(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	q := query{c: c}
	limit := q.int("limit")
	if !q.ok() {
		return
	}
	n := 0
	if limit != nil {
		n = *limit
	}
	out, err := h.sched.Runs(c.Request.Context(), principal(c), id, n)
	respond(c, http.StatusOK, out, err)
}
