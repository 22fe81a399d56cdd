package broker

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// PendingWorkOrders lists the PENDING work orders the agent may claim,
// oldest first (GET /agents/{id}/work-orders/pending).
func (c *Client) PendingWorkOrders(ctx context.Context, agentID uuid.UUID) ([]workorder.WorkOrder, error) {
	var out []workorder.WorkOrder
	err := c.getJSON(ctx, "/api/v1/agents/"+agentID.String()+"/work-orders/pending", &out)
	return out, err
}

// ClaimWorkOrder claims a pending order for agentID. A 404 (someone else
// won, or the order is gone) comes back as a *StatusError.
func (c *Client) ClaimWorkOrder(ctx context.Context, id, agentID uuid.UUID) (workorder.WorkOrder, error) {
	body, err := json.Marshal(map[string]uuid.UUID{"agent_id": agentID})
	if err != nil {
		return workorder.WorkOrder{}, err
	}
	resp, err := c.Do(ctx, http.MethodPost, "/api/v1/work-orders/"+id.String()+"/claim", body, nil, 0)
	if err != nil {
		return workorder.WorkOrder{}, err
	}
	var w workorder.WorkOrder
	err = decode(resp, &w)
	return w, err
}

// WorkOrderProgress is the body of POST /work-orders/{id}/progress.
type WorkOrderProgress struct {
	Message *string `json:"message,omitempty"`
	Percent *int    `json:"percent,omitempty"`
}

// ReportWorkOrderProgress reports progress on a claimed order and restarts
// its claim timeout. It answers with the order; a 409 (the claim is no
// longer the agent's) or 404 (cancelled, finished) comes back as a
// *StatusError.
func (c *Client) ReportWorkOrderProgress(ctx context.Context, id uuid.UUID, p WorkOrderProgress) (workorder.WorkOrder, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return workorder.WorkOrder{}, err
	}
	resp, err := c.Do(ctx, http.MethodPost, "/api/v1/work-orders/"+id.String()+"/progress", body, nil, 0)
	if err != nil {
		return workorder.WorkOrder{}, err
	}
	var w workorder.WorkOrder
	err = decode(resp, &w)
	return w, err
}

// WorkOrderCompletion is the body of POST /work-orders/{id}/complete.
type WorkOrderCompletion struct {
	Success   bool    `json:"success"`
	Message   *string `json:"message"`
	Retryable bool    `json:"retryable"`
}

// WorkOrderCompletePath is where the completion of an order is posted (the
// agent queues it in the outbox).
func WorkOrderCompletePath(id uuid.UUID) string {
	return "/api/v1/work-orders/" + id.String() + "/complete"
}
