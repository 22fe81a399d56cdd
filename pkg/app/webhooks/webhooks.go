// Package webhooks holds the webhook use cases: the admin's subscription
// API (CRUD, event types, a synchronous test, delivery history), the agent
// side of agent-mode delivery (claim pending deliveries, report results),
// and the dispatcher that webhook-dispatch runs (outbox relay, fan-out,
// broker-mode delivery, sweeps and retention).
//
// Secrets (URL, auth header, signing secret) are sealed before they reach
// the store and opened only where they are used: to send, or for the agent
// that holds a delivery. They never appear in a response to the admin, an
// error message or a log line.
package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// Cipher seals and opens secrets at rest (AES-256-GCM).
type Cipher interface {
	Seal(plaintext []byte) []byte
	Open(blob []byte) ([]byte, error)
}

// Sender performs one HTTP attempt.
type Sender interface {
	Send(ctx context.Context, r webhook.Request) webhook.Result
	// CheckTarget refuses (422) a URL the sender would never reach, such
	// as a literal metadata or loopback address under the SSRF guard.
	CheckTarget(rawURL string) error
}

// DeliveryQuery selects a subscription's deliveries, newest first.
type DeliveryQuery struct {
	SubscriptionID uuid.UUID
	Status         string
	Limit, Offset  int
}

// Claimed is a delivery together with what is needed to send it.
type Claimed struct {
	webhook.Delivery
	URLEncrypted           []byte
	AuthHeaderEncrypted    []byte
	SigningSecretEncrypted []byte
	TimeoutSeconds         int
	MaxRetries             int
}

// AgentInfo is what the claim needs to know about an agent.
type AgentInfo struct {
	Status string
	Labels []string
}

// Attempt records the outcome of one attempt on an acquired delivery.
type Attempt struct {
	Decision   webhook.Decision
	LastError  *string
	StatusCode *int
}

// SubscriptionRepository stores subscriptions with their ciphertexts.
type SubscriptionRepository interface {
	ListSubscriptions(ctx context.Context) ([]webhook.Subscription, error)
	// CreateSubscription inserts s and fills its id and timestamps.
	CreateSubscription(ctx context.Context, s *webhook.Subscription) error
	// GetSubscription returns one subscription (404 when absent).
	GetSubscription(ctx context.Context, id uuid.UUID) (webhook.Subscription, error)
	// UpdateSubscription locks the subscription, lets fn change it and
	// stores the result; fn's error aborts without a change (404 when
	// absent).
	UpdateSubscription(ctx context.Context, id uuid.UUID, fn func(*webhook.Subscription) error) (webhook.Subscription, error)
	// DeleteSubscription deletes it with its deliveries (404 when absent).
	DeleteSubscription(ctx context.Context, id uuid.UUID) (webhook.Subscription, error)
}

// DeliveryRepository is the admin's view of a subscription's deliveries.
type DeliveryRepository interface {
	// ListDeliveries returns the subscription's deliveries, newest first.
	ListDeliveries(ctx context.Context, q DeliveryQuery) ([]webhook.Delivery, error)
	// RetryDeadDelivery moves a dead delivery of the subscription back to
	// pending with a fresh attempt budget (404 when the subscription has no
	// such delivery, 409 when it is not dead).
	RetryDeadDelivery(ctx context.Context, subscriptionID, deliveryID uuid.UUID) (webhook.Delivery, error)
}

// AgentDeliveryRepository is the agent-mode side: agents claim deliveries
// whose target labels they carry and report each attempt.
type AgentDeliveryRepository interface {
	// WebhookAgent returns a live agent's status and labels (404 when absent).
	WebhookAgent(ctx context.Context, id uuid.UUID) (AgentInfo, error)
	// ClaimAgentDeliveries atomically moves up to limit claimable
	// agent-mode deliveries whose target labels are all among labels to
	// acquired by the agent, oldest first (FOR UPDATE SKIP LOCKED, so two
	// callers never claim the same row).
	ClaimAgentDeliveries(ctx context.Context, agentID uuid.UUID, labels []string, limit int, lease time.Duration) ([]Claimed, error)
	// ClaimableAgentDeliveries lists what such a claim would take, without
	// claiming.
	ClaimableAgentDeliveries(ctx context.Context, labels []string, limit int) ([]Claimed, error)
	// LockDelivery reads a delivery and its subscription's secrets and
	// retry limit, locking the row (inside a transaction; 404 when absent).
	LockDelivery(ctx context.Context, id uuid.UUID) (Claimed, error)
	// RecordAgentAttempt stores an agent's attempt on a delivery it holds.
	RecordAgentAttempt(ctx context.Context, id uuid.UUID, a Attempt) error
}

