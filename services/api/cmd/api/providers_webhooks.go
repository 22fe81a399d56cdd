package main

import (
	"context"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"log/slog"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/webhookhttp"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// provideStore is the PostgreSQL store. After every commit that wrote
// outbox events it signals webhook-dispatch's relay through Redis
// (fire-and-forget, coalesced, off the request path); the relay's periodic
// sweep covers signals lost while Redis is down. api itself never touches
// the webhook queue: fan-out and queueing happen in one place, the relay.
func provideStore(ctx context.Context, db *sqlx.DB, rdb goredis.UniversalClient, cfg config.Settings, log *slog.Logger) *postgres.Store {
	s := postgres.NewStore(db)
	s.SetRegistrationBoundary(registrations.Boundary{Required: cfg.Broker.RequireGeneratorRegistration})
	sig := redisadapter.NewOutboxSignal(rdb, cfg.Database.Schema, log)
	go sig.Run(ctx)
	s.OnOutboxCommit(func(context.Context) { sig.Notify() })
	return s
}

// provideWebhookCipher seals webhook secrets with
// broker.webhook_encryption_key, or with the tenant's ephemeral key shared
// through Redis (and a loud warning) when none is configured.
func provideWebhookCipher(ctx context.Context, cfg config.Settings, rdb goredis.UniversalClient, log *slog.Logger) (*aesgcm.Cipher, error) {
	return redisadapter.WebhookCipher(ctx, cfg.Broker.WebhookEncryptionKey, rdb, cfg.Database.Schema, log)
}

// provideWebhookSender sends POST /webhooks/{id}/test (and validate) with
// the SSRF guard unless broker.webhook_allow_private is set.
func provideWebhookSender(cfg config.Settings, log *slog.Logger) *webhookhttp.Sender {
	if cfg.Broker.WebhookAllowPrivate {
		log.Warn("broker.webhook_allow_private is set: webhook tests may reach loopback, link-local and metadata addresses")
	}
	return webhookhttp.New(webhookhttp.Options{AllowPrivate: cfg.Broker.WebhookAllowPrivate})
}
