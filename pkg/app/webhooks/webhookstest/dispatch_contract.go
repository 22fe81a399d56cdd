package webhookstest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// DispatchRepos is one implementation of the dispatcher's ports under
// test, with a World that can also publish outbox events.
type DispatchRepos struct {
	webhooks.DispatchRepos
	Subscriptions webhooks.SubscriptionRepository
	Agents        webhooks.AgentDeliveryRepository
	World         interface {
		World
		// Publish commits ev to the outbox.
		Publish(t *testing.T, ev event.Event)
	}
}

// RunDispatchContract checks the rules of OutboxRepository, DeliveryQueue,
// BrokerAttempts and DeliveryCleanup.
func RunDispatchContract(t *testing.T, newRepos func(t *testing.T) DispatchRepos) {
	ctx := context.Background()
	inTx := func(t *testing.T, tx journal.Transactor, fn func(ctx context.Context) error) {
		t.Helper()
		if err := tx.InTx(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	sub := func(t *testing.T, r DispatchRepos, labels ...string) webhook.Subscription {
		t.Helper()
		s := newSub("s", labels...)
		if err := r.Subscriptions.CreateSubscription(ctx, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	insert := func(t *testing.T, r DispatchRepos, subID uuid.UUID) uuid.UUID {
		t.Helper()
		ids, err := r.Queue.InsertDeliveries(ctx, []webhook.Delivery{delivery(subID)})
		if err != nil || len(ids) != 1 {
			t.Fatalf("insert %v %v", ids, err)
		}
		time.Sleep(2 * time.Millisecond)
		return ids[0]
	}

	t.Run("outbox: claim oldest undispatched, mark, delete after retention", func(t *testing.T) {
		r := newRepos(t)
		a := event.New("stack.created", map[string]any{"n": 1})
		time.Sleep(2 * time.Millisecond) // the outbox orders by the events' timestamps
		b := event.New("stack.deleted", nil)
		r.World.Publish(t, b)
		r.World.Publish(t, a)
		var got []webhooks.OutboxEvent
		inTx(t, r.Tx, func(ctx context.Context) (err error) { got, err = r.Outbox.ClaimOutbox(ctx, 1); return })
		if len(got) != 1 || got[0].ID != a.ID || got[0].Type != "stack.created" || got[0].Payload == "" {
			t.Fatalf("claim %+v", got)
		}
		inTx(t, r.Tx, func(ctx context.Context) error { return r.Outbox.MarkDispatched(ctx, []uuid.UUID{a.ID}) })
		inTx(t, r.Tx, func(ctx context.Context) (err error) { got, err = r.Outbox.ClaimOutbox(ctx, 10); return })
		if len(got) != 1 || got[0].ID != b.ID {
			t.Fatalf("after marking: %+v", got)
		}
		if n, err := r.Outbox.DeleteDispatchedOutbox(ctx, time.Now().Add(-time.Hour), 10); n != 0 || err != nil {
			t.Fatalf("retention deleted a fresh event: %d %v", n, err)
		}
		if n, err := r.Outbox.DeleteDispatchedOutbox(ctx, time.Now().Add(time.Hour), 10); n != 1 || err != nil {
			t.Fatalf("retention: %d %v", n, err)
		}
	})

	t.Run("event subject: the agent's labels when asked", func(t *testing.T) {
		r := newRepos(t)
		a := r.World.Agent(t, "ACTIVE", "env:prod")
		plain, err := r.Outbox.EventSubject(ctx, &a, nil, nil, false)
		if err != nil || plain.AgentID == nil || *plain.AgentID != a || plain.Labels != nil {
			t.Fatalf("without labels %+v %v", plain, err)
		}
		full, err := r.Outbox.EventSubject(ctx, &a, nil, nil, true)
		if err != nil || !slices.Equal(full.Labels, []string{"env:prod"}) {
			t.Fatalf("with labels %+v %v", full, err)
		}
	})

	t.Run("broker lease: acquire once, record only under the lease", func(t *testing.T) {
		r := newRepos(t)
		s := sub(t, r)
		id := insert(t, r, s.ID)
		c, ok, err := r.Attempts.AcquireBroker(ctx, id, time.Second)
		if err != nil || !ok || c.Status != webhook.StatusAcquired || c.AcquiredBy != nil || c.AcquiredUntil == nil ||
			c.AcquiredUntil.Before(time.Now().Add(10*time.Second)) || string(c.URLEncrypted) != "url" {
			t.Fatalf("acquire %+v %v %v", c, ok, err)
		}
		if _, ok, _ := r.Attempts.AcquireBroker(ctx, id, time.Second); ok {
			t.Fatal("acquired twice")
		}
		st, err := r.Attempts.DeliveryState(ctx, id)
		if err != nil || !st.Found || st.Status != webhook.StatusAcquired || st.AgentMode {
			t.Fatalf("state %+v %v", st, err)
		}
		if st, _ := r.Attempts.DeliveryState(ctx, uuid.New()); st.Found {
			t.Fatal("an unknown delivery is found")
		}
		next := time.Now().Add(time.Hour)
		fail := webhooks.Attempt{Decision: webhook.Decision{Status: webhook.StatusFailed, Attempts: 1, NextRetryAt: &next}}
		if stored, err := r.Attempts.RecordBrokerAttempt(ctx, id, c.AcquiredUntil.Add(time.Second), fail); stored || err != nil {
			t.Fatalf("recorded under another lease: %v %v", stored, err)
		}
		if stored, err := r.Attempts.RecordBrokerAttempt(ctx, id, *c.AcquiredUntil, fail); !stored || err != nil {
			t.Fatalf("record: %v %v", stored, err)
		}
		if _, ok, _ := r.Attempts.AcquireBroker(ctx, id, time.Second); ok {
			t.Fatal("acquired before its retry time")
		}
		st, _ = r.Attempts.DeliveryState(ctx, id)
		if st.Status != webhook.StatusFailed || st.NextRetryAt == nil || st.AcquiredUntil != nil {
			t.Fatalf("after a failure %+v", st)
		}
	})

	t.Run("release hands back only under the lease; agent-mode is not the broker's", func(t *testing.T) {
		r := newRepos(t)
		broker, agentMode := insert(t, r, sub(t, r).ID), insert(t, r, sub(t, r, "l").ID)
		if _, ok, _ := r.Attempts.AcquireBroker(ctx, agentMode, time.Second); ok {
			t.Fatal("the broker acquired an agent-mode delivery")
		}
		c, _, _ := r.Attempts.AcquireBroker(ctx, broker, time.Second)
		if err := r.Attempts.ReleaseBroker(ctx, broker, c.AcquiredUntil.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if st, _ := r.Attempts.DeliveryState(ctx, broker); st.Status != webhook.StatusAcquired {
			t.Fatalf("released under another lease: %s", st.Status)
		}
		if err := r.Attempts.ReleaseBroker(ctx, broker, *c.AcquiredUntil); err != nil {
			t.Fatal(err)
		}
		if st, _ := r.Attempts.DeliveryState(ctx, broker); st.Status != webhook.StatusPending || st.AcquiredUntil != nil {
			t.Fatalf("after release %+v", st)
		}
	})

	t.Run("sweep: broker deliveries not queued for grace, oldest first", func(t *testing.T) {
		r := newRepos(t)
		s := sub(t, r)
		old, queued := insert(t, r, s.ID), insert(t, r, s.ID)
		insert(t, r, sub(t, r, "l").ID) // agent mode: never the sweep's
		time.Sleep(30 * time.Millisecond)
		if err := r.Queue.MarkEnqueued(ctx, []uuid.UUID{queued}); err != nil {
			t.Fatal(err)
		}
		var got []webhooks.StaleDelivery
		inTx(t, r.Tx, func(ctx context.Context) (err error) {
			got, err = r.Queue.StaleBrokerDeliveries(ctx, 20*time.Millisecond, 10)
			return
		})
		if len(got) != 1 || got[0].ID != old || got[0].Status != webhook.StatusPending {
			t.Fatalf("stale %+v", got)
		}
	})

	t.Run("cleanup: expired agent leases and terminal deliveries", func(t *testing.T) {
		r := newRepos(t)
		s := sub(t, r, "l")
		held, leased, dead, done := insert(t, r, s.ID), insert(t, r, s.ID), insert(t, r, s.ID), insert(t, r, s.ID)
		a := r.World.Agent(t, "ACTIVE", "l")
		if got, _ := r.Agents.ClaimAgentDeliveries(ctx, a, []string{"l"}, 1, time.Hour); len(got) != 1 || got[0].ID != held {
			t.Fatalf("long claim %+v", got)
		}
		if got, _ := r.Agents.ClaimAgentDeliveries(ctx, a, []string{"l"}, 1, time.Millisecond); len(got) != 1 || got[0].ID != leased {
			t.Fatalf("short claim %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
		if n, err := r.Cleanup.ReleaseExpiredAgentLeases(ctx); n != 1 || err != nil {
			t.Fatalf("released %d %v", n, err)
		}
		if st, _ := r.Attempts.DeliveryState(ctx, leased); st.Status != webhook.StatusPending || st.AcquiredUntil != nil {
			t.Fatalf("expired lease %+v", st)
		}
		if st, _ := r.Attempts.DeliveryState(ctx, held); st.Status != webhook.StatusAcquired {
			t.Fatalf("live lease %+v", st)
		}
		r.World.SetDelivery(t, dead, webhook.StatusDead, 3, nil)
		r.World.SetDelivery(t, done, webhook.StatusSuccess, 1, nil)
		if n, err := r.Cleanup.DeleteTerminalDeliveries(ctx, time.Now().Add(-time.Hour), 10); n != 0 || err != nil {
			t.Fatalf("deleted fresh terminal deliveries: %d %v", n, err)
		}
		if n, err := r.Cleanup.DeleteTerminalDeliveries(ctx, time.Now().Add(time.Hour), 1); n != 1 || err != nil {
			t.Fatalf("limit 1: %d %v", n, err)
		}
		if n, _ := r.Cleanup.DeleteTerminalDeliveries(ctx, time.Now().Add(time.Hour), 10); n != 1 {
			t.Fatalf("second pass: %d", n)
		}
		if st, _ := r.Attempts.DeliveryState(ctx, held); !st.Found {
			t.Fatal("retention deleted a delivery in progress")
		}
	})
}