// Repos are the ports of the API-side use cases.
type Repos struct {
	Tx              journal.Transactor
	Journal         journal.Recorder
	Subscriptions   SubscriptionRepository
	Deliveries      DeliveryRepository
	AgentDeliveries AgentDeliveryRepository
}

// Service implements the API-side use cases.
type Service struct {
	repos  Repos
	cipher Cipher
	sender Sender
	notes  LiveNotes
	now    func() time.Time
	jitter func() float64
}

// LiveNotes tells live views (the console) that something they show
// changed; the notifier coalesces bursts.
type LiveNotes interface {
	Noted(ctx context.Context, what string)
}

// NewService wires the use cases; notes may be nil (nobody watches).
func NewService(repos Repos, cipher Cipher, sender Sender, notes LiveNotes) *Service {
	return &Service{repos: repos, cipher: cipher, sender: sender, notes: notes, now: time.Now, jitter: rand.Float64}
}

var (
	errAdminOnly  = domain.ForbiddenCode("admin_required", "Admin access required")
	errAgentOrAdm = domain.ForbiddenCode("agent_pak_mismatch", "Unauthorized - must be the agent or admin")
	errAgentOnly  = domain.ForbiddenCode("agent_pak_required", "Agent authentication required")
	// errDecrypt is a server-side failure (the key changed or was lost): a
	// 500 whose message says what to do, never what the secret was.
	errDecrypt = &domain.Error{Kind: errors.New("webhook secret decryption failed"),
		Msg: "Webhook secrets cannot be decrypted with the current encryption key; set the URL (and auth header) again"}
)

// Policies of the webhook use cases; the HTTP layer runs the same values as
// route guards (see package policy).
var (
	// AdminOnly guards every subscription route.
	AdminOnly = policy.Allow(errAdminOnly, policy.Admin)
	// AdminOrAgentSelf admits the admin and the agent in the path.
	AdminOrAgentSelf = policy.Allow(errAgentOrAdm, policy.Admin, policy.SelfAgent)
	// AgentOnly admits only agents (delivery results).
	AgentOnly = policy.Allow(errAgentOnly, policy.AnyAgent)
)

// CreateInput is the body of POST /webhooks.
type CreateInput struct {
	Name           string
	URL            string
	AuthHeader     *string
	SigningSecret  *string
	EventTypes     []string
	Filters        *webhook.Filters
	TargetLabels   []string
	MaxRetries     *int
	TimeoutSeconds *int
	Enabled        *bool
	// Validate sends a test delivery before storing; a failure rejects the
	// subscription.
	Validate bool
}

// List returns every subscription, newest first.
func (s *Service) List(ctx context.Context, p identity.Principal) ([]webhook.Subscription, error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, err
	}
	return s.repos.Subscriptions.ListSubscriptions(ctx)
}

// Get returns one subscription.
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (webhook.Subscription, error) {
	if err := AdminOnly.Check(p); err != nil {
		return webhook.Subscription{}, err
	}
	return s.repos.Subscriptions.GetSubscription(ctx, id)
}

// EventTypes lists the subscribable event types.
func (s *Service) EventTypes(_ context.Context, p identity.Principal) ([]string, error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, err
	}
	return append([]string(nil), webhook.EventTypes...), nil
}

