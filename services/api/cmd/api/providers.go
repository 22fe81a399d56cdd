package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
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
	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/api/internal/apidocs"
	"github.com/brokkr-go/brokkr/services/api/internal/console"
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

// provideIndex is this replica's in-memory target-state index. Its loads
// take at most half the pool, so the other routes keep connections while a
// change re-reads many agents.
func provideIndex(ctx context.Context, store targetstate.SnapshotReader, cfg config.Settings, log *slog.Logger) *targetstate.Index {
	idx := targetstate.NewIndex(store, targetstate.IndexOptions{MaxLoads: max(1, cfg.Database.MaxOpenConns/2), Logger: log})
	go idx.Janitor(ctx)
	return idx
}

// provideChanges starts the change-notification hub feeding the index; it
// stops with ctx.
func provideChanges(ctx context.Context, rdb goredis.UniversalClient, index *targetstate.Index, cfg config.Settings, log *slog.Logger) *redisadapter.Changes {
	c := redisadapter.NewChanges(rdb, cfg.Database.Schema, index, log)
	go c.Run(ctx)
	return c
}

// providePresence shares this replica's long-poll holders (the fleet's
// connected agents) through Redis until ctx ends.
func providePresence(ctx context.Context, rdb goredis.UniversalClient, index *targetstate.Index, cfg config.Settings, log *slog.Logger) *redisadapter.Presence {
	p := redisadapter.NewPresence(rdb, cfg.Database.Schema, index.Holding, log)
	go p.Run(ctx)
	return p
}

// provideFleetLive starts the fleet's live push (GET /fleet/live), woken by
// every change note of any replica and a 5-second sweep; it stops with ctx.
func provideFleetLive(ctx context.Context, svc *fleet.Service, changes *redisadapter.Changes, log *slog.Logger) *fleet.Live {
	live := fleet.NewLive(svc, 5*time.Second, log)
	notes, stop := changes.Watch()
	go func() {
		live.Run(ctx, notes)
		stop()
	}()
	return live
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
// subscribes this replica's cache to them until ctx ends. The console's
// sessions follow the same invalidations: a rotated, deleted or
// deactivated PAK's sessions end with its cache entries.
func provideAuthInvalidation(ctx context.Context, rdb goredis.UniversalClient, cache *authn.Cache, sessions *console.RedisSessions,
	hub *console.Hub, log *slog.Logger) *redisadapter.AuthInvalidation {
	both := authCaches{cache, console.Revoker{Sessions: sessions, Hub: hub, Log: log}}
	inval := redisadapter.NewAuthInvalidation(rdb, both)
	inval.Subscribe(ctx, both, log)
	return inval
}

// authCaches fans invalidations out to the auth cache and the console.
type authCaches []redisadapter.AuthCache

func (a authCaches) Invalidate(hashes ...string) {
	for _, c := range a {
		c.Invalidate(hashes...)
	}
}

func (a authCaches) InvalidateAll() {
	for _, c := range a {
		c.InvalidateAll()
	}
}

// provideTemplatingClient reaches the templating service; it waits a little
// longer than the service's render limit, then answers 503.
func provideTemplatingClient(cfg config.Settings) *templatingclient.Client {
	return templatingclient.New(cfg.Templating.URL,
		time.Duration(cfg.Templating.RenderTimeoutMillis)*time.Millisecond+3*time.Second)
}

func provideRegistry(store *postgres.Store, index *targetstate.Index, log *slog.Logger) *prometheus.Registry {
	reg := httpserver.NewRegistry()
	reg.MustRegister(postgres.NewGauges(store, log))
	registerIndexMetrics(reg, index)
	return reg
}

// registerIndexMetrics exports the target-state index's counters: hits are
// answers served without PostgreSQL, loads the agent reads it did.
func registerIndexMetrics(reg prometheus.Registerer, idx *targetstate.Index) {
	st := idx.Stats()
	counters := []struct {
		name, help string
		v          func() uint64
	}{
		{"hits", "Target-state answers served from memory", st.Hits.Load},
		{"loads", "Agents read from PostgreSQL", st.Loads.Load},
		{"patches", "Cached answers updated in place by a change", st.Patches.Load},
		{"drops", "Cached answers dropped by a change", st.Drops.Load},
		{"wakes", "Long-polls woken", st.Wakes.Load},
		{"resyncs", "Resynchronisations after lost notifications", st.Resyncs.Load},
		{"shed", "Loads shed because PostgreSQL reads queued too long", st.Shed.Load},
	}
	for _, c := range counters {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "brokkr_target_state_index_" + c.name + "_total", Help: c.help,
		}, func() float64 { return float64(c.v()) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "brokkr_target_state_index_entries", Help: "Agents whose answer is cached",
	}, func() float64 { return float64(idx.Len()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "brokkr_target_state_index_waiting", Help: "Held target-state long-polls",
	}, func() float64 { return float64(idx.Waiting()) }))
	wake := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "brokkr_target_state_index_wake_seconds",
		Help:    "From a change notification reaching this replica to each long-poll it woke having its new answer",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .075, .1, .15, .2, .25, .3, .4, .5, .75, 1, 1.5, 2, 3, 5, 10},
	})
	reg.MustRegister(wake)
	idx.SetWakeObserver(func(d time.Duration) { wake.Observe(d.Seconds()) })
}

