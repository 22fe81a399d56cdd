package webhooks_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks/webhookstest"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// queue records the tasks the relay hands over; fail makes it refuse all.
type queue struct {
	mu    sync.Mutex
	tasks []webhooks.Task
	fail  bool
}

func (q *queue) Enqueue(_ context.Context, tasks []webhooks.Task) ([]uuid.UUID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail {
		return nil, errors.New("redis down")
	}
	var ids []uuid.UUID
	for _, t := range tasks {
		q.tasks = append(q.tasks, t)
		ids = append(ids, t.DeliveryID)
	}
	return ids, nil
}

func (q *queue) Requeue(_ context.Context, stale []webhooks.StaleDelivery) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	for _, s := range stale {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

type dispatchFixture struct {
	d       *webhooks.Dispatcher
	mem     *webhookstest.Memory
	journal *journaltest.Journal
	queue   *queue
	sender  *guardSender
}

func newDispatchFixture() dispatchFixture {
	m := webhookstest.NewMemory()
	j := &journaltest.Journal{}
	q := &queue{}
	s := &guardSender{result: webhook.Result{StatusCode: 200}}
	repos := webhooks.DispatchRepos{Tx: j, Journal: j, Subscriptions: m, Outbox: m, Queue: m, Attempts: m, Cleanup: m}
	settings := func() webhooks.DispatchSettings {
		return webhooks.DispatchSettings{BatchSize: 2, Interval: time.Second, RetentionDays: 7}
	}
	d := webhooks.NewDispatcher(repos, prefixCipher{}, s, q, webhooks.NewHostLimiter(0), settings, nil, nil)
	return dispatchFixture{d: d, mem: m, journal: j, queue: q, sender: s}
}

func (f dispatchFixture) subscribe(t *testing.T, types []string, labels []string, enabled bool) webhook.Subscription {
	t.Helper()
	s := webhook.Subscription{Name: "s", URLEncrypted: prefixCipher{}.Seal([]byte("https://example.com/h")), EventTypes: types,
		TargetLabels: labels, Enabled: enabled, MaxRetries: 1, TimeoutSeconds: 5}
	if err := f.mem.CreateSubscription(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRelayFansOut(t *testing.T) {
	ctx := context.Background()
	f := newDispatchFixture()
	broker := f.subscribe(t, []string{"stack.*"}, nil, true)
	agentMode := f.subscribe(t, []string{"*"}, []string{"env:prod"}, true)
	f.subscribe(t, []string{"stack.*"}, nil, false)      // disabled
	f.subscribe(t, []string{"agent.created"}, nil, true) // another type
	for range 3 {
		f.mem.Publish(t, event.New("stack.created", map[string]any{"stack_id": uuid.NewString()}))
	}
	n, err := f.d.Relay(ctx)
	if err != nil || n != 3 {
		t.Fatalf("relayed %d %v (three events in batches of two)", n, err)
	}
	brokerDs, _ := f.mem.ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: broker.ID, Limit: 10})
	agentDs, _ := f.mem.ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: agentMode.ID, Limit: 10})
	if len(brokerDs) != 3 || len(agentDs) != 3 {
		t.Fatalf("deliveries: broker %d, agent %d", len(brokerDs), len(agentDs))
	}
	if len(f.queue.tasks) != 3 {
		t.Fatalf("only broker-mode deliveries are queued: %d tasks", len(f.queue.tasks))
	}
	for _, task := range f.queue.tasks {
		if !slices.ContainsFunc(brokerDs, func(d webhook.Delivery) bool { return d.ID == task.DeliveryID }) {
			t.Fatalf("queued %v, not a broker delivery", task.DeliveryID)
		}
	}
	if n, _ := f.d.Relay(ctx); n != 0 {
		t.Fatalf("a second relay moved %d events", n)
	}
}

func TestRelayLeavesUnqueuedToTheSweep(t *testing.T) {
	ctx := context.Background()
	f := newDispatchFixture()
	sub := f.subscribe(t, []string{"*"}, nil, true)
	f.queue.fail = true
	f.mem.Publish(t, event.New("stack.created", nil))
	if n, err := f.d.Relay(ctx); err != nil || n != 1 {
		t.Fatalf("relay %d %v: a queue failure does not fail the relay", n, err)
	}
	ds, _ := f.mem.ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: sub.ID, Limit: 10})
	if len(ds) != 1 {
		t.Fatalf("the delivery is stored regardless: %d", len(ds))
	}
	stale, _ := f.mem.StaleBrokerDeliveries(ctx, -time.Second, 10)
	if len(stale) != 1 || stale[0].ID != ds[0].ID {
		t.Fatalf("not marked enqueued, so the sweep finds it: %+v", stale)
	}
}

func TestDeliverOutcomes(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		result   webhook.Result
		sealed   bool
		kind     webhooks.OutcomeKind
		status   string
		audited  bool
		attempts int
	}{
		{"2xx", webhook.Result{StatusCode: 204}, true, webhooks.Done, webhook.StatusSuccess, false, 1},
		{"5xx with retries left", webhook.Result{StatusCode: 503}, true, webhooks.Retry, webhook.StatusFailed, false, 1},
		{"4xx is final", webhook.Result{StatusCode: 400}, true, webhooks.Done, webhook.StatusDead, true, 1},
		{"undecryptable", webhook.Result{StatusCode: 204}, false, webhooks.Done, webhook.StatusDead, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newDispatchFixture()
			f.sender.result = c.result
			sub := f.subscribe(t, []string{"*"}, nil, true)
			if !c.sealed {
				if _, err := f.mem.UpdateSubscription(ctx, sub.ID, func(s *webhook.Subscription) error {
					s.URLEncrypted = []byte("sealed under another key")
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			ids, _ := f.mem.InsertDeliveries(ctx, []webhook.Delivery{{ID: uuid.New(), SubscriptionID: sub.ID, EventID: uuid.New(),
				EventType: "stack.created", Payload: "{}"}})
			out := f.d.Deliver(ctx, ids[0])
			if out.Kind != c.kind || out.Status != c.status {
				t.Fatalf("outcome %+v, want kind %v status %s", out, c.kind, c.status)
			}
			st, _ := f.mem.DeliveryState(ctx, ids[0])
			d, _ := f.mem.LockDelivery(ctx, ids[0])
			if st.Status != c.status || d.Attempts != c.attempts {
				t.Fatalf("stored %s after %d attempts", st.Status, d.Attempts)
			}
			if got := len(f.journal.Audits()) == 1; got != c.audited {
				t.Fatalf("audited %v (%v)", got, f.journal.Actions())
			}
			if again := f.d.Deliver(ctx, ids[0]); c.kind == webhooks.Done && again.Kind != webhooks.Done {
				t.Fatalf("a finished delivery is done: %+v", again)
			}
		})
	}
}

func TestDeliverSkipsAgentModeAndUnknown(t *testing.T) {
	ctx := context.Background()
	f := newDispatchFixture()
	sub := f.subscribe(t, []string{"*"}, []string{"l"}, true)
	ids, _ := f.mem.InsertDeliveries(ctx, []webhook.Delivery{{ID: uuid.New(), SubscriptionID: sub.ID, EventID: uuid.New(),
		EventType: "stack.created", Payload: "{}"}})
	for _, id := range []uuid.UUID{ids[0], uuid.New()} {
		if out := f.d.Deliver(ctx, id); out.Kind != webhooks.Done || f.sender.sent != 0 {
			t.Fatalf("%v: %+v, sent %d", id, out, f.sender.sent)
		}
	}
}
