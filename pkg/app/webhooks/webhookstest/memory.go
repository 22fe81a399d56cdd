// Package webhookstest holds an in-memory implementation of the webhook
// API-side ports (subscriptions, the admin's delivery view, agent-mode
// claims) and the contract suite that both it and the PostgreSQL adapter
// must pass.
package webhookstest

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

type agentRow struct {
	status string
	labels []string
}

// Memory implements SubscriptionRepository, SubscriptionSource,
// DeliveryRepository, AgentDeliveryRepository and the fan-out's
// InsertDeliveries with the rules of the schema: the column checks of a
// subscription, deliveries deleted with their subscription, one delivery
// per (event, subscription), claims that never hand one delivery to two
// agents. It is also the World the contract builds fixtures in.
type Memory struct {
	mu         sync.Mutex
	subs       map[uuid.UUID]webhook.Subscription
	deliveries map[uuid.UUID]webhook.Delivery
	agents     map[uuid.UUID]agentRow
	outbox     []*outboxRow
	enqueued   map[uuid.UUID]time.Time
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{subs: map[uuid.UUID]webhook.Subscription{}, deliveries: map[uuid.UUID]webhook.Delivery{},
		agents: map[uuid.UUID]agentRow{}, enqueued: map[uuid.UUID]time.Time{}}
}

var (
	_ webhooks.SubscriptionRepository  = (*Memory)(nil)
	_ webhooks.SubscriptionSource      = (*Memory)(nil)
	_ webhooks.DeliveryRepository      = (*Memory)(nil)
	_ webhooks.AgentDeliveryRepository = (*Memory)(nil)
	_ World                            = (*Memory)(nil)
)

// Agent adds a live agent with a status and labels.
func (m *Memory) Agent(_ *testing.T, status string, labels ...string) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.agents[id] = agentRow{status: status, labels: append([]string(nil), labels...)}
	return id
}

// SetDelivery changes a delivery's status, attempts and retry time.
func (m *Memory) SetDelivery(_ *testing.T, id uuid.UUID, status string, attempts int, nextRetry *time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.deliveries[id]
	d.Status, d.Attempts, d.NextRetryAt, d.AcquiredBy, d.AcquiredUntil, d.CompletedAt = status, attempts, nextRetry, nil, nil, nil
	if status == webhook.StatusSuccess || status == webhook.StatusDead {
		now := time.Now()
		d.CompletedAt = &now
	}
	m.deliveries[id] = d
}

// check applies the column constraints PostgreSQL enforces.
func check(s *webhook.Subscription) error {
	switch {
	case len(s.Name) > 255:
		return domain.Invalid("value too long")
	case len(s.URLEncrypted) == 0, len(s.EventTypes) == 0,
		s.MaxRetries < 0 || s.MaxRetries > 100, s.TimeoutSeconds < 1 || s.TimeoutSeconds > 300:
		return domain.Invalid("invalid value")
	}
	return nil
}

// stored normalises s as a round trip through the table does.
func stored(s webhook.Subscription) webhook.Subscription {
	s.EventTypes = append([]string{}, s.EventTypes...)
	if len(s.TargetLabels) == 0 {
		s.TargetLabels = nil
	} else {
		s.TargetLabels = append([]string(nil), s.TargetLabels...)
	}
	if s.Filters != nil && s.Filters.Empty() {
		s.Filters = nil
	}
	if len(s.AuthHeaderEncrypted) == 0 {
		s.AuthHeaderEncrypted = nil
	}
	if len(s.SigningSecretEncrypted) == 0 {
		s.SigningSecretEncrypted = nil
	}
	s.HasURL = len(s.URLEncrypted) > 0
	s.HasAuthHeader = len(s.AuthHeaderEncrypted) > 0
	s.HasSigningKey = len(s.SigningSecretEncrypted) > 0
	return s
}

func sortSubs(out []webhook.Subscription, newestFirst bool) {
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt) == newestFirst
		}
		return out[i].ID.String() < out[j].ID.String()
	})
}

// ListSubscriptions implements SubscriptionRepository.
func (m *Memory) ListSubscriptions(context.Context) ([]webhook.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]webhook.Subscription, 0, len(m.subs))
	for _, s := range m.subs {
		out = append(out, s)
	}
	sortSubs(out, true)
	return out, nil
}

