package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

func newSubscription(t *testing.T, st *postgres.Store, labels []string) webhook.Subscription {
	t.Helper()
	sub := webhook.Subscription{Name: "s-" + uuid.NewString()[:8], URLEncrypted: []byte{1, 2, 3},
		EventTypes: []string{"*"}, TargetLabels: labels, Enabled: true, MaxRetries: 5, TimeoutSeconds: 30}
	if err := postgres.NewSubscriptions(st).CreateSubscription(context.Background(), &sub); err != nil {
		t.Fatal(err)
	}
	return sub
}

func insertDeliveries(t *testing.T, st *postgres.Store, sub webhook.Subscription, n int) []uuid.UUID {
	t.Helper()
	ds := make([]webhook.Delivery, n)
	for i := range ds {
		ds[i] = webhook.Delivery{ID: uuid.New(), SubscriptionID: sub.ID, EventID: uuid.New(), EventType: "stack.created", Payload: "{}"}
	}
	ids, err := postgres.NewDeliveries(st).InsertDeliveries(context.Background(), ds)
	if err != nil || len(ids) != n {
		t.Fatalf("insert: %v (%d of %d)", err, len(ids), n)
	}
	return ids
}

func labelAgent(t *testing.T, db *sqlx.DB, id uuid.UUID, labels ...string) {
	t.Helper()
	for _, l := range labels {
		db.MustExec(`INSERT INTO agent_labels (agent_id, label) VALUES ($1, $2)`, id, l)
	}
}

func TestWebhookFanOutIsIdempotent(t *testing.T) {
	t.Parallel()
	st := postgres.NewStore(pgtest.New(t))
	ctx := context.Background()
	broker := newSubscription(t, st, nil)
	agentSub := newSubscription(t, st, []string{"env:prod"})
	ev := uuid.New()
	rows := []webhook.Delivery{
		{ID: uuid.New(), SubscriptionID: broker.ID, EventID: ev, EventType: "stack.created", Payload: `{"a":1}`},
		{ID: uuid.New(), SubscriptionID: agentSub.ID, EventID: ev, EventType: "stack.created", Payload: `{"a":1}`},
	}
	ids, err := postgres.NewDeliveries(st).InsertDeliveries(ctx, rows)
	if err != nil || len(ids) != 2 {
		t.Fatalf("first insert: %v %v", ids, err)
	}
	// A replay of the same event (fresh row ids) inserts nothing.
	replay := []webhook.Delivery{rows[0], rows[1]}
	replay[0].ID, replay[1].ID = uuid.New(), uuid.New()
	ids, err = postgres.NewDeliveries(st).InsertDeliveries(ctx, replay)
	if err != nil || len(ids) != 0 {
		t.Fatalf("replay inserted %v (%v)", ids, err)
	}
	list, err := postgres.NewDeliveries(st).ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: agentSub.ID, Limit: 10})
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	// Target labels are copied from the subscription; status starts pending.
	if got := list[0]; got.Status != webhook.StatusPending || len(got.TargetLabels) != 1 || got.TargetLabels[0] != "env:prod" {
		t.Fatalf("delivery %+v", got)
	}
	list, _ = postgres.NewDeliveries(st).ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: broker.ID, Limit: 10})
	if len(list) != 1 || list[0].TargetLabels != nil {
		t.Fatalf("a broker-mode delivery must have null target labels: %+v", list)
	}
}

