package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/authclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/templatingclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/api/internal/apidocs"
	"github.com/brokkr-go/brokkr/services/api/internal/httpapi"
)

// app is what main runs.
type app struct {
	server *http.Server
}

func provideDB(ctx context.Context, cfg config.Settings, log *slog.Logger) (*sqlx.DB, func(), error) {
	db, cleanup, err := postgres.OpenConfigured(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Database.MigrateOnStart {
		// golang-migrate holds an advisory lock, so replicas starting
		// together migrate once.
		if err := postgres.NewMigrator(db, cfg.Database.Schema).Up(ctx); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("migrate on start: %w", err)
		}
		log.Info("migrations applied")
	}
	return db, cleanup, nil
}

// provideChanges starts the change-notification hub; it stops with ctx.
func provideChanges(ctx context.Context, rdb *goredis.Client, cfg config.Settings, log *slog.Logger) *redisadapter.Changes {
	c := redisadapter.NewChanges(rdb, cfg.Database.Schema, log)
	go c.Run(ctx)
	return c
}

func provideAuthClient(cfg config.Settings) *authclient.Client {
	return authclient.New(cfg.Auth.URL)
}

// provideAuthCache wraps the auth service in the TTL cache that every
// replica drops entries from on rotation/deletion.
func provideAuthCache(client *authclient.Client, cfg config.Settings) *authn.Cache {
	return authn.NewCache(client, time.Duration(cfg.Broker.AuthCacheTTLSeconds)*time.Second, 10000)
}

// provideAuthInvalidation publishes cache invalidations through Redis and
// subscribes this replica's cache to them until ctx ends.
func provideAuthInvalidation(ctx context.Context, rdb *goredis.Client, cache *authn.Cache, log *slog.Logger) *redisadapter.AuthInvalidation {
	inval := redisadapter.NewAuthInvalidation(rdb, cache)
	inval.Subscribe(ctx, cache, log)
	return inval
}

// provideTemplatingClient reaches the templating service; it waits a little
// longer than the service's render limit, then answers 503.
func provideTemplatingClient(cfg config.Settings) *templatingclient.Client {
	return templatingclient.New(cfg.Templating.URL,
		time.Duration(cfg.Templating.RenderTimeoutMillis)*time.Millisecond+3*time.Second)
}

func provideRegistry(store *postgres.Store, log *slog.Logger) *prometheus.Registry {
	reg := httpserver.NewRegistry()
	reg.MustRegister(postgres.NewGauges(store, log))
	return reg
}

func provideEngine(cfg config.Settings, store *config.Store, log *slog.Logger, reg *prometheus.Registry,
	db *sqlx.DB, rdb *goredis.Client, services httpapi.Services) *gin.Engine {
	e := httpserver.New(httpserver.Options{Service: "brokkr-api", Logger: log, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, TrustedProxies: cfg.HTTP.TrustedProxies,
		Registry: reg, CORS: store.CORS})
	httpserver.Mount(e, httpserver.Ops{
		Ready: []httpserver.Check{
			{Name: "database", Probe: func(ctx context.Context) error { return postgres.Ping(ctx, db) }},
			{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		},
		Metrics: reg,
		Logger:  log,
	})
	apidocs.Mount(e)
	httpapi.Register(e, services, httpserver.CORS(store.CORS))
	return e
}

func provideServer(cfg config.Settings, e *gin.Engine) *app {
	return &app{server: httpserver.NewServer(cfg.HTTP.Addr, e)}
}
