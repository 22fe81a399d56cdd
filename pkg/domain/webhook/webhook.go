// Package webhook holds the pure rules of webhook notifications: the event
// catalog, subscription validation, event-type patterns and filters, which
// agent may deliver what, how an attempt's outcome is classified, the
// retry backoff and the request signature (docs/webhooks.md). No I/O
// happens here.
package webhook

import (
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
)

// EventTypes are the event types a subscription may name, as GET
// /webhooks/event-types returns them: the original's twelve in its order,
// then the ones this implementation adds (docs/webhooks.md#events).
var EventTypes = []string{
	event.AgentRegistered,
	event.AgentDeregistered,
	event.StackCreated,
	event.StackDeleted,
	event.DeploymentCreated,
	event.DeploymentApplied,
	event.DeploymentFailed,
	event.DeploymentDeleted,
	event.WorkOrderCreated,
	event.WorkOrderClaimed,
	event.WorkOrderCompleted,
	event.WorkOrderFailed,
	event.DeploymentDrifted,
	event.WorkOrderRetryScheduled,
	event.WorkOrderCancelled,
	event.ScheduleCreated,
	event.ScheduleUpdated,
	event.ScheduleDeleted,
	event.RolloutWaveStarted,
	event.RolloutHalted,
	event.RolloutCompleted,
	event.StackRolledBack,
}

// TestEventType is the body type of POST /webhooks/{id}/test; it is never
// subscribable and never becomes a delivery row.
const TestEventType = "webhook.test"

// Delivery statuses (docs/webhooks.md#managing-subscriptions).
const (
	StatusPending  = "pending"
	StatusAcquired = "acquired"
	StatusSuccess  = "success"
	StatusFailed   = "failed" // will be retried at next_retry_at
	StatusDead     = "dead"   // terminal: no more attempts
)

// ValidStatus reports whether s is a delivery status.
func ValidStatus(s string) bool {
	switch s {
	case StatusPending, StatusAcquired, StatusSuccess, StatusFailed, StatusDead:
		return true
	}
	return false
}

// Audit actions and resource type (the Brokkr docs' audit reference).
const (
	ActionCreated        = "webhook.created"
	ActionUpdated        = "webhook.updated"
	ActionDeleted        = "webhook.deleted"
	ActionDeliveryFailed = "webhook.delivery_failed"
	// ActionDeliveryRetried: an admin sent a dead delivery back to pending.
	ActionDeliveryRetried = "webhook.delivery_retried"
	ResourceType          = "webhook_subscription"
)

// Limits and defaults.
const (
	DefaultMaxRetries     = 5
	DefaultTimeoutSeconds = 30
	MaxMaxRetries         = 100
	MaxTimeoutSeconds     = 300
	MaxNameLength         = 255
	MaxURLLength          = 2048
	MaxEventTypeLength    = 100
	MaxLabelLength        = 64
	// AgentClaimBatch is how many deliveries one agent poll claims.
	AgentClaimBatch = 10
	// AgentLease is how long an agent holds a claimed delivery.
	AgentLease = 60 * time.Second
)

// Filters narrow a subscription to events about one agent, one stack, or
// agents/stacks carrying labels (docs/webhooks.md#filters; see
// Subject.Matches).
type Filters struct {
	AgentID *uuid.UUID        `json:"agent_id,omitempty"`
	StackID *uuid.UUID        `json:"stack_id,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Empty reports whether no filter is set.
func (f Filters) Empty() bool { return f.AgentID == nil && f.StackID == nil && len(f.Labels) == 0 }

// Subscription is a webhook subscription with its secrets decrypted only
// where a use case needs them; the stored form keeps ciphertexts.
type Subscription struct {
	ID             uuid.UUID `json:"id"`
	Name           string    `json:"name"`
	HasURL         bool      `json:"has_url"`
	HasAuthHeader  bool      `json:"has_auth_header"`
	HasSigningKey  bool      `json:"has_signing_secret"`
	EventTypes     []string  `json:"event_types"`
	Filters        *Filters  `json:"filters"`
	TargetLabels   []string  `json:"target_labels"`
	Enabled        bool      `json:"enabled"`
	MaxRetries     int       `json:"max_retries"`
	TimeoutSeconds int       `json:"timeout_seconds"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	CreatedBy      *string   `json:"created_by"`

	// Ciphertexts (never serialised).
	URLEncrypted           []byte `json:"-"`
	AuthHeaderEncrypted    []byte `json:"-"`
	SigningSecretEncrypted []byte `json:"-"`
}

// AgentMode reports whether agents deliver this subscription's events.
func (s Subscription) AgentMode() bool { return len(s.TargetLabels) > 0 }

// Timeout is the per-attempt HTTP timeout.
func (s Subscription) Timeout() time.Duration { return time.Duration(s.TimeoutSeconds) * time.Second }

