package webhookstest

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// The dispatcher's side of Memory: the outbox, broker leases, the sweep
// and retention, with the same guards as the SQL in
// pkg/adapters/postgres/webhooks.go. Event subjects know agents and their
// labels only (no stacks, objects or annotations).

type outboxRow struct {
	ev         webhooks.OutboxEvent
	created    time.Time
	dispatched *time.Time
}

var (
	_ webhooks.OutboxRepository = (*Memory)(nil)
	_ webhooks.DeliveryQueue    = (*Memory)(nil)
	_ webhooks.BrokerAttempts   = (*Memory)(nil)
	_ webhooks.DeliveryCleanup  = (*Memory)(nil)
)

// Publish appends ev to the outbox, as a committed use case does.
func (m *Memory) Publish(_ *testing.T, ev event.Event) {
	b, _ := json.Marshal(ev)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outbox = append(m.outbox, &outboxRow{ev: webhooks.OutboxEvent{ID: ev.ID, Type: ev.Type, Payload: string(b)},
		created: ev.Timestamp})
	// Oldest event first, as the relay reads them.
	sort.SliceStable(m.outbox, func(i, j int) bool { return m.outbox[i].created.Before(m.outbox[j].created) })
}

// InTx runs fn (the dispatcher's transactions; Memory's methods are
// atomic one by one, which is what the dispatcher relies on).
func (m *Memory) InTx(ctx context.Context, fn func(ctx context.Context) error) error { return fn(ctx) }

// ClaimOutbox implements OutboxRepository.
func (m *Memory) ClaimOutbox(_ context.Context, limit int) ([]webhooks.OutboxEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []webhooks.OutboxEvent
	for _, r := range m.outbox {
		if r.dispatched == nil && len(out) < limit {
			out = append(out, r.ev)
		}
	}
	return out, nil
}

// MarkDispatched implements OutboxRepository.
func (m *Memory) MarkDispatched(_ context.Context, ids []uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for _, r := range m.outbox {
		if slices.Contains(ids, r.ev.ID) {
			r.dispatched = &now
		}
	}
	return nil
}