// Create stores a subscription with its secrets sealed.
func (s *Service) Create(ctx context.Context, p identity.Principal, in CreateInput) (webhook.Subscription, error) {
	if err := AdminOnly.Check(p); err != nil {
		return webhook.Subscription{}, err
	}
	sub := webhook.Subscription{Name: in.Name, EventTypes: in.EventTypes, Filters: in.Filters, Enabled: true,
		MaxRetries: webhook.DefaultMaxRetries, TimeoutSeconds: webhook.DefaultTimeoutSeconds}
	if in.MaxRetries != nil {
		sub.MaxRetries = *in.MaxRetries
	}
	if in.TimeoutSeconds != nil {
		sub.TimeoutSeconds = *in.TimeoutSeconds
	}
	if in.Enabled != nil {
		sub.Enabled = *in.Enabled
	}
	if err := firstErr(
		webhook.ValidateName(in.Name),
		webhook.ValidateURL(in.URL),
		webhook.ValidateEventTypes(in.EventTypes),
		webhook.ValidateLimits(sub.MaxRetries, sub.TimeoutSeconds),
		webhook.ValidateFilters(in.Filters),
	); err != nil {
		return webhook.Subscription{}, err
	}
	// The broker delivers (no target labels): refuse now what its guard
	// would refuse at every attempt.
	if len(in.TargetLabels) == 0 {
		if err := s.sender.CheckTarget(in.URL); err != nil {
			return webhook.Subscription{}, err
		}
	}
	if err := validOptional(in.AuthHeader, webhook.ValidateAuthHeader); err != nil {
		return webhook.Subscription{}, err
	}
	if err := validOptional(in.SigningSecret, webhook.ValidateSigningSecret); err != nil {
		return webhook.Subscription{}, err
	}
	labels, err := webhook.NormalizeTargetLabels(in.TargetLabels)
	if err != nil {
		return webhook.Subscription{}, err
	}
	sub.TargetLabels = labels
	if sub.Filters != nil && sub.Filters.Empty() {
		sub.Filters = nil
	}
	if in.Validate {
		res := s.send(ctx, uuid.Nil, secret.String(in.URL), secretPtr(in.AuthHeader), secretPtr(in.SigningSecret), sub.Timeout())
		if res.Verdict() != webhook.Delivered {
			return webhook.Subscription{}, domain.WithFields(domain.InvalidCode("webhook_test_failed", "Validation delivery failed: "+res.ErrorText()),
				testFields(res))
		}
	}
	sub.URLEncrypted = s.cipher.Seal([]byte(in.URL))
	sub.AuthHeaderEncrypted = s.sealOptional(in.AuthHeader)
	sub.SigningSecretEncrypted = s.sealOptional(in.SigningSecret)
	by := string(p.Role)
	sub.CreatedBy = &by
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Subscriptions.CreateSubscription(ctx, &sub); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, webhook.ActionCreated, webhook.ResourceType, sub.ID,
			map[string]any{"name": sub.Name, "event_types": sub.EventTypes, "target_labels": sub.TargetLabels}))
	})
	return sub, err
}

// Nullable is a PUT field: Set false leaves the field unchanged; Set with a
// nil Value clears it (an explicit JSON null,
// docs/compatibility.md#partial-put).
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// UpdateInput is a partial update.
type UpdateInput struct {
	Name           *string
	URL            *string
	AuthHeader     Nullable[string]
	SigningSecret  Nullable[string]
	EventTypes     *[]string
	Filters        Nullable[webhook.Filters]
	TargetLabels   Nullable[[]string]
	Enabled        *bool
	MaxRetries     *int
	TimeoutSeconds *int
	// NullNotAllowed names fields sent as null that cannot be cleared.
	NullNotAllowed []string
}

// Update applies a partial update; secrets sent are sealed anew.
func (s *Service) Update(ctx context.Context, p identity.Principal, id uuid.UUID, in UpdateInput) (webhook.Subscription, error) {
	if err := AdminOnly.Check(p); err != nil {
		return webhook.Subscription{}, err
	}
	if _, err := s.repos.Subscriptions.GetSubscription(ctx, id); err != nil {
		return webhook.Subscription{}, err
	}
	if len(in.NullNotAllowed) > 0 {
		return webhook.Subscription{}, domain.InvalidCode("invalid_webhook", strings.Join(in.NullNotAllowed, ", ")+" cannot be null")
	}
	var changed []string
	var out webhook.Subscription
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.repos.Subscriptions.UpdateSubscription(ctx, id, func(sub *webhook.Subscription) error {
			var err error
			changed, err = s.apply(sub, in)
			return err
		})
		if err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, webhook.ActionUpdated, webhook.ResourceType, id,
			map[string]any{"name": out.Name, "enabled": out.Enabled, "changed": changed}))
	})
	return out, err
}

// validOptional checks an optional secret (auth header, signing secret)
// with validate; an absent one is valid.
func validOptional(v *string, validate func(string) error) error {
	if v == nil {
		return nil
	}
	return validate(*v)
}

// sealOptional encrypts an optional secret; an absent one is stored as
// NULL.
func (s *Service) sealOptional(v *string) []byte {
	if v == nil {
		return nil
	}
	return s.cipher.Seal([]byte(*v))
}

