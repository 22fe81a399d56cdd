package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks/webhookstest"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
)

// webhookWorld creates agents and moves deliveries with plain SQL.
type webhookWorld struct{ db *sqlx.DB }

func (w webhookWorld) Agent(t *testing.T, status string, labels ...string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.db.Get(&id, `INSERT INTO agents (name, cluster_name, status) VALUES ($1, 'c', $2) RETURNING id`,
		"a-"+uuid.NewString(), status); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		w.db.MustExec(`INSERT INTO agent_labels (agent_id, label) VALUES ($1, $2)`, id, l)
	}
	return id
}

func (w webhookWorld) SetDelivery(t *testing.T, id uuid.UUID, status string, attempts int, nextRetry *time.Time) {
	t.Helper()
	w.db.MustExec(`UPDATE webhook_deliveries SET status = $2::text, attempts = $3, next_retry_at = $4,
		acquired_by = NULL, acquired_until = NULL,
		completed_at = CASE WHEN $2::text IN ('success', 'dead') THEN now() END WHERE id = $1`, id, status, attempts, nextRetry)
}

func pgWebhookRepos(t *testing.T) webhookstest.Repos {
	db := pgtest.New(t)
	s := postgres.NewStore(db)
	subs, deliveries := postgres.NewSubscriptions(s), postgres.NewDeliveries(s)
	return webhookstest.Repos{Subscriptions: subs, Source: subs, Deliveries: deliveries, Agents: deliveries,
		Insert: deliveries.InsertDeliveries, World: webhookWorld{db}}
}

func TestSubscriptionsContract(t *testing.T) { webhookstest.RunSubscriptionContract(t, pgWebhookRepos) }

func TestDeliveriesContract(t *testing.T) { webhookstest.RunDeliveryContract(t, pgWebhookRepos) }

// dispatchWorld adds outbox events to webhookWorld.
type dispatchWorld struct {
	webhookWorld
	s *postgres.Store
}

func (w dispatchWorld) Publish(t *testing.T, ev event.Event) {
	t.Helper()
	if err := w.s.Emit(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func TestDispatchContract(t *testing.T) {
	webhookstest.RunDispatchContract(t, func(t *testing.T) webhookstest.DispatchRepos {
		db := pgtest.New(t)
		s := postgres.NewStore(db)
		subs, deliveries := postgres.NewSubscriptions(s), postgres.NewDeliveries(s)
		return webhookstest.DispatchRepos{DispatchRepos: webhooks.DispatchRepos{Tx: s, Journal: s, Subscriptions: subs,
			Outbox: postgres.NewOutbox(s), Queue: deliveries, Attempts: deliveries, Cleanup: deliveries},
			Subscriptions: subs, Agents: deliveries, World: dispatchWorld{webhookWorld{db}, s}}
	})
}
