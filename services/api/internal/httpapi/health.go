package httpapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type healthHandlers struct {
	health      *deploymenthealth.Service
	diagnostics *diagnostics.Service
}

// report answers PATCH /agents/{id}/health-status.
func (h healthHandlers) report(c *gin.Context) {
	var body struct {
		DeploymentObjects []struct {
			ID        uuid.UUID       `json:"id"`
			Status    string          `json:"status"`
			Summary   json.RawMessage `json:"summary"`
			CheckedAt time.Time       `json:"checked_at"`
		} `json:"deployment_objects"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	reports := make([]deploymenthealth.Report, len(body.DeploymentObjects))
	for i, d := range body.DeploymentObjects {
		reports[i] = deploymenthealth.Report{DeploymentObjectID: d.ID, Status: d.Status, Summary: d.Summary, CheckedAt: d.CheckedAt}
	}
	if err := h.health.ReportHealth(c.Request.Context(), principal(c), id, reports); err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"updated": len(reports)})
}

func (h healthHandlers) requestDiagnostics(c *gin.Context) {
	var body struct {
		AgentID          uuid.UUID `json:"agent_id"`
		RequestedBy      *string   `json:"requested_by"`
		RetentionMinutes *int      `json:"retention_minutes"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	r, err := h.diagnostics.Create(c.Request.Context(), principal(c), id, diagnostics.CreateInput{
		AgentID: body.AgentID, RequestedBy: body.RequestedBy, RetentionMinutes: body.RetentionMinutes})
	respond(c, http.StatusCreated, r, err)
}

func (h healthHandlers) submitDiagnostic(c *gin.Context) {
	var body struct {
		PodStatuses json.RawMessage `json:"pod_statuses"`
		Events      json.RawMessage `json:"events"`
		LogTails    json.RawMessage `json:"log_tails"`
		Error       *string         `json:"error"`
		CollectedAt time.Time       `json:"collected_at"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	res, err := h.diagnostics.SubmitResult(c.Request.Context(), principal(c), id, diagnostics.ResultInput{
		PodStatuses: body.PodStatuses, Events: body.Events, LogTails: body.LogTails, Error: body.Error,
		CollectedAt: body.CollectedAt})
	respond(c, http.StatusCreated, res, err)
}