func TestAgentClaimsAreAtomicAndLabelScoped(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	ctx := context.Background()
	sub := newSubscription(t, st, []string{"env:prod", "region:us"})
	insertDeliveries(t, st, sub, 30)
	newSubscription(t, st, nil) // broker-mode rows are never claimable by agents
	labelled := make([]uuid.UUID, 4)
	for i := range labelled {
		labelled[i] = insertAgent(t, db, "claimer-"+uuid.NewString()[:6], "", false)
	}
	half := insertAgent(t, db, "half", "", false)
	labelAgent(t, db, half, "env:prod")
	for _, a := range labelled {
		labelAgent(t, db, a, "env:prod", "region:us", "extra")
	}

	got, err := postgres.NewDeliveries(st).ClaimAgentDeliveries(ctx, half, []string{"env:prod"}, 10, time.Minute)
	if err != nil || len(got) != 0 {
		t.Fatalf("an agent lacking a target label claimed %d (%v)", len(got), err)
	}

	var mu sync.Mutex
	claimedBy := map[uuid.UUID]uuid.UUID{}
	var wg sync.WaitGroup
	for _, a := range labelled {
		wg.Go(func() {
			for {
				var rows []webhooks.Claimed
				err := st.InTx(ctx, func(ctx context.Context) error {
					var err error
					rows, err = postgres.NewDeliveries(st).ClaimAgentDeliveries(ctx, a, []string{"env:prod", "extra", "region:us"}, 3, time.Minute)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(rows) == 0 {
					return
				}
				mu.Lock()
				for _, r := range rows {
					if prev, dup := claimedBy[r.ID]; dup {
						t.Errorf("delivery %s claimed by %s and %s", r.ID, prev, a)
					}
					claimedBy[r.ID] = a
					if r.Status != webhook.StatusAcquired || r.AcquiredBy == nil || *r.AcquiredBy != a || len(r.URLEncrypted) == 0 {
						t.Errorf("claimed row %+v", r)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimedBy) != 30 {
		t.Fatalf("%d of 30 deliveries claimed", len(claimedBy))
	}

	// An expired lease makes the delivery claimable again, by anyone labelled.
	var victim uuid.UUID
	for id := range claimedBy {
		victim = id
		break
	}
	db.MustExec(`UPDATE webhook_deliveries SET acquired_until = now() - interval '1 second' WHERE id = $1`, victim)
	again, err := postgres.NewDeliveries(st).ClaimAgentDeliveries(ctx, labelled[0], []string{"env:prod", "region:us"}, 10, time.Minute)
	if err != nil || len(again) != 1 || again[0].ID != victim {
		t.Fatalf("re-claim after expiry: %+v %v", again, err)
	}
}

func TestBrokerLeaseGuardsRecording(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	ctx := context.Background()
	sub := newSubscription(t, st, nil)
	id := insertDeliveries(t, st, sub, 1)[0]

	c, ok, err := postgres.NewDeliveries(st).AcquireBroker(ctx, id, time.Second)
	if err != nil || !ok || c.AcquiredUntil == nil || c.AcquiredBy != nil {
		t.Fatalf("acquire: %+v %v %v", c, ok, err)
	}
	if _, ok, _ := postgres.NewDeliveries(st).AcquireBroker(ctx, id, time.Second); ok {
		t.Fatal("a held delivery was acquired twice")
	}
	// The lease expires; a second worker takes over with a new lease.
	db.MustExec(`UPDATE webhook_deliveries SET acquired_until = now() - interval '1 millisecond' WHERE id = $1`, id)
	var expired time.Time
	if err := db.Get(&expired, `SELECT acquired_until FROM webhook_deliveries WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	c2, ok, err := postgres.NewDeliveries(st).AcquireBroker(ctx, id, time.Second)
	if err != nil || !ok {
		t.Fatalf("take-over: %v %v", ok, err)
	}
	// The first worker's late result is refused; the second one's is stored.
	a := webhooks.Attempt{Decision: webhook.Decision{Status: webhook.StatusSuccess, Attempts: 1}}
	if stored, err := postgres.NewDeliveries(st).RecordBrokerAttempt(ctx, id, expired, a); err != nil || stored {
		t.Fatalf("stale lease recorded: %v %v", stored, err)
	}
	code := 200
	a.StatusCode = &code
	if stored, err := postgres.NewDeliveries(st).RecordBrokerAttempt(ctx, id, *c2.AcquiredUntil, a); err != nil || !stored {
		t.Fatalf("current lease not recorded: %v %v", stored, err)
	}
	st2, _ := postgres.NewDeliveries(st).DeliveryState(ctx, id)
	if st2.Status != webhook.StatusSuccess {
		t.Fatalf("state %+v", st2)
	}
	// A failed delivery is acquirable only once due.
	id2 := insertDeliveries(t, st, sub, 1)[0]
	c3, _, _ := postgres.NewDeliveries(st).AcquireBroker(ctx, id2, time.Second)
	next := time.Now().Add(time.Hour)
	_, _ = postgres.NewDeliveries(st).RecordBrokerAttempt(ctx, id2, *c3.AcquiredUntil, webhooks.Attempt{Decision: webhook.Decision{
		Status: webhook.StatusFailed, Attempts: 1, NextRetryAt: &next}})
	if _, ok, _ := postgres.NewDeliveries(st).AcquireBroker(ctx, id2, time.Second); ok {
		t.Fatal("a failed delivery was acquired before its retry time")
	}
	db.MustExec(`UPDATE webhook_deliveries SET next_retry_at = now() - interval '1 second' WHERE id = $1`, id2)
	if _, ok, _ := postgres.NewDeliveries(st).AcquireBroker(ctx, id2, time.Second); !ok {
		t.Fatal("a due failed delivery was not acquirable")
	}
}

func TestStaleSweepAndCleanup(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	ctx := context.Background()
	sub := newSubscription(t, st, nil)
	ids := insertDeliveries(t, st, sub, 4)
	lockedStale := func() []webhooks.StaleDelivery {
		var out []webhooks.StaleDelivery
		if err := st.InTx(ctx, func(ctx context.Context) error {
			var err error
			out, err = postgres.NewDeliveries(st).StaleBrokerDeliveries(ctx, time.Second, 100)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := lockedStale(); len(got) != 0 {
		t.Fatalf("fresh deliveries are not stale: %+v", got)
	}
	db.MustExec(`UPDATE webhook_deliveries SET created_at = now() - interval '1 minute'`)
	if got := lockedStale(); len(got) != 4 {
		t.Fatalf("never-enqueued deliveries must be stale: %d", len(got))
	}
	if err := postgres.NewDeliveries(st).MarkEnqueued(ctx, ids[:2]); err != nil {
		t.Fatal(err)
	}
	if got := lockedStale(); len(got) != 2 {
		t.Fatalf("just-enqueued deliveries are not stale: %d", len(got))
	}

	// Cleanup keeps non-terminal and recent rows.
	db.MustExec(`UPDATE webhook_deliveries SET status = 'success', completed_at = now() - interval '10 days' WHERE id = $1`, ids[0])
	db.MustExec(`UPDATE webhook_deliveries SET status = 'dead', completed_at = now() - interval '10 days' WHERE id = $1`, ids[1])
	db.MustExec(`UPDATE webhook_deliveries SET status = 'success', completed_at = now() WHERE id = $1`, ids[2])
	n, err := postgres.NewDeliveries(st).DeleteTerminalDeliveries(ctx, time.Now().Add(-7*24*time.Hour), 100)
	if err != nil || n != 2 {
		t.Fatalf("cleanup deleted %d (%v)", n, err)
	}
	var left int
	_ = db.Get(&left, `SELECT count(*) FROM webhook_deliveries`)
	if left != 2 {
		t.Fatalf("%d rows left, want 2", left)
	}
}

func TestOutboxCommitHookRunsAfterCommitOnly(t *testing.T) {
	t.Parallel()
	st := postgres.NewStore(pgtest.New(t))
	ctx := context.Background()
	var calls []bool // whether the event was visible (committed) when the hook ran
	st.OnOutboxCommit(func(ctx context.Context) {
		var n int
		_ = st.DB().GetContext(ctx, &n, `SELECT count(*) FROM outbox_events`)
		calls = append(calls, n > 0)
	})
	emit := func(ctx context.Context) error { return st.Emit(ctx, event.New("stack.created", map[string]any{})) }
	if err := st.InTx(ctx, func(ctx context.Context) error {
		if err := emit(ctx); err != nil {
			return err
		}
		if len(calls) != 0 {
			t.Error("the hook ran before commit")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || !calls[0] {
		t.Fatalf("after a commit with an event: %v", calls)
	}
	_ = st.InTx(ctx, func(ctx context.Context) error {
		_ = emit(ctx)
		return errors.New("roll back")
	})
	_ = st.InTx(ctx, func(ctx context.Context) error { return nil })
	if len(calls) != 1 {
		t.Fatalf("the hook ran for a rollback or an event-less commit: %v", calls)
	}
	if err := emit(ctx); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("an Emit outside a transaction commits at once: %v", calls)
	}
}
