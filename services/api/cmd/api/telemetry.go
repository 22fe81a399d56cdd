package main

import (
	"context"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// provideTelemetryFeed is the Redis feed that carries live-tail frames
// between the api replicas (docs/telemetry.md#live).
func provideTelemetryFeed(rdb goredis.UniversalClient, cfg config.Settings, log *slog.Logger) *redisadapter.TelemetryFeed {
	return redisadapter.NewTelemetryFeed(rdb, cfg.Database.Schema, log)
}

// provideTelemetry is the stack telemetry use case; the window is read
// from the live settings on every request.
func provideTelemetry(store *postgres.Store, stackSvc *stacks.Service, feed *redisadapter.TelemetryFeed,
	live *config.Store, cfg config.Settings) *telemetry.Service {
	return telemetry.NewService(postgres.NewTelemetry(store), stackSvc, feed, telemetry.Options{
		Retention: func() time.Duration {
			return time.Duration(live.Current().Broker.TelemetryRetentionSeconds) * time.Second
		},
		// A quarter of the pool at most stores telemetry at once.
		MaxConcurrentIngests: max(1, cfg.Database.MaxOpenConns/4),
	})
}

// provideTelemetryHub starts this replica's live tail, fed by every
// replica's ingests through the feed, until ctx ends.
func provideTelemetryHub(ctx context.Context, svc *telemetry.Service, feed *redisadapter.TelemetryFeed) *telemetry.Hub {
	hub := telemetry.NewHub(svc)
	go feed.Run(ctx, hub)
	return hub
}
