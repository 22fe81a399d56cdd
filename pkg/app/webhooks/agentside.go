package webhooks

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// PendingDelivery is one element of GET /agents/{id}/webhooks/pending as
// the broker writes it: url, auth_header and signing_secret are decrypted
// for the claiming agent only; an admin's preview shows them as null.
type PendingDelivery = webhook.PendingDelivery[*string]

// Pending claims, for the agent itself, up to 10 deliveries it may make:
// pending (or due for retry, or whose previous holder's lease expired)
// agent-mode deliveries whose target labels are all among the agent's labels,
// oldest first. The claim is atomic across api replicas; each claimed delivery
// is the agent's for 60 s. An INACTIVE agent gets nothing
// (docs/compatibility.md#agent-status-on-create). The admin gets a preview of
// what the agent would claim, without claiming and without secrets.
func (s *Service) Pending(ctx context.Context, p identity.Principal, agentID uuid.UUID) ([]PendingDelivery, error) {
	if err := AdminOrAgentSelf.CheckID(p, agentID); err != nil {
		return nil, err
	}
	info, err := s.repos.AgentDeliveries.WebhookAgent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	out := []PendingDelivery{}
	if info.Status != agent.StatusActive || len(info.Labels) == 0 {
		return out, nil
	}
	if p.IsAdmin() {
		rows, err := s.repos.AgentDeliveries.ClaimableAgentDeliveries(ctx, info.Labels, webhook.AgentClaimBatch)
		if err != nil {
			return nil, err
		}
		for _, c := range rows {
			out = append(out, pendingOf(c))
		}
		return out, nil
	}
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		rows, err := s.repos.AgentDeliveries.ClaimAgentDeliveries(ctx, agentID, info.Labels, webhook.AgentClaimBatch, webhook.AgentLease)
		if err != nil {
			return err
		}
		for _, c := range rows {
			url, auth, key, err := openSecrets(s.cipher, c.URLEncrypted, c.AuthHeaderEncrypted, c.SigningSecretEncrypted)
			if err != nil {
				// A delivery nobody can decrypt can never succeed: end it
				// visibly rather than hand it out again and again.
				if err := s.finishUndecryptable(ctx, p, c); err != nil {
					return err
				}
				continue
			}
			pd := pendingOf(c)
			u := url.Reveal()
			pd.URL = &u
			if !auth.IsZero() {
				a := auth.Reveal()
				pd.AuthHeader = &a
			}
			if !key.IsZero() {
				k := key.Reveal()
				pd.SigningSecret = &k
			}
			out = append(out, pd)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func pendingOf(c Claimed) PendingDelivery {
	return PendingDelivery{ID: c.ID, SubscriptionID: c.SubscriptionID, EventType: c.EventType, EventID: c.EventID,
		Payload: c.Payload, TimeoutSeconds: c.TimeoutSeconds, MaxRetries: c.MaxRetries, Attempts: c.Attempts,
		AcquiredUntil: c.AcquiredUntil}
}

const undecryptable = "Webhook secrets cannot be decrypted with the current encryption key"

func (s *Service) finishUndecryptable(ctx context.Context, p identity.Principal, c Claimed) error {
	msg := undecryptable
	d := webhook.Decision{Status: webhook.StatusDead, Attempts: c.Attempts}
	if err := s.repos.AgentDeliveries.RecordAgentAttempt(ctx, c.ID, Attempt{Decision: d, LastError: &msg}); err != nil {
		return err
	}
	return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, webhook.ActionDeliveryFailed, webhook.ResourceType, c.SubscriptionID,
		map[string]any{"delivery_id": c.ID, "event_type": c.EventType, "attempts": c.Attempts, "reason": "decryption failed"}))
}

// ResultInput is the body of POST /webhook-deliveries/{id}/result.
type ResultInput struct {
	Success    bool
	StatusCode *int
	Error      *string
	DurationMS *int64
}

// ResultOutput is its answer: {status, delivery_id} on success, plus
// attempts and next_retry_at on failure.
type ResultOutput struct {
	Status      string     `json:"status"`
	DeliveryID  uuid.UUID  `json:"delivery_id"`
	Attempts    *int       `json:"attempts,omitempty"`
	NextRetryAt *time.Time `json:"next_retry_at,omitempty"`
	// nextRetrySet keeps next_retry_at present (as null) on failures.
	nextRetrySet bool
}