// EnabledSubscriptions implements SubscriptionSource.
func (m *Memory) EnabledSubscriptions(context.Context) ([]webhook.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []webhook.Subscription{}
	for _, s := range m.subs {
		if s.Enabled {
			out = append(out, s)
		}
	}
	sortSubs(out, false)
	return out, nil
}

// CreateSubscription implements SubscriptionRepository.
func (m *Memory) CreateSubscription(_ context.Context, s *webhook.Subscription) error {
	if err := check(s); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	s.ID, s.CreatedAt, s.UpdatedAt = uuid.New(), now, now
	*s = stored(*s)
	m.subs[s.ID] = *s
	return nil
}

// GetSubscription implements SubscriptionRepository.
func (m *Memory) GetSubscription(_ context.Context, id uuid.UUID) (webhook.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return testsupport.Lookup(m.subs, id, domain.NotFoundCode("webhook_not_found", "Webhook subscription not found"))
}

// UpdateSubscription implements SubscriptionRepository.
func (m *Memory) UpdateSubscription(_ context.Context, id uuid.UUID, fn func(*webhook.Subscription) error) (webhook.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return webhook.Subscription{}, domain.NotFoundCode("webhook_not_found", "Webhook subscription not found")
	}
	if err := fn(&s); err != nil {
		return webhook.Subscription{}, err
	}
	if err := check(&s); err != nil {
		return webhook.Subscription{}, err
	}
	prev := m.subs[id]
	s.ID, s.CreatedAt, s.CreatedBy, s.UpdatedAt = id, prev.CreatedAt, prev.CreatedBy, time.Now()
	s = stored(s)
	m.subs[id] = s
	return s, nil
}

// DeleteSubscription implements SubscriptionRepository.
func (m *Memory) DeleteSubscription(_ context.Context, id uuid.UUID) (webhook.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return webhook.Subscription{}, domain.NotFoundCode("webhook_not_found", "Webhook subscription not found")
	}
	delete(m.subs, id)
	for did, d := range m.deliveries {
		if d.SubscriptionID == id {
			delete(m.deliveries, did)
		}
	}
	return s, nil
}

// InsertDeliveries stores deliveries as fan-out does: target labels from
// the subscription, existing (event, subscription) pairs skipped.
func (m *Memory) InsertDeliveries(_ context.Context, ds []webhook.Delivery) ([]uuid.UUID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var out []uuid.UUID
	for _, d := range ds {
		sub, ok := m.subs[d.SubscriptionID]
		if !ok {
			continue // the insert joins webhook_subscriptions: unknown ones drop out
		}
		dup := false
		for _, o := range m.deliveries {
			dup = dup || (o.EventID == d.EventID && o.SubscriptionID == d.SubscriptionID)
		}
		if dup {
			continue
		}
		m.deliveries[d.ID] = webhook.Delivery{ID: d.ID, SubscriptionID: d.SubscriptionID, EventType: d.EventType,
			EventID: d.EventID, Payload: d.Payload, TargetLabels: slices.Clone(sub.TargetLabels),
			Status: webhook.StatusPending, CreatedAt: now}
		out = append(out, d.ID)
	}
	return out, nil
}

