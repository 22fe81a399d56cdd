package apitest

import (
	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/webhookhttp"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
)

type webhookOptions struct {
	guard bool
	key   []byte
}

// WithWebhookSSRFGuard turns the webhook sender's SSRF guard on. By default
// the harness allows private addresses, as `make up` does, because test
// receivers listen on 127.0.0.1.
func WithWebhookSSRFGuard() Option { return func(o *options) { o.webhooks.guard = true } }

// WithWebhookKey sets the webhook encryption key (default: a random one).
func WithWebhookKey(key []byte) Option { return func(o *options) { o.webhooks.key = key } }

func webhookService(store *postgres.Store, notes webhooks.LiveNotes, o *options) *webhooks.Service {
	key := o.webhooks.key
	if key == nil {
		key = aesgcm.RandomKey()
	}
	c, err := aesgcm.New(key)
	if err != nil {
		panic(err)
	}
	o.webhookCipher = c
	deliveries := postgres.NewDeliveries(store)
	repos := webhooks.Repos{Tx: store, Journal: store, Subscriptions: postgres.NewSubscriptions(store),
		Deliveries: deliveries, AgentDeliveries: deliveries}
	return webhooks.NewService(repos, c, webhookhttp.New(webhookhttp.Options{AllowPrivate: !o.webhooks.guard}), notes)
}
