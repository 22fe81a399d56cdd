package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/auth/internal/httpapi"
)

// server is what `auth serve` runs.
type server struct {
	http            *http.Server
	admin           *paks.Admin
	shutdownTimeout time.Duration
}

// cli is what the create/rotate subcommands use: the same use cases as the
// api, so audit entries and outbox events are written the same way.
type cli struct {
	agents     *agents.Service
	generators *generators.Service
	admin      *paks.Admin
}

// migrated marks that the schema is ready (migrate_on_start honoured).
type migrated struct{}

func provideMigrations(ctx context.Context, db *sqlx.DB, cfg config.Settings, log *slog.Logger) (migrated, error) {
	if !cfg.Database.MigrateOnStart {
		return migrated{}, nil
	}
	// golang-migrate holds an advisory lock: replicas migrate once.
	if err := postgres.NewMigrator(db, cfg.Database.Schema).Up(ctx); err != nil {
		return migrated{}, fmt.Errorf("migrate on start: %w", err)
	}
	log.InfoContext(ctx, "migrations applied")
	return migrated{}, nil
}

// provideIssuer issues PAKs and records each one's public part, which the
// verifier checks.
func provideIssuer(cfg config.Settings, pakRepo *postgres.PAKs) (*paks.RecordingIssuer, error) {
	iss, err := pak.NewIssuer(pak.Config{
		Prefix:           cfg.PAK.Prefix,
		ShortTokenPrefix: cfg.PAK.ShortTokenPrefix,
		ShortTokenLength: cfg.PAK.ShortTokenLength,
		LongTokenLength:  cfg.PAK.LongTokenLength,
	})
	if err != nil {
		return nil, lifecycle.WithCode(lifecycle.ExitConfig, err)
	}
	return paks.NewRecordingIssuer(iss, pakRepo), nil
}

func provideFailureCounter(rdb goredis.UniversalClient) *redisadapter.FailureCounter {
	return redisadapter.NewFailureCounter(rdb, "")
}

func provideVerifier(store *postgres.Store, pakRepo *postgres.PAKs, counter *redisadapter.FailureCounter, cfg config.Settings, log *slog.Logger) *paks.Verifier {
	return paks.NewVerifier(pakRepo, store, counter, paks.ThrottleConfig{
		FailureLimit:  cfg.Auth.FailureLimit,
		FailureWindow: time.Duration(cfg.Auth.FailureWindowSeconds) * time.Second,
	}, log)
}

func provideInvalidation(rdb goredis.UniversalClient) *redisadapter.AuthInvalidation {
	return redisadapter.NewAuthInvalidation(rdb, nil)
}

func provideAdmin(store *postgres.Store, pakRepo *postgres.PAKs, issuer *paks.RecordingIssuer, inval *redisadapter.AuthInvalidation,
	cfg config.Settings, out io.Writer, log *slog.Logger) (*paks.Admin, error) {
	acfg := paks.AdminConfig{PinnedHash: cfg.Broker.PakHash, PAKFile: cfg.Broker.AdminPakFile}
	if cfg.Broker.AdminPakSecret != "" {
		sec, err := kube.NewPAKSecret(nil, cfg.Broker.AdminPakSecretNamespace, cfg.Broker.AdminPakSecret)
		if err != nil {
			return nil, lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("broker.admin_pak_secret: %w", err))
		}
		acfg.Secret = sec
	}
	a, err := paks.NewAdmin(store, store, pakRepo, issuer, inval, acfg, out, log)
	return a, lifecycle.WithCode(lifecycle.ExitConfig, err)
}

// provideChanges publishes target-state change notifications (the agent and
// generator use cases announce their changes); nothing here listens.
func provideChanges(rdb goredis.UniversalClient, cfg config.Settings, log *slog.Logger) *redisadapter.Changes {
	return redisadapter.NewChanges(rdb, cfg.Database.Schema, nil, log)
}

func provideRegistry() *prometheus.Registry { return httpserver.NewRegistry() }

func provideEngine(cfg config.Settings, log *slog.Logger, reg *prometheus.Registry, db *sqlx.DB,
	rdb goredis.UniversalClient, verifier *paks.Verifier, issuer *paks.RecordingIssuer) (*gin.Engine, error) {
	verifications, err := httpapi.NewVerificationMetric(reg)
	if err != nil {
		return nil, err
	}
	e := httpserver.NewOps("brokkr-auth", cfg, log, reg,
		httpserver.Check{Name: "database", Probe: func(ctx context.Context) error { return postgres.Ping(ctx, db) }},
		httpserver.Check{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }})
	httpapi.Register(e, httpapi.Handlers{Verifier: verifier, Issuer: issuer, Verifications: verifications})
	return e, nil
}

func provideServer(cfg config.Settings, e *gin.Engine, admin *paks.Admin, _ migrated) *server {
	return &server{
		http:            httpserver.NewServer(cfg.Auth.Addr, e),
		admin:           admin,
		shutdownTimeout: time.Duration(cfg.HTTP.ShutdownTimeoutSeconds) * time.Second,
	}
}

func provideCLI(a *agents.Service, g *generators.Service, admin *paks.Admin) *cli {
	return &cli{agents: a, generators: g, admin: admin}
}