// apply changes sub in place and names what changed (never a value).
func (s *Service) apply(sub *webhook.Subscription, in UpdateInput) ([]string, error) {
	changed := []string{}
	if in.Name != nil {
		if err := webhook.ValidateName(*in.Name); err != nil {
			return nil, err
		}
		sub.Name = *in.Name
		changed = append(changed, "name")
	}
	if in.URL != nil {
		if err := webhook.ValidateURL(*in.URL); err != nil {
			return nil, err
		}
		sub.URLEncrypted = s.cipher.Seal([]byte(*in.URL))
		changed = append(changed, "url")
	}
	// A null auth header or signing secret removes it.
	if in.AuthHeader.Set {
		if err := validOptional(in.AuthHeader.Value, webhook.ValidateAuthHeader); err != nil {
			return nil, err
		}
		sub.AuthHeaderEncrypted = s.sealOptional(in.AuthHeader.Value)
		changed = append(changed, "auth_header")
	}
	if in.SigningSecret.Set {
		if err := validOptional(in.SigningSecret.Value, webhook.ValidateSigningSecret); err != nil {
			return nil, err
		}
		sub.SigningSecretEncrypted = s.sealOptional(in.SigningSecret.Value)
		changed = append(changed, "signing_secret")
	}
	if in.EventTypes != nil {
		if err := webhook.ValidateEventTypes(*in.EventTypes); err != nil {
			return nil, err
		}
		sub.EventTypes = *in.EventTypes
		changed = append(changed, "event_types")
	}
	if in.Filters.Set {
		sub.Filters = in.Filters.Value
		if err := webhook.ValidateFilters(sub.Filters); err != nil {
			return nil, err
		}
		if sub.Filters != nil && sub.Filters.Empty() {
			sub.Filters = nil
		}
		changed = append(changed, "filters")
	}
	if in.TargetLabels.Set {
		var labels []string
		if in.TargetLabels.Value != nil {
			var err error
			if labels, err = webhook.NormalizeTargetLabels(*in.TargetLabels.Value); err != nil {
				return nil, err
			}
		}
		sub.TargetLabels = labels
		changed = append(changed, "target_labels")
	}
	if in.Enabled != nil {
		sub.Enabled = *in.Enabled
		changed = append(changed, "enabled")
	}
	if in.MaxRetries != nil {
		sub.MaxRetries = *in.MaxRetries
		changed = append(changed, "max_retries")
	}
	if in.TimeoutSeconds != nil {
		sub.TimeoutSeconds = *in.TimeoutSeconds
		changed = append(changed, "timeout_seconds")
	}
	if err := webhook.ValidateLimits(sub.MaxRetries, sub.TimeoutSeconds); err != nil {
		return nil, err
	}
	if in.URL != nil && !sub.AgentMode() {
		if err := s.sender.CheckTarget(*in.URL); err != nil {
			return nil, err
		}
	}
	sub.HasURL = len(sub.URLEncrypted) > 0
	sub.HasAuthHeader = len(sub.AuthHeaderEncrypted) > 0
	sub.HasSigningKey = len(sub.SigningSecretEncrypted) > 0
	return changed, nil
}

// Delete removes a subscription and, by cascade, its deliveries.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := AdminOnly.Check(p); err != nil {
		return err
	}
	return s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		sub, err := s.repos.Subscriptions.DeleteSubscription(ctx, id)
		if err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, webhook.ActionDeleted, webhook.ResourceType, id,
			map[string]any{"name": sub.Name}))
	})
}

// Deliveries lists a subscription's deliveries, newest first. An unknown
// status yields an empty list, as in the original.
func (s *Service) Deliveries(ctx context.Context, p identity.Principal, q DeliveryQuery) ([]webhook.Delivery, error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, err
	}
	if q.Limit < 0 || q.Offset < 0 {
		return nil, domain.Invalid("limit and offset must not be negative")
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	if _, err := s.repos.Subscriptions.GetSubscription(ctx, q.SubscriptionID); err != nil {
		return nil, err
	}
	if q.Status != "" && !webhook.ValidStatus(q.Status) {
		return []webhook.Delivery{}, nil
	}
	return s.repos.Deliveries.ListDeliveries(ctx, q)
}