// ListDeliveries implements DeliveryRepository.
func (m *Memory) ListDeliveries(_ context.Context, q webhooks.DeliveryQuery) ([]webhook.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []webhook.Delivery{}
	for _, d := range m.deliveries {
		if d.SubscriptionID == q.SubscriptionID && (q.Status == "" || d.Status == q.Status) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	out = out[min(q.Offset, len(out)):]
	return out[:min(q.Limit, len(out))], nil
}

// RetryDeadDelivery implements DeliveryRepository.
func (m *Memory) RetryDeadDelivery(_ context.Context, subscriptionID, deliveryID uuid.UUID) (webhook.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[deliveryID]
	if !ok || d.SubscriptionID != subscriptionID {
		return webhook.Delivery{}, domain.NotFoundCode("delivery_not_found", "Delivery not found")
	}
	if d.Status != webhook.StatusDead {
		return webhook.Delivery{}, domain.Conflict("Only a dead delivery can be retried (this one is " + d.Status + ")")
	}
	d.Status, d.Attempts, d.AcquiredBy, d.AcquiredUntil, d.NextRetryAt, d.CompletedAt =
		webhook.StatusPending, 0, nil, nil, nil, nil
	m.deliveries[deliveryID] = d
	return d, nil
}

// WebhookAgent implements AgentDeliveryRepository.
func (m *Memory) WebhookAgent(_ context.Context, id uuid.UUID) (webhooks.AgentInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.agents[id]
	if !ok {
		return webhooks.AgentInfo{}, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	labels := slices.Clone(a.labels)
	slices.Sort(labels)
	return webhooks.AgentInfo{Status: a.status, Labels: labels}, nil
}

// claimable is the agent-mode claim rule.
func claimable(d webhook.Delivery, labels []string, now time.Time) bool {
	if d.TargetLabels == nil {
		return false
	}
	for _, l := range d.TargetLabels {
		if !slices.Contains(labels, l) {
			return false
		}
	}
	switch d.Status {
	case webhook.StatusPending:
		return true
	case webhook.StatusFailed:
		return d.NextRetryAt != nil && !d.NextRetryAt.After(now)
	case webhook.StatusAcquired:
		return d.AcquiredUntil != nil && d.AcquiredUntil.Before(now)
	}
	return false
}

func (m *Memory) pick(labels []string, limit int) []webhook.Delivery {
	now := time.Now()
	var out []webhook.Delivery
	for _, d := range m.deliveries {
		if claimable(d, labels, now) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out[:min(limit, len(out))]
}

func (m *Memory) claimed(d webhook.Delivery) webhooks.Claimed {
	s := m.subs[d.SubscriptionID]
	return webhooks.Claimed{Delivery: d, URLEncrypted: s.URLEncrypted, AuthHeaderEncrypted: s.AuthHeaderEncrypted,
		SigningSecretEncrypted: s.SigningSecretEncrypted, TimeoutSeconds: s.TimeoutSeconds, MaxRetries: s.MaxRetries}
}

// ClaimAgentDeliveries implements AgentDeliveryRepository.
func (m *Memory) ClaimAgentDeliveries(_ context.Context, agentID uuid.UUID, labels []string, limit int, lease time.Duration) ([]webhooks.Claimed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until := time.Now().Add(lease)
	out := []webhooks.Claimed{}
	for _, d := range m.pick(labels, limit) {
		d.Status, d.AcquiredBy, d.AcquiredUntil = webhook.StatusAcquired, &agentID, &until
		m.deliveries[d.ID] = d
		out = append(out, m.claimed(d))
	}
	return out, nil
}

// ClaimableAgentDeliveries implements AgentDeliveryRepository.
func (m *Memory) ClaimableAgentDeliveries(_ context.Context, labels []string, limit int) ([]webhooks.Claimed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []webhooks.Claimed{}
	for _, d := range m.pick(labels, limit) {
		out = append(out, m.claimed(d))
	}
	return out, nil
}

// LockDelivery implements AgentDeliveryRepository.
func (m *Memory) LockDelivery(_ context.Context, id uuid.UUID) (webhooks.Claimed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok {
		return webhooks.Claimed{}, domain.NotFoundCode("delivery_not_found", "Delivery not found")
	}
	return m.claimed(d), nil
}

// RecordAgentAttempt implements AgentDeliveryRepository: success keeps
// who delivered, anything else clears the claim.
func (m *Memory) RecordAgentAttempt(_ context.Context, id uuid.UUID, a webhooks.Attempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.deliveries[id]; ok { // else an UPDATE of no row
		m.deliveries[id] = recorded(d, a)
	}
	return nil
}

// recorded applies an attempt's outcome to d.
func recorded(d webhook.Delivery, a webhooks.Attempt) webhook.Delivery {
	now := time.Now()
	d.Status, d.Attempts, d.NextRetryAt = a.Decision.Status, a.Decision.Attempts, a.Decision.NextRetryAt
	d.LastError, d.LastStatusCode, d.LastAttemptAt, d.AcquiredUntil = a.LastError, a.StatusCode, &now, nil
	d.CompletedAt = nil
	if d.Status == webhook.StatusSuccess || d.Status == webhook.StatusDead {
		d.CompletedAt = &now
	}
	if d.Status != webhook.StatusSuccess {
		d.AcquiredBy = nil
	}
	return d
}