// MarshalJSON writes next_retry_at (null when dead) on failure results.
func (r ResultOutput) MarshalJSON() ([]byte, error) {
	m := map[string]any{"status": r.Status, "delivery_id": r.DeliveryID}
	if r.Attempts != nil {
		m["attempts"] = *r.Attempts
	}
	if r.nextRetrySet {
		m["next_retry_at"] = r.NextRetryAt
	}
	return marshal(m)
}

// CheckReport runs Report's caller checks (agent, 404, holder) without
// changing anything, so the HTTP layer answers 403/404 before it looks at
// the body (docs/compatibility.md#check-order).
func (s *Service) CheckReport(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := AgentOnly.Check(p); err != nil {
		return err
	}
	c, err := s.repos.AgentDeliveries.LockDelivery(ctx, id)
	if err != nil {
		return err
	}
	if c.AcquiredBy == nil || *c.AcquiredBy != p.ID {
		return domain.ForbiddenCode("delivery_not_acquired_by_agent", "Delivery not acquired by this agent")
	}
	return nil
}

// Report records the outcome of an agent's attempt on a delivery it holds.
// The classification of docs/webhooks.md#retries applies to the status code the agent
// saw: 2xx success; 408, 429, 5xx and no response retry with backoff; any
// other code is dead at once. The agent's error text is stored with the
// subscription's secrets blanked out, in case the agent echoed them.
func (s *Service) Report(ctx context.Context, p identity.Principal, id uuid.UUID, in ResultInput) (ResultOutput, error) {
	if err := AgentOnly.Check(p); err != nil {
		return ResultOutput{}, err
	}
	var out ResultOutput
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		c, err := s.repos.AgentDeliveries.LockDelivery(ctx, id)
		if err != nil {
			return err
		}
		if c.AcquiredBy == nil || *c.AcquiredBy != p.ID {
			return domain.ForbiddenCode("delivery_not_acquired_by_agent", "Delivery not acquired by this agent")
		}
		if c.Status != webhook.StatusAcquired {
			return domain.Conflict("Delivery is not in progress (status " + c.Status + ")")
		}
		verdict := webhook.Retryable
		switch {
		case in.Success:
			verdict = webhook.Delivered
		case in.StatusCode != nil && webhook.Classify(*in.StatusCode) == webhook.Rejected:
			verdict = webhook.Rejected
		}
		d := webhook.Decide(verdict, c.Attempts+1, c.MaxRetries, s.now().UTC(), s.jitter())
		a := Attempt{Decision: d, StatusCode: in.StatusCode}
		if verdict != webhook.Delivered {
			msg := "Unknown error"
			if in.Error != nil && strings.TrimSpace(*in.Error) != "" {
				msg = webhook.Truncate(s.scrub(*in.Error, c), 1000)
			}
			a.LastError = &msg
		}
		if err := s.repos.AgentDeliveries.RecordAgentAttempt(ctx, id, a); err != nil {
			return err
		}
		out = ResultOutput{Status: d.Status, DeliveryID: id}
		if d.Status != webhook.StatusSuccess {
			out.Attempts = &d.Attempts
			out.NextRetryAt = d.NextRetryAt
			out.nextRetrySet = true
		}
		if d.Status == webhook.StatusDead {
			return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, webhook.ActionDeliveryFailed, webhook.ResourceType,
				c.SubscriptionID, map[string]any{"delivery_id": id, "event_type": c.EventType,
					"attempts": d.Attempts, "last_status_code": in.StatusCode}))
		}
		return nil
	})
	// Deliveries made by agents show in the console like the broker's own
	// (webhook-dispatch notes those): open pages refresh at once.
	if err == nil && s.notes != nil {
		aftercommit.Do(ctx, func() { s.notes.Noted(ctx, "delivery") })
	}
	return out, err
}

// scrub blanks the subscription's secrets out of text.
func (s *Service) scrub(text string, c Claimed) string {
	url, auth, key, err := openSecrets(s.cipher, c.URLEncrypted, c.AuthHeaderEncrypted, c.SigningSecretEncrypted)
	if err != nil {
		return text
	}
	return Scrub(text, url.Reveal(), auth.Reveal(), key.Reveal())
}

// Scrub replaces every occurrence of the secrets in text with [REDACTED].
func Scrub(text string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			text = strings.ReplaceAll(text, sec, "[REDACTED]")
		}
	}
	return text
}
