package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	asynqlib "github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/webhookhttp"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/daemon"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/internal/dispatcher"
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/internal/queue"
)

// app is what main runs: the ops listener and one dispatcher replica.
type app struct {
	server  *http.Server
	service *dispatcher.Service
	queue   string
}

// provideRedis is the client of the outbox signal (and of the ephemeral
// key); it must answer at start-up, like the database.
func provideRedis(ctx context.Context, cfg config.Settings) (goredis.UniversalClient, func(), error) {
	c, cleanup, err := redisadapter.NewConfiguredClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		cleanup()
		return nil, nil, lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("redis: %w", err))
	}
	return c, cleanup, nil
}

func provideConn(cfg config.Settings) (asynqlib.RedisConnOpt, error) {
	opt, err := asynqadapter.ConnOpt(cfg.Redis)
	if err != nil {
		return nil, lifecycle.WithCode(lifecycle.ExitConfig, err)
	}
	return opt, nil
}

// provideCipher opens webhook secrets with broker.webhook_encryption_key,
// or with the ephemeral key api shares through Redis when none is set.
func provideCipher(ctx context.Context, cfg config.Settings, rdb goredis.UniversalClient, log *slog.Logger) (*aesgcm.Cipher, error) {
	return redisadapter.WebhookCipher(ctx, cfg.Broker.WebhookEncryptionKey, rdb, cfg.Database.Schema, log)
}

// provideSender posts deliveries behind the SSRF guard unless
// broker.webhook_allow_private is set.
func provideSender(cfg config.Settings, log *slog.Logger) (*webhookhttp.Sender, func()) {
	if cfg.Broker.WebhookAllowPrivate {
		log.Warn("broker.webhook_allow_private is set: webhooks may reach loopback, link-local and metadata addresses")
	}
	s := webhookhttp.New(webhookhttp.Options{AllowPrivate: cfg.Broker.WebhookAllowPrivate,
		MaxIdleConnsPerHost: cfg.WebhookDispatch.PerHostConcurrency})
	return s, s.Close
}

func provideRegistry() *prometheus.Registry { return httpserver.NewRegistry() }

// settingsFrom reads the hot settings on every use.
func settingsFrom(live *config.Store) func() webhooks.DispatchSettings {
	return func() webhooks.DispatchSettings {
		b := live.Current().Broker
		return webhooks.DispatchSettings{BatchSize: b.WebhookDeliveryBatchSize,
			Interval: time.Duration(b.WebhookDeliveryIntervalSeconds) * time.Second, RetentionDays: b.WebhookCleanupRetentionDays}
	}
}

// provideService builds the replica and checks the queue's Redis, so an
// unreachable Redis at start-up exits 69 like an unreachable database.
func provideService(cfg config.Settings, live *config.Store, store *postgres.Store, rdb goredis.UniversalClient,
	conn asynqlib.RedisConnOpt, cipher *aesgcm.Cipher, sender *webhookhttp.Sender, reg *prometheus.Registry,
	log *slog.Logger) (*dispatcher.Service, error) {
	return daemon.RedisReachable(dispatcher.New(dispatcher.Options{Store: store, Redis: rdb, QueueConn: conn,
		Queue: queue.Name(cfg.Database.URL, cfg.Database.Schema), Tenant: cfg.Database.Schema, Cipher: cipher,
		Sender: sender, Settings: settingsFrom(live), Concurrency: cfg.WebhookDispatch.Concurrency,
		PerHost: cfg.WebhookDispatch.PerHostConcurrency, ShutdownTimeout: time.Duration(cfg.HTTP.ShutdownTimeoutSeconds) * time.Second,
		Registry: reg, Log: log}))
}

func provideEngine(cfg config.Settings, log *slog.Logger, reg *prometheus.Registry, db *sqlx.DB, s *dispatcher.Service) *gin.Engine {
	return httpserver.NewOps("brokkr-webhook-dispatch", cfg, log, reg,
		httpserver.Check{Name: "database", Probe: func(ctx context.Context) error { return postgres.Ping(ctx, db) }},
		httpserver.Check{Name: "redis", Probe: func(context.Context) error { return s.Ping() }})
}

func provideApp(cfg config.Settings, e *gin.Engine, s *dispatcher.Service) *app {
	return &app{server: httpserver.NewServer(cfg.WebhookDispatch.Addr, e), service: s,
		queue: queue.Name(cfg.Database.URL, cfg.Database.Schema)}
}
