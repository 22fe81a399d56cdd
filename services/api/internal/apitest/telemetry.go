package apitest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
)

// telemetryServices wires stack telemetry as the api binary does: the use
// case over PostgreSQL, its live hub, and the Redis feed of the tenant
// (subscribed before it returns).
func telemetryServices(ctx context.Context, t testing.TB, store *postgres.Store, stackSvc *stacks.Service,
	rdb goredis.UniversalClient, tenant string, o telemetry.Options, log *slog.Logger) (*telemetry.Service, *telemetry.Hub, *redisadapter.TelemetryFeed) {
	t.Helper()
	feed := redisadapter.NewTelemetryFeed(rdb, tenant, log)
	svc := telemetry.NewService(postgres.NewTelemetry(store), stackSvc, feed, o)
	hub := telemetry.NewHub(svc)
	go feed.Run(ctx, hub)
	deadline := time.Now().Add(5 * time.Second)
	for !feed.Subscribed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !feed.Subscribed() {
		t.Fatal("telemetry feed did not subscribe")
	}
	return svc, hub, feed
}