// RetryDelivery sends a dead delivery back to pending with its attempts
// reset, so it gets the subscription's whole retry budget again; the
// last error stays for the record until the next attempt. Broker-mode
// deliveries are re-queued by webhook-dispatch's sweep, agent-mode ones
// claimed by a matching agent. Only a dead delivery may be retried: the
// others are still being retried or already delivered (409).
func (s *Service) RetryDelivery(ctx context.Context, p identity.Principal, subscriptionID, deliveryID uuid.UUID) (webhook.Delivery, error) {
	if err := AdminOnly.Check(p); err != nil {
		return webhook.Delivery{}, err
	}
	var out webhook.Delivery
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.repos.Subscriptions.GetSubscription(ctx, subscriptionID); err != nil {
			return err
		}
		var err error
		if out, err = s.repos.Deliveries.RetryDeadDelivery(ctx, subscriptionID, deliveryID); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, webhook.ActionDeliveryRetried, webhook.ResourceType, subscriptionID,
			map[string]any{"delivery_id": deliveryID, "event_type": out.EventType}))
	})
	return out, err
}

// TestResult is the answer of POST /webhooks/{id}/test for a 2xx.
type TestResult struct {
	Success    bool   `json:"success"`
	StatusCode int    `json:"status_code"`
	Message    string `json:"message"`
}

// Test sends a webhook.test event synchronously to the subscription's URL
// (the SSRF guard applies) and reports the outcome; no delivery row is
// created. A non-2xx answer or a transport error is a 400 whose body
// carries success, status_code, error and body
// (docs/webhooks.md#managing-subscriptions).
func (s *Service) Test(ctx context.Context, p identity.Principal, id uuid.UUID) (TestResult, error) {
	if err := AdminOnly.Check(p); err != nil {
		return TestResult{}, err
	}
	sub, err := s.repos.Subscriptions.GetSubscription(ctx, id)
	if err != nil {
		return TestResult{}, err
	}
	url, auth, key, err := s.open(sub.URLEncrypted, sub.AuthHeaderEncrypted, sub.SigningSecretEncrypted)
	if err != nil {
		return TestResult{}, err
	}
	res := s.send(ctx, id, url, auth, key, sub.Timeout())
	if res.Verdict() != webhook.Delivered {
		msg := "Request failed: " + res.Error
		if res.StatusCode != 0 {
			msg = "Endpoint returned " + webhook.HTTPError(res.StatusCode, nil)
		}
		return TestResult{}, domain.WithFields(domain.InvalidCode("webhook_test_failed", msg), testFields(res))
	}
	return TestResult{Success: true, StatusCode: res.StatusCode, Message: "Test delivery successful"}, nil
}

func testFields(res webhook.Result) map[string]any {
	f := map[string]any{"success": false}
	if res.StatusCode != 0 {
		f["status_code"] = res.StatusCode
		f["body"] = webhook.Truncate(string(res.Body), 500)
	}
	return f
}

// send posts a webhook.test envelope.
func (s *Service) send(ctx context.Context, subID uuid.UUID, url, auth, key secret.String, timeout time.Duration) webhook.Result {
	evID := uuid.New()
	data := map[string]any{"message": "This is a test webhook delivery from Brokkr"}
	if subID != uuid.Nil {
		data["subscription_id"] = subID
	}
	body, _ := json.Marshal(map[string]any{"id": evID, "event_type": webhook.TestEventType,
		"timestamp": s.now().UTC(), "data": data})
	return s.sender.Send(ctx, webhook.Request{URL: url, AuthHeader: auth, SigningSecret: key,
		EventType: webhook.TestEventType, DeliveryID: evID.String(), Body: body, Timeout: timeout})
}

// open decrypts a subscription's secrets.
func (s *Service) open(urlBlob, authBlob, keyBlob []byte) (url, auth, key secret.String, err error) {
	return openSecrets(s.cipher, urlBlob, authBlob, keyBlob)
}

func openSecrets(c Cipher, urlBlob, authBlob, keyBlob []byte) (url, auth, key secret.String, err error) {
	u, err := c.Open(urlBlob)
	if err != nil || webhook.ValidateURL(string(u)) != nil {
		return "", "", "", errDecrypt
	}
	url = secret.String(u)
	if len(authBlob) > 0 {
		a, err := c.Open(authBlob)
		if err != nil {
			return "", "", "", errDecrypt
		}
		auth = secret.String(a)
	}
	if len(keyBlob) > 0 {
		k, err := c.Open(keyBlob)
		if err != nil {
			return "", "", "", errDecrypt
		}
		key = secret.String(k)
	}
	return url, auth, key, nil
}

func secretPtr(p *string) secret.String {
	if p == nil {
		return ""
	}
	return secret.String(*p)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
