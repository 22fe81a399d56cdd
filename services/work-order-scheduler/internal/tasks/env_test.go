package tasks

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	asynqlib "github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// fakeClock is the schedules' clock, moved by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// env is one broker deployment under test: a fresh database, a queue of its
// own on the real Redis, the api's use cases (arming retry timers through
// the real asynq enqueuer, as the api does) and scheduler replicas started
// on demand.
type env struct {
	t        *testing.T
	ctx      context.Context
	store    *postgres.Store
	conn     asynqlib.RedisConnOpt
	queue    string
	api      *workorders.Service
	apiSched *workorders.Schedules
	clock    *fakeClock
	settings atomic.Pointer[config.Settings]
	logs     *logBuffer
	log      *slog.Logger
	// rollouts, when set, makes replicas advance rollouts.
	rollouts *rollouts.Service
}

type envOption func(*env)

// withoutTimers makes the api drop retry timers (Redis lost them).
func withoutTimers() envOption {
	return func(e *env) { e.api = workorders.NewService(postgres.WorkOrderRepos(e.store), droppedTimer{}) }
}

type droppedTimer struct{}

func (droppedTimer) ScheduleRetry(context.Context, uuid.UUID, int, time.Time) error { return nil }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: postgres.NewStore(pgtest.New(t)),
		queue: "brokkr_test_" + uuid.NewString(), logs: &logBuffer{}}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn, err := asynqadapter.ConnOpt(config.Redis{URL: redistest.URL()})
	if err != nil {
		t.Fatal(err)
	}
	e.conn = conn
	rdb := redistest.New(t)
	t.Cleanup(func() {
		// Drop this test's queue from Redis.
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, "asynq:{"+e.queue+"}*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
		_ = rdb.SRem(ctx, "asynq:queues", e.queue).Err()
	})
	cfg := config.Defaults()
	cfg.Scheduler.MaintenanceIntervalSeconds = 1
	cfg.Scheduler.ScheduleIntervalSeconds = 1
	e.settings.Store(&cfg)
	// Start the fake clock at the wall clock, so rows the database stamps
	// and windows the clock computes agree.
	e.clock = &fakeClock{t: time.Now()}
	enq := asynqadapter.NewEnqueuer(conn, e.queue, e.log)
	t.Cleanup(func() { _ = enq.Close() })
	e.api = workorders.NewService(postgres.WorkOrderRepos(e.store), enq)
	for _, o := range opts {
		o(e)
	}
	e.apiSched = workorders.NewSchedules(postgres.ScheduleRepos(e.store), e.api, e.clock, e.log)
	return e
}

func (e *env) setSettings(f func(*config.Settings)) {
	cfg := *e.settings.Load()
	f(&cfg)
	e.settings.Store(&cfg)
}

// replica starts one scheduler replica; stop ends it (also at cleanup).
type replica struct {
	s       *Scheduler
	metrics *Metrics
	once    sync.Once
}

func (r *replica) stop() { r.once.Do(r.s.Shutdown) }

func (e *env) startReplica() *replica {
	e.t.Helper()
	enq := asynqadapter.NewEnqueuer(e.conn, e.queue, e.log)
	e.t.Cleanup(func() { _ = enq.Close() })
	orders := workorders.NewService(postgres.WorkOrderRepos(e.store), enq)
	schedules := workorders.NewSchedules(postgres.ScheduleRepos(e.store), orders, e.clock, e.log)
	settings := func() config.Settings { return *e.settings.Load() }
	house := housekeeping.NewService(postgres.HousekeepingRepos(e.store), Retention(settings))
	m := NewMetrics(nil)
	s, err := New(orders, schedules, house, Options{Conn: e.conn, Queue: e.queue, Concurrency: 4,
		PollInterval: 100 * time.Millisecond, SyncInterval: 500 * time.Millisecond, Settings: settings, Log: e.log, Metrics: m,
		Rollouts: e.rollouts})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := s.Start(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	r := &replica{s: s, metrics: m}
	e.t.Cleanup(r.stop)
	return r
}

// ticks is how many schedule evaluations the replicas have run.
func ticks(rs ...*replica) float64 {
	n := 0.0
	for _, r := range rs {
		n += testutil.ToFloat64(r.metrics.tasks.WithLabelValues(asynqadapter.TypeScheduleTick, "ok"))
	}
	return n
}

// waitTicks waits until the replicas have evaluated the schedules n more
// times, so "nothing more happened" is checked after real evaluations.
func (e *env) waitTicks(n int, rs ...*replica) {
	e.t.Helper()
	start := ticks(rs...)
	e.eventually(10*time.Second, "schedule ticks", func() bool { return ticks(rs...) >= start+float64(n) })
}

func (e *env) eventually(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s\nlogs:\n%s", timeout, what, tail(e.logs.String(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (e *env) agent(name string) uuid.UUID {
	e.t.Helper()
	a := agent.Agent{Name: name, ClusterName: "c", Status: agent.StatusActive}
	if err := postgres.NewAgents(e.store).CreateAgent(e.ctx, &a); err != nil {
		e.t.Fatal(err)
	}
	return a.ID
}

func (e *env) order(agentID uuid.UUID, maxRetries, backoff, claimTimeout int) workorder.WorkOrder {
	e.t.Helper()
	w, err := e.api.Create(e.ctx, identity.Admin, workorders.CreateInput{
		Template: workorder.Template{WorkType: "custom", YAMLContent: "kind: Job\n", MaxRetries: maxRetries,
			BackoffSeconds: backoff, ClaimTimeoutSeconds: claimTimeout},
		Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{agentID}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) claim(id, agentID uuid.UUID) {
	e.t.Helper()
	if _, err := e.api.Claim(e.ctx, identity.Agent(agentID), id, agentID); err != nil {
		e.t.Fatalf("claim: %v", err)
	}
}

func (e *env) fail(id, agentID uuid.UUID) workorders.Completion {
	e.t.Helper()
	msg := "connection refused"
	c, err := e.api.Complete(e.ctx, identity.Agent(agentID), id, workorders.CompleteInput{Message: &msg, Retryable: true})
	if err != nil {
		e.t.Fatalf("complete: %v", err)
	}
	return c
}

func (e *env) get(id uuid.UUID) workorder.WorkOrder {
	e.t.Helper()
	w, err := e.api.Get(e.ctx, identity.Admin, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.DB().GetContext(e.ctx, &n, query, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func counterValue(c interface{ Desc() *prometheus.Desc }) float64 {
	return testutil.ToFloat64(c.(prometheus.Collector))
}