// Delivery is one (event, subscription) notification and its progress.
type Delivery struct {
	ID             uuid.UUID  `json:"id"`
	SubscriptionID uuid.UUID  `json:"subscription_id"`
	EventType      string     `json:"event_type"`
	EventID        uuid.UUID  `json:"event_id"`
	Payload        string     `json:"payload"`
	TargetLabels   []string   `json:"target_labels"`
	Status         string     `json:"status"`
	AcquiredBy     *uuid.UUID `json:"acquired_by"`
	AcquiredUntil  *time.Time `json:"acquired_until"`
	Attempts       int        `json:"attempts"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextRetryAt    *time.Time `json:"next_retry_at"`
	LastError      *string    `json:"last_error"`
	LastStatusCode *int       `json:"last_status_code"`
	CreatedAt      time.Time  `json:"created_at"`
	CompletedAt    *time.Time `json:"completed_at"`
}

// ValidateName applies the original's name rules.
func ValidateName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return domain.InvalidCode("invalid_webhook", "Name cannot be empty")
	case len(name) > MaxNameLength:
		return domain.InvalidCode("invalid_webhook", "Name cannot exceed 255 characters")
	}
	return nil
}

// ValidateURL accepts absolute http(s) URLs with a host. The message never
// repeats the URL: it may carry a token.
func ValidateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return domain.InvalidCode("url_required", "URL is required")
	}
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return domain.InvalidCode("invalid_url_scheme", "URL must start with http:// or https://")
	}
	if len(raw) > MaxURLLength {
		return domain.InvalidCode("invalid_webhook", "URL cannot exceed 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return domain.InvalidCode("invalid_webhook", "URL must be an absolute http(s) URL with a host")
	}
	return nil
}

// ValidateEventTypes requires at least one non-blank pattern. Patterns are
// not checked against the catalog: a subscription may name
// event types that later versions add.
func ValidateEventTypes(types []string) error {
	if len(types) == 0 {
		return domain.InvalidCode("invalid_webhook", "At least one event type is required")
	}
	for _, t := range types {
		switch {
		case strings.TrimSpace(t) == "":
			return domain.InvalidCode("invalid_webhook", "Event types cannot be blank")
		case len(t) > MaxEventTypeLength:
			return domain.InvalidCode("invalid_webhook", "Event types cannot exceed 100 characters")
		}
	}
	return nil
}

// NormalizeTargetLabels validates target labels and maps an empty list to
// nil (broker delivery), so an empty array is never claimable by both the
// broker and agents (docs/compatibility.md#empty-target-labels).
func NormalizeTargetLabels(labels []string) ([]string, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(labels))
	seen := map[string]bool{}
	for _, l := range labels {
		switch {
		case strings.TrimSpace(l) == "":
			return nil, domain.InvalidCode("invalid_webhook", "Target labels cannot be blank")
		case len(l) > MaxLabelLength:
			return nil, domain.InvalidCode("invalid_webhook", "Target labels cannot exceed 64 characters")
		}
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out, nil
}

// ValidateAuthHeader checks the Authorization value sent verbatim: it must
// be a valid header value (no line breaks, which would inject headers).
func ValidateAuthHeader(v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return domain.InvalidCode("invalid_webhook", "auth_header cannot be blank (send null to remove it)")
	case len(v) > 8192:
		return domain.InvalidCode("invalid_webhook", "auth_header cannot exceed 8192 characters")
	case strings.ContainsAny(v, "\r\n\x00"):
		return domain.InvalidCode("invalid_webhook", "auth_header must not contain line breaks")
	}
	return nil
}

// ValidateSigningSecret checks the HMAC key.
func ValidateSigningSecret(v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return domain.InvalidCode("invalid_webhook", "signing_secret cannot be blank (send null to remove it)")
	case len(v) > 1024:
		return domain.InvalidCode("invalid_webhook", "signing_secret cannot exceed 1024 characters")
	}
	return nil
}

// ValidateLimits checks max_retries and timeout_seconds.
func ValidateLimits(maxRetries, timeoutSeconds int) error {
	if maxRetries < 0 || maxRetries > MaxMaxRetries {
		return domain.InvalidCode("invalid_webhook", "max_retries must be between 0 and 100")
	}
	if timeoutSeconds < 1 || timeoutSeconds > MaxTimeoutSeconds {
		return domain.InvalidCode("invalid_webhook", "timeout_seconds must be between 1 and 300")
	}
	return nil
}

// ValidateFilters checks the labels filter (ids are typed already).
func ValidateFilters(f *Filters) error {
	if f == nil {
		return nil
	}
	for k := range f.Labels {
		if strings.TrimSpace(k) == "" {
			return domain.InvalidCode("invalid_webhook", "Filter label keys cannot be blank")
		}
	}
	return nil
}

// CanClaim reports whether an agent with agentLabels may deliver a delivery
// with targetLabels: every target label must be one of the agent's
// (docs/webhooks.md#agent-delivery). A delivery without target labels belongs
// to the broker and is never claimable by an agent.
func CanClaim(targetLabels, agentLabels []string) bool {
	if len(targetLabels) == 0 {
		return false
	}
	have := make(map[string]bool, len(agentLabels))
	for _, l := range agentLabels {
		have[l] = true
	}
	for _, l := range targetLabels {
		if !have[l] {
			return false
		}
	}
	return true
}
