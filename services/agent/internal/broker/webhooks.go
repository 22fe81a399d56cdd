package broker

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// PendingWebhook is one delivery the agent claimed (an element of GET
// /agents/{id}/webhooks/pending, webhook.PendingDelivery). The URL, auth
// header and signing secret are decoded straight into secret.String, so no
// rendering of the value (log, %v, JSON) shows them.
type PendingWebhook struct {
	webhook.PendingDelivery[secret.String]

	// LeaseEnd is AcquiredUntil on this machine's clock: the lease left
	// when the broker answered (acquired_until minus the answer's Date),
	// counted from when the claim was sent, so a skewed clock on either
	// side does not stretch it.
	LeaseEnd time.Time `json:"-"`
}

// ClaimWebhooks claims the deliveries the agent should make (at most
// webhook.AgentClaimBatch, each leased to it for webhook.AgentLease).
func (c *Client) ClaimWebhooks(ctx context.Context, agentID uuid.UUID) ([]PendingWebhook, error) {
	sent := time.Now()
	resp, err := c.Do(ctx, http.MethodGet, "/api/v1/agents/"+agentID.String()+"/webhooks/pending", nil, nil, 0)
	if err != nil {
		return nil, err
	}
	var out []PendingWebhook
	if err := decode(resp, &out); err != nil {
		return nil, err
	}
	brokerNow, dateErr := http.ParseTime(resp.Header.Get("Date"))
	for i := range out {
		left := webhook.AgentLease
		if out[i].AcquiredUntil != nil && dateErr == nil {
			// Date has a one-second resolution: round the lease down.
			left = min(left, out[i].AcquiredUntil.Sub(brokerNow)-time.Second)
		}
		out[i].LeaseEnd = sent.Add(left)
	}
	return out, nil
}

// WebhookResult is the body of POST /webhook-deliveries/{id}/result. A nil
// StatusCode means no response arrived.
type WebhookResult struct {
	Success    bool    `json:"success"`
	StatusCode *int    `json:"status_code,omitempty"`
	Error      *string `json:"error,omitempty"`
	DurationMS *int64  `json:"duration_ms,omitempty"`
}

// WebhookOutcome is the broker's answer to a result report: the state the
// delivery moved to (success, failed with a retry scheduled, dead).
type WebhookOutcome struct {
	Status      string     `json:"status"`
	DeliveryID  uuid.UUID  `json:"delivery_id"`
	Attempts    int        `json:"attempts"`
	NextRetryAt *time.Time `json:"next_retry_at"`
}

// WebhookResultPath is where the result of a delivery attempt is posted.
func WebhookResultPath(id uuid.UUID) string {
	return "/api/v1/webhook-deliveries/" + id.String() + "/result"
}

// ReportWebhook reports an attempt on a delivery the agent holds. A 403
// (the lease went to someone else), 404 (the subscription was deleted) or
// 409 (already reported) comes back as a *StatusError.
func (c *Client) ReportWebhook(ctx context.Context, id uuid.UUID, r WebhookResult) (WebhookOutcome, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return WebhookOutcome{}, err
	}
	resp, err := c.Do(ctx, http.MethodPost, WebhookResultPath(id), body, nil, 0)
	if err != nil {
		return WebhookOutcome{}, err
	}
	var out WebhookOutcome
	err = decode(resp, &out)
	return out, err
}
