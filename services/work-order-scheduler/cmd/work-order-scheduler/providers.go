package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	asynqlib "github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/daemon"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/work-order-scheduler/internal/tasks"
)

// app is what main runs: the ops listener and one scheduler replica.
type app struct {
	server    *http.Server
	scheduler *tasks.Scheduler
}

// queueName is this deployment's asynq queue (shared with the api).
type queueName string

func provideConn(cfg config.Settings) (asynqlib.RedisConnOpt, error) {
	opt, err := asynqadapter.ConnOpt(cfg.Redis)
	if err != nil {
		return nil, lifecycle.WithCode(lifecycle.ExitConfig, err)
	}
	return opt, nil
}

func provideQueue(cfg config.Settings) queueName {
	return queueName(asynqadapter.QueueName(cfg.Database.URL, cfg.Database.Schema))
}

// provideEnqueuer arms the retry timers of claims this replica expires.
func provideEnqueuer(conn asynqlib.RedisConnOpt, q queueName, log *slog.Logger) (*asynqadapter.Enqueuer, func()) {
	e := asynqadapter.NewEnqueuer(conn, string(q), log)
	return e, func() { _ = e.Close() }
}

// provideStore is the PostgreSQL store. Transitions the scheduler commits
// (fired schedules, expired claims, released retries) write outbox events;
// after each such commit it signals webhook-dispatch's relay through Redis,
// as api does, so those webhooks do not wait for the relay's sweep.
func provideStore(ctx context.Context, db *sqlx.DB, cfg config.Settings, log *slog.Logger) (*postgres.Store, func(), error) {
	rdb, cleanup, err := redisadapter.NewConfiguredClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	s := postgres.NewStore(db)
	sig := redisadapter.NewOutboxSignal(rdb, cfg.Database.Schema, log)
	go sig.Run(ctx)
	s.OnOutboxCommit(func(context.Context) { sig.Notify() })
	return s, cleanup, nil
}

// provideChanges publishes target-state change notifications (a rollout
// released agents) to the api replicas; the scheduler keeps no index.
func provideChanges(cfg config.Settings, log *slog.Logger) (*redisadapter.Changes, func(), error) {
	rdb, cleanup, err := redisadapter.NewConfiguredClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	return redisadapter.NewChanges(rdb, cfg.Database.Schema, nil, log), cleanup, nil
}

// provideRollouts advances progressive rollouts; an on_failure rollback
// creates its object through the stack use cases.
func provideRollouts(store *postgres.Store, changes *redisadapter.Changes) *rollouts.Service {
	st := stacks.NewService(postgres.StackRepos(store), changes)
	return rollouts.NewService(postgres.RolloutRepos(store), st, changes)
}

func provideClock() workorders.Clock { return workorders.SystemClock{} }

func provideHousekeeping(store *postgres.Store, live *config.Store) *housekeeping.Service {
	return housekeeping.NewService(postgres.HousekeepingRepos(store), tasks.Retention(live.Current))
}

func provideRegistry() *prometheus.Registry { return httpserver.NewRegistry() }

func provideMetrics(reg *prometheus.Registry) *tasks.Metrics { return tasks.NewMetrics(reg) }

// provideScheduler builds the replica and checks Redis, so an unreachable
// Redis at start-up exits 69 like an unreachable database.
func provideScheduler(orders *workorders.Service, schedules *workorders.Schedules,
	house *housekeeping.Service, ro *rollouts.Service, conn asynqlib.RedisConnOpt, q queueName,
	cfg config.Settings, live *config.Store, metrics *tasks.Metrics, log *slog.Logger) (*tasks.Scheduler, error) {
	return daemon.RedisReachable(tasks.New(orders, schedules, house, tasks.Options{
		Conn: conn, Queue: string(q), Concurrency: cfg.Scheduler.Concurrency, Settings: live.Current,
		Log: log, Metrics: metrics, Rollouts: ro}))
}

func provideEngine(cfg config.Settings, log *slog.Logger, reg *prometheus.Registry, db *sqlx.DB, s *tasks.Scheduler) *gin.Engine {
	return httpserver.NewOps("brokkr-work-order-scheduler", cfg, log, reg,
		httpserver.Check{Name: "database", Probe: func(ctx context.Context) error { return postgres.Ping(ctx, db) }},
		httpserver.Check{Name: "redis", Probe: func(context.Context) error { return s.Ping() }})
}

func provideApp(cfg config.Settings, e *gin.Engine, s *tasks.Scheduler) *app {
	return &app{server: httpserver.NewServer(cfg.Scheduler.Addr, e), scheduler: s}
}

// shutdownTimeout is the drain budget of the ops listener.
func shutdownTimeout(cfg config.Settings) time.Duration {
	return time.Duration(cfg.HTTP.ShutdownTimeoutSeconds) * time.Second
}