// DeleteDispatchedOutbox implements OutboxRepository.
func (m *Memory) DeleteDispatchedOutbox(_ context.Context, before time.Time, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	m.outbox = slices.DeleteFunc(m.outbox, func(r *outboxRow) bool {
		if r.dispatched != nil && r.dispatched.Before(before) && n < int64(limit) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

// EventSubject implements OutboxRepository for agents: their labels, no
// annotations.
func (m *Memory) EventSubject(_ context.Context, agentID, stackID, _ *uuid.UUID, labels bool) (webhook.Subject, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	subj := webhook.Subject{AgentID: agentID, StackID: stackID}
	if !labels || (agentID == nil && stackID == nil) {
		return subj, nil
	}
	subj.Labels, subj.Annotations = []string{}, map[string][]string{}
	if agentID != nil {
		subj.Labels = append(subj.Labels, m.agents[*agentID].labels...)
	}
	return subj, nil
}

// MarkEnqueued implements DeliveryQueue.
func (m *Memory) MarkEnqueued(_ context.Context, ids []uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		m.enqueued[id] = now
	}
	return nil
}

// StaleBrokerDeliveries implements DeliveryQueue.
func (m *Memory) StaleBrokerDeliveries(_ context.Context, grace time.Duration, limit int) ([]webhooks.StaleDelivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	cutoff := now.Add(-grace)
	var rows []webhook.Delivery
	for _, d := range m.deliveries {
		since, ok := m.enqueued[d.ID]
		if !ok {
			since = d.CreatedAt
		}
		if d.TargetLabels != nil || !since.Before(cutoff) {
			continue
		}
		if d.Status == webhook.StatusPending ||
			(d.Status == webhook.StatusFailed && d.NextRetryAt != nil && d.NextRetryAt.Before(cutoff)) ||
			(d.Status == webhook.StatusAcquired && d.AcquiredBy == nil && d.AcquiredUntil != nil && d.AcquiredUntil.Before(now)) {
			rows = append(rows, d)
		}
	}
	sortOldestFirst(rows)
	out := []webhooks.StaleDelivery{}
	for _, d := range rows[:min(limit, len(rows))] {
		out = append(out, webhooks.StaleDelivery{ID: d.ID, Status: d.Status, Attempts: d.Attempts})
	}
	return out, nil
}

func sortOldestFirst(ds []webhook.Delivery) {
	sort.Slice(ds, func(i, j int) bool {
		if !ds[i].CreatedAt.Equal(ds[j].CreatedAt) {
			return ds[i].CreatedAt.Before(ds[j].CreatedAt)
		}
		return ds[i].ID.String() < ds[j].ID.String()
	})
}

// AcquireBroker implements BrokerAttempts.
func (m *Memory) AcquireBroker(_ context.Context, id uuid.UUID, margin time.Duration) (webhooks.Claimed, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	now := time.Now()
	if !ok || d.TargetLabels != nil {
		return webhooks.Claimed{}, false, nil
	}
	due := d.Status == webhook.StatusPending ||
		(d.Status == webhook.StatusFailed && d.NextRetryAt != nil && !d.NextRetryAt.After(now)) ||
		(d.Status == webhook.StatusAcquired && d.AcquiredUntil != nil && d.AcquiredUntil.Before(now))
	if !due {
		return webhooks.Claimed{}, false, nil
	}
	until := now.Add(m.subs[d.SubscriptionID].Timeout() + margin)
	d.Status, d.AcquiredBy, d.AcquiredUntil = webhook.StatusAcquired, nil, &until
	m.deliveries[id] = d
	return m.claimed(d), true, nil
}

// DeliveryState implements BrokerAttempts.
func (m *Memory) DeliveryState(_ context.Context, id uuid.UUID) (webhooks.DeliveryState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok {
		return webhooks.DeliveryState{}, nil
	}
	return webhooks.DeliveryState{Found: true, Status: d.Status, AgentMode: d.TargetLabels != nil,
		NextRetryAt: d.NextRetryAt, AcquiredUntil: d.AcquiredUntil}, nil
}

// ours reports whether the broker still holds d under lease.
func ours(d webhook.Delivery, lease time.Time) bool {
	return d.Status == webhook.StatusAcquired && d.AcquiredBy == nil && d.AcquiredUntil != nil && d.AcquiredUntil.Equal(lease)
}

// ReleaseBroker implements BrokerAttempts.
func (m *Memory) ReleaseBroker(_ context.Context, id uuid.UUID, lease time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.deliveries[id]; ok && ours(d, lease) {
		d.Status, d.AcquiredUntil = webhook.StatusPending, nil
		m.deliveries[id] = d
	}
	return nil
}

// RecordBrokerAttempt implements BrokerAttempts.
func (m *Memory) RecordBrokerAttempt(_ context.Context, id uuid.UUID, lease time.Time, a webhooks.Attempt) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deliveries[id]
	if !ok || !ours(d, lease) {
		return false, nil
	}
	m.deliveries[id] = recorded(d, a)
	return true, nil
}

// ReleaseExpiredAgentLeases implements DeliveryCleanup.
func (m *Memory) ReleaseExpiredAgentLeases(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	now := time.Now()
	for id, d := range m.deliveries {
		if d.Status == webhook.StatusAcquired && d.TargetLabels != nil && d.AcquiredUntil != nil && d.AcquiredUntil.Before(now) {
			d.Status, d.AcquiredBy, d.AcquiredUntil = webhook.StatusPending, nil, nil
			m.deliveries[id] = d
			n++
		}
	}
	return n, nil
}

// DeleteTerminalDeliveries implements DeliveryCleanup.
func (m *Memory) DeleteTerminalDeliveries(_ context.Context, before time.Time, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for id, d := range m.deliveries {
		if n < int64(limit) && (d.Status == webhook.StatusSuccess || d.Status == webhook.StatusDead) &&
			d.CompletedAt != nil && d.CompletedAt.Before(before) {
			delete(m.deliveries, id)
			n++
		}
	}
	return n, nil
}
