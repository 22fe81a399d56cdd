package webhook

import (
	"time"

	"github.com/google/uuid"
)

// PendingDelivery is one element of GET /agents/{id}/webhooks/pending
// (docs/webhooks.md, "Agent delivery"): the original's
// PendingWebhookDelivery plus event_id, signing_secret and acquired_until.
// The broker writes it and the agent reads it; both use this one
// declaration so the contract cannot drift apart.
//
// Secret is how each side holds the url, auth_header and signing_secret:
// the broker as *string (decrypted for the claiming agent only, null in an
// admin's preview), the agent as secret.String, decoded straight into it
// so no rendering of the value (log, %v, JSON) shows it.
type PendingDelivery[Secret any] struct {
	ID             uuid.UUID  `json:"id"`
	SubscriptionID uuid.UUID  `json:"subscription_id"`
	EventType      string     `json:"event_type"`
	EventID        uuid.UUID  `json:"event_id"`
	Payload        string     `json:"payload"`
	URL            Secret     `json:"url"`
	AuthHeader     Secret     `json:"auth_header"`
	SigningSecret  Secret     `json:"signing_secret"`
	TimeoutSeconds int        `json:"timeout_seconds"`
	MaxRetries     int        `json:"max_retries"`
	Attempts       int        `json:"attempts"`
	AcquiredUntil  *time.Time `json:"acquired_until"`
}
