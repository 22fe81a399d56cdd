package webhookstest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// World creates, in the backing store, what the ports read but do not
// write.
type World interface {
	// Agent adds a live agent with a status and labels.
	Agent(t *testing.T, status string, labels ...string) uuid.UUID
	// SetDelivery moves a delivery to status with attempts and a retry
	// time (as earlier attempts would have).
	SetDelivery(t *testing.T, id uuid.UUID, status string, attempts int, nextRetry *time.Time)
}

// Repos is one implementation under test.
type Repos struct {
	Subscriptions webhooks.SubscriptionRepository
	Source        webhooks.SubscriptionSource
	Deliveries    webhooks.DeliveryRepository
	Agents        webhooks.AgentDeliveryRepository
	// Insert is fan-out's InsertDeliveries, used to create deliveries.
	Insert func(ctx context.Context, ds []webhook.Delivery) ([]uuid.UUID, error)
	World  World
}

func newSub(name string, labels ...string) webhook.Subscription {
	by := "admin"
	return webhook.Subscription{Name: name, URLEncrypted: []byte("url"), EventTypes: []string{"stack.*"},
		TargetLabels: labels, Enabled: true, MaxRetries: 3, TimeoutSeconds: 10, CreatedBy: &by}
}

// RunSubscriptionContract checks the rules of SubscriptionRepository and
// SubscriptionSource.
func RunSubscriptionContract(t *testing.T, newRepos func(t *testing.T) Repos) {
	ctx := context.Background()
	create := func(t *testing.T, r Repos, s webhook.Subscription) webhook.Subscription {
		t.Helper()
		if err := r.Subscriptions.CreateSubscription(ctx, &s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct created_at
		return s
	}

	t.Run("create fills id and reads back", func(t *testing.T) {
		r := newRepos(t)
		in := newSub("one", "env:prod")
		in.AuthHeaderEncrypted = []byte("auth")
		in.Filters = &webhook.Filters{Labels: map[string]string{"team": "a"}}
		s := create(t, r, in)
		if s.ID == uuid.Nil || s.CreatedAt.IsZero() || !s.HasURL || !s.HasAuthHeader || s.HasSigningKey {
			t.Fatalf("created %+v", s)
		}
		got, err := r.Subscriptions.GetSubscription(ctx, s.ID)
		if err != nil || got.Name != "one" || string(got.URLEncrypted) != "url" || string(got.AuthHeaderEncrypted) != "auth" ||
			!slices.Equal(got.EventTypes, []string{"stack.*"}) || !slices.Equal(got.TargetLabels, []string{"env:prod"}) ||
			got.Filters == nil || got.Filters.Labels["team"] != "a" || got.MaxRetries != 3 || got.TimeoutSeconds != 10 ||
			got.CreatedBy == nil || *got.CreatedBy != "admin" || !got.Enabled {
			t.Fatalf("read back %+v %v", got, err)
		}
		if _, err := r.Subscriptions.GetSubscription(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	})

	t.Run("broker-mode subscriptions have no target labels and no empty filters", func(t *testing.T) {
		r := newRepos(t)
		in := newSub("broker")
		in.TargetLabels = []string{}
		in.Filters = &webhook.Filters{}
		s := create(t, r, in)
		got, _ := r.Subscriptions.GetSubscription(ctx, s.ID)
		if got.TargetLabels != nil || got.AgentMode() || got.Filters != nil {
			t.Fatalf("labels %#v filters %#v", got.TargetLabels, got.Filters)
		}
	})

	t.Run("column rules are refused as invalid", func(t *testing.T) {
		r := newRepos(t)
		for name, mod := range map[string]func(*webhook.Subscription){
			"no event types":  func(s *webhook.Subscription) { s.EventTypes = nil },
			"retries > 100":   func(s *webhook.Subscription) { s.MaxRetries = 101 },
			"timeout 0":       func(s *webhook.Subscription) { s.TimeoutSeconds = 0 },
			"name too long":   func(s *webhook.Subscription) { s.Name = strings.Repeat("n", 256) },
			"url is required": func(s *webhook.Subscription) { s.URLEncrypted = nil },
		} {
			s := newSub("bad")
			mod(&s)
			if err := r.Subscriptions.CreateSubscription(ctx, &s); !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("%s: %v, want invalid", name, err)
			}
		}
		if l, _ := r.Subscriptions.ListSubscriptions(ctx); len(l) != 0 {
			t.Fatalf("refused subscriptions stored: %d", len(l))
		}
	})

	t.Run("list is newest first, fan-out sees enabled ones oldest first", func(t *testing.T) {
		r := newRepos(t)
		a := create(t, r, newSub("a"))
		off := newSub("b")
		off.Enabled = false
		b := create(t, r, off)
		c := create(t, r, newSub("c"))
		all, err := r.Subscriptions.ListSubscriptions(ctx)
		if err != nil || len(all) != 3 || all[0].ID != c.ID || all[1].ID != b.ID || all[2].ID != a.ID {
			t.Fatalf("list %v %v", names(all), err)
		}
		on, err := r.Source.EnabledSubscriptions(ctx)
		if err != nil || len(on) != 2 || on[0].ID != a.ID || on[1].ID != c.ID {
			t.Fatalf("enabled %v %v", names(on), err)
		}
	})

	t.Run("update applies fn, or nothing when fn fails", func(t *testing.T) {
		r := newRepos(t)
		in := newSub("u")
		in.AuthHeaderEncrypted = []byte("auth")
		s := create(t, r, in)
		boom := errors.New("boom")
		if _, err := r.Subscriptions.UpdateSubscription(ctx, s.ID, func(s *webhook.Subscription) error {
			s.Name = "changed"
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("fn's error: %v", err)
		}
		if got, _ := r.Subscriptions.GetSubscription(ctx, s.ID); got.Name != "u" {
			t.Fatalf("a failed update changed the name to %q", got.Name)
		}
		out, err := r.Subscriptions.UpdateSubscription(ctx, s.ID, func(s *webhook.Subscription) error {
			s.Name, s.AuthHeaderEncrypted, s.Enabled, s.TargetLabels = "v", nil, false, []string{"x"}
			return nil
		})
		if err != nil || out.Name != "v" || out.HasAuthHeader || out.Enabled || !out.AgentMode() || out.ID != s.ID {
			t.Fatalf("updated %+v %v", out, err)
		}
		if got, _ := r.Subscriptions.GetSubscription(ctx, s.ID); got.Name != "v" || got.AuthHeaderEncrypted != nil {
			t.Fatalf("stored %+v", got)
		}
		if _, err := r.Subscriptions.UpdateSubscription(ctx, uuid.New(), func(*webhook.Subscription) error { return nil }); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	})

	t.Run("delete takes the deliveries along", func(t *testing.T) {
		r := newRepos(t)
		s := create(t, r, newSub("d"))
		if _, err := r.Insert(ctx, []webhook.Delivery{delivery(s.ID)}); err != nil {
			t.Fatal(err)
		}
		got, err := r.Subscriptions.DeleteSubscription(ctx, s.ID)
		if err != nil || got.ID != s.ID {
			t.Fatalf("delete %+v %v", got, err)
		}
		if _, err := r.Subscriptions.GetSubscription(ctx, s.ID); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if ds, _ := r.Deliveries.ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: s.ID, Limit: 10}); len(ds) != 0 {
			t.Fatalf("deliveries left: %d", len(ds))
		}
		if _, err := r.Subscriptions.DeleteSubscription(ctx, s.ID); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func names(ss []webhook.Subscription) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func delivery(sub uuid.UUID) webhook.Delivery {
	return webhook.Delivery{ID: uuid.New(), SubscriptionID: sub, EventID: uuid.New(), EventType: "stack.created", Payload: `{"id":"e"}`}
}

// RunDeliveryContract checks the rules of DeliveryRepository,
// AgentDeliveryRepository and fan-out's insert.
func RunDeliveryContract(t *testing.T, newRepos func(t *testing.T) Repos) {
	ctx := context.Background()
	setup := func(t *testing.T, labels ...string) (Repos, webhook.Subscription) {
		r := newRepos(t)
		s := newSub("s", labels...)
		s.SigningSecretEncrypted = []byte("key")
		if err := r.Subscriptions.CreateSubscription(ctx, &s); err != nil {
			t.Fatal(err)
		}
		return r, s
	}
	insert := func(t *testing.T, r Repos, d webhook.Delivery) uuid.UUID {
		t.Helper()
		ids, err := r.Insert(ctx, []webhook.Delivery{d})
		if err != nil || len(ids) != 1 {
			t.Fatalf("insert: %v %v", ids, err)
		}
		time.Sleep(2 * time.Millisecond) // distinct created_at
		return ids[0]
	}

	t.Run("fan-out inserts once per event and copies target labels", func(t *testing.T) {
		r, s := setup(t, "env:prod")
		d := delivery(s.ID)
		insert(t, r, d)
		replay := d
		replay.ID = uuid.New()
		if ids, err := r.Insert(ctx, []webhook.Delivery{replay}); err != nil || len(ids) != 0 {
			t.Fatalf("a replayed event created %v (%v)", ids, err)
		}
		ds, err := r.Deliveries.ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: s.ID, Limit: 10})
		if err != nil || len(ds) != 1 || ds[0].Status != webhook.StatusPending || !slices.Equal(ds[0].TargetLabels, []string{"env:prod"}) ||
			ds[0].Payload != d.Payload || ds[0].EventID != d.EventID || ds[0].Attempts != 0 {
			t.Fatalf("deliveries %+v %v", ds, err)
		}
	})

	t.Run("list is newest first, filtered and paged", func(t *testing.T) {
		r, s := setup(t)
		first, second, third := insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID))
		r.World.SetDelivery(t, second, webhook.StatusDead, 4, nil)
		page := func(q webhooks.DeliveryQuery) []uuid.UUID {
			t.Helper()
			q.SubscriptionID = s.ID
			ds, err := r.Deliveries.ListDeliveries(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []uuid.UUID
			for _, d := range ds {
				ids = append(ids, d.ID)
			}
			return ids
		}
		if got := page(webhooks.DeliveryQuery{Limit: 10}); !slices.Equal(got, []uuid.UUID{third, second, first}) {
			t.Fatalf("all %v", got)
		}
		if got := page(webhooks.DeliveryQuery{Limit: 1, Offset: 1}); !slices.Equal(got, []uuid.UUID{second}) {
			t.Fatalf("page %v", got)
		}
		if got := page(webhooks.DeliveryQuery{Limit: 10, Status: webhook.StatusPending}); !slices.Equal(got, []uuid.UUID{third, first}) {
			t.Fatalf("pending %v", got)
		}
		other, _ := r.Deliveries.ListDeliveries(ctx, webhooks.DeliveryQuery{SubscriptionID: uuid.New(), Limit: 10})
		if other == nil || len(other) != 0 {
			t.Fatalf("another subscription: %#v (want empty, non-nil)", other)
		}
	})

	t.Run("only a dead delivery of the subscription is retried", func(t *testing.T) {
		r, s := setup(t)
		dead, live := insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID))
		r.World.SetDelivery(t, dead, webhook.StatusDead, 4, nil)
		if _, err := r.Deliveries.RetryDeadDelivery(ctx, uuid.New(), dead); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("other subscription: %v", err)
		}
		if _, err := r.Deliveries.RetryDeadDelivery(ctx, s.ID, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown delivery: %v", err)
		}
		if _, err := r.Deliveries.RetryDeadDelivery(ctx, s.ID, live); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("pending delivery: %v", err)
		}
		got, err := r.Deliveries.RetryDeadDelivery(ctx, s.ID, dead)
		if err != nil || got.Status != webhook.StatusPending || got.Attempts != 0 || got.CompletedAt != nil || got.ID != dead {
			t.Fatalf("retried %+v %v", got, err)
		}
	})

	t.Run("webhook agent: status and sorted labels", func(t *testing.T) {
		r, _ := setup(t)
		a := r.World.Agent(t, "ACTIVE", "z", "a")
		info, err := r.Agents.WebhookAgent(ctx, a)
		if err != nil || info.Status != "ACTIVE" || !slices.Equal(info.Labels, []string{"a", "z"}) {
			t.Fatalf("info %+v %v", info, err)
		}
		if _, err := r.Agents.WebhookAgent(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
	})

	t.Run("agents claim what their labels cover, once, oldest first", func(t *testing.T) {
		r, s := setup(t, "env:prod", "team:a")
		broker := newSub("broker")
		if err := r.Subscriptions.CreateSubscription(ctx, &broker); err != nil {
			t.Fatal(err)
		}
		old, recent := insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID))
		insert(t, r, delivery(broker.ID))
		agent := r.World.Agent(t, "ACTIVE", "env:prod", "team:a", "more")
		partial := []string{"env:prod"}
		if c, _ := r.Agents.ClaimableAgentDeliveries(ctx, partial, 10); len(c) != 0 {
			t.Fatalf("an agent lacking a label sees %d", len(c))
		}
		labels := []string{"env:prod", "more", "team:a"}
		preview, err := r.Agents.ClaimableAgentDeliveries(ctx, labels, 10)
		if err != nil || len(preview) != 2 || preview[0].ID != old || preview[1].ID != recent {
			t.Fatalf("preview %+v %v", preview, err)
		}
		got, err := r.Agents.ClaimAgentDeliveries(ctx, agent, labels, 1, time.Minute)
		if err != nil || len(got) != 1 || got[0].ID != old || got[0].Status != webhook.StatusAcquired ||
			got[0].AcquiredBy == nil || *got[0].AcquiredBy != agent || got[0].AcquiredUntil == nil ||
			string(got[0].URLEncrypted) != "url" || string(got[0].SigningSecretEncrypted) != "key" ||
			got[0].TimeoutSeconds != 10 || got[0].MaxRetries != 3 {
			t.Fatalf("claim %+v %v", got, err)
		}
		rest, _ := r.Agents.ClaimAgentDeliveries(ctx, agent, labels, 10, time.Minute)
		if len(rest) != 1 || rest[0].ID != recent {
			t.Fatalf("second claim %+v", rest)
		}
		if none, _ := r.Agents.ClaimAgentDeliveries(ctx, agent, labels, 10, time.Minute); len(none) != 0 {
			t.Fatalf("claimed twice: %+v", none)
		}
	})

	t.Run("an expired lease or a due retry is claimable again", func(t *testing.T) {
		r, s := setup(t, "l")
		leased, retry, later := insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID))
		agent := r.World.Agent(t, "ACTIVE", "l")
		if got, _ := r.Agents.ClaimAgentDeliveries(ctx, agent, []string{"l"}, 1, time.Millisecond); len(got) != 1 || got[0].ID != leased {
			t.Fatalf("claim %+v", got)
		}
		past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
		r.World.SetDelivery(t, retry, webhook.StatusFailed, 1, &past)
		r.World.SetDelivery(t, later, webhook.StatusFailed, 1, &future)
		time.Sleep(20 * time.Millisecond)
		got, _ := r.Agents.ClaimAgentDeliveries(ctx, agent, []string{"l"}, 10, time.Minute)
		if len(got) != 2 || got[0].ID != leased || got[1].ID != retry {
			t.Fatalf("reclaim %+v", got)
		}
	})

	t.Run("attempts: success keeps who delivered, failure frees the claim", func(t *testing.T) {
		r, s := setup(t, "l")
		ok, bad := insert(t, r, delivery(s.ID)), insert(t, r, delivery(s.ID))
		agent := r.World.Agent(t, "ACTIVE", "l")
		if got, _ := r.Agents.ClaimAgentDeliveries(ctx, agent, []string{"l"}, 10, time.Minute); len(got) != 2 {
			t.Fatalf("claim %d", len(got))
		}
		code := 200
		if err := r.Agents.RecordAgentAttempt(ctx, ok, webhooks.Attempt{
			Decision: webhook.Decision{Status: webhook.StatusSuccess, Attempts: 1}, StatusCode: &code}); err != nil {
			t.Fatal(err)
		}
		next, msg := time.Now().Add(time.Hour), "HTTP 500"
		if err := r.Agents.RecordAgentAttempt(ctx, bad, webhooks.Attempt{
			Decision: webhook.Decision{Status: webhook.StatusFailed, Attempts: 1, NextRetryAt: &next}, LastError: &msg}); err != nil {
			t.Fatal(err)
		}
		good, err := r.Agents.LockDelivery(ctx, ok)
		if err != nil || good.Status != webhook.StatusSuccess || good.AcquiredBy == nil || *good.AcquiredBy != agent ||
			good.CompletedAt == nil || good.LastAttemptAt == nil || good.LastStatusCode == nil || *good.LastStatusCode != 200 {
			t.Fatalf("success %+v %v", good, err)
		}
		failed, _ := r.Agents.LockDelivery(ctx, bad)
		if failed.Status != webhook.StatusFailed || failed.AcquiredBy != nil || failed.AcquiredUntil != nil ||
			failed.CompletedAt != nil || failed.NextRetryAt == nil || failed.LastError == nil || *failed.LastError != msg {
			t.Fatalf("failure %+v", failed)
		}
		if _, err := r.Agents.LockDelivery(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown delivery: %v", err)
		}
	})
}