func provideEngine(cfg config.Settings, store *config.Store, log *slog.Logger, reg *prometheus.Registry,
	db *sqlx.DB, rdb goredis.UniversalClient, services httpapi.Services, ui *console.Console) *gin.Engine {
	e := httpserver.New(httpserver.Options{Service: "brokkr-api", Logger: log, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, TrustedProxies: cfg.HTTP.TrustedProxies,
		Registry: reg, CORS: store.CORS, NoTracing: !cfg.Telemetry.ForBroker().Enabled})
	httpserver.Mount(e, httpserver.Ops{
		Ready: []httpserver.Check{
			{Name: "database", Probe: func(ctx context.Context) error { return postgres.Ping(ctx, db) }},
			{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		},
		Metrics: reg,
		Logger:  log,
	})
	apidocs.Mount(e)
	ui.Mount(e)
	httpapi.Register(e, services, httpserver.CORS(store.CORS), httpserver.Shed(httpserver.ShedOptions{
		MaxInFlight: cfg.HTTP.MaxInFlight, QueueWait: time.Duration(cfg.HTTP.QueueWaitMillis) * time.Millisecond,
		Registry: reg,
		// Target state is served from memory; its PostgreSQL reads are
		// bounded by the index itself (half the pool, then 503).
		Exempt: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/target-state")
		}}))
	return e
}

func provideServer(cfg config.Settings, e *gin.Engine) *app {
	return &app{server: httpserver.NewServer(cfg.HTTP.Addr, e)}
}

// Console sessions: idle for at most an hour, at most 12 hours in all.
const (
	consoleSessionIdle   = time.Hour
	consoleSessionMaxAge = 12 * time.Hour
)

func provideConsoleSessions(rdb goredis.UniversalClient, cfg config.Settings) *console.RedisSessions {
	return console.NewRedisSessions(rdb, cfg.Database.Schema, consoleSessionIdle, consoleSessionMaxAge)
}

// provideConsoleHub feeds the console's live streams from the change hub
// (target-state wake-ups) and the outbox signal (every commit that wrote a
// domain event); both stop with ctx.
func provideConsoleHub(ctx context.Context, changes *redisadapter.Changes, rdb goredis.UniversalClient, cfg config.Settings,
	log *slog.Logger) *console.Hub {
	watch, _ := changes.Watch()
	outbox := redisadapter.NewOutboxSignal(rdb, cfg.Database.Schema, log).Wake(ctx)
	return console.NewHub(ctx, watch, outbox)
}

func provideConsole(s httpapi.Services, ov *overview.Service, sessions *console.RedisSessions, hub *console.Hub,
	log *slog.Logger) (*console.Console, error) {
	return console.New(console.Deps{
		Auth: s.Auth, Sessions: sessions, Live: hub, Agents: s.Agents, AgentLabels: s.AgentLabels, Overview: ov,
		Stacks: s.Stacks, StackLabels: s.StackLabels,
		Templates: s.Templates, WorkOrders: s.WorkOrders, Webhooks: s.Webhooks, AuditLog: s.AuditLog,
		Diagnostics: s.Diagnostics, Log: log,
	})
}

// SetBypass keeps the auth cache's pause while invalidations cannot be
// received (the subscriber looks for this method).
func (a authCaches) SetBypass(on bool) {
	for _, c := range a {
		if b, ok := c.(interface{ SetBypass(bool) }); ok {
			b.SetBypass(on)
		}
	}
}
