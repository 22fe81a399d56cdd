package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	asynqlib "github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

func TestOptionsPerTopology(t *testing.T) {
	for _, c := range []struct {
		name    string
		cfg     config.Redis
		want    string // client type
		addrs   []string
		wantErr bool
	}{
		{name: "one server", cfg: config.Redis{URL: "redis://:pw@10.0.0.1:6380/2"}, want: "*redis.Client", addrs: []string{"10.0.0.1:6380"}},
		{name: "sentinel", cfg: config.Redis{URL: "redis://:pw@ignored:6379/2", SentinelMaster: "mymaster",
			SentinelAddrs: []string{"s1:26379", "s2:26379"}, SentinelPassword: "sp"}, want: "*redis.Client", addrs: []string{"s1:26379", "s2:26379"}},
		{name: "cluster with one seed", cfg: config.Redis{URL: "redis://:pw@ignored:6379", ClusterAddrs: []string{"n1:6379"}},
			want: "*redis.ClusterClient", addrs: []string{"n1:6379"}},
		{name: "cluster refuses a database", cfg: config.Redis{URL: "redis://h:6379/3", ClusterAddrs: []string{"n1:6379"}}, wantErr: true},
		{name: "bad url", cfg: config.Redis{URL: "http://h"}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := redisadapter.Options(c.cfg)
			if c.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(o.Addrs) != fmt.Sprint(c.addrs) || o.Password != "pw" {
				t.Errorf("addrs %v password set %v", o.Addrs, o.Password == "pw")
			}
			if c.cfg.SentinelMaster != "" && (o.MasterName != "mymaster" || o.SentinelPassword != "sp" || o.DB != 2) {
				t.Errorf("sentinel options lost: %+v", o)
			}
			cl := goredis.NewUniversalClient(o)
			defer cl.Close()
			if got := fmt.Sprintf("%T", cl); got != c.want {
				t.Errorf("client %s, want %s", got, c.want)
			}
		})
	}
}

type sink struct {
	mu      sync.Mutex
	applied map[uuid.UUID]bool
}

func (s *sink) Apply(_ context.Context, c targetstate.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applied == nil {
		s.applied = map[uuid.UUID]bool{}
	}
	s.applied[c.ID] = true
}
func (s *sink) SetTrusted(context.Context, bool) {}
func (s *sink) Resync(context.Context)           {}
func (s *sink) has(id uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[id]
}

// paths are the broker's Redis-using paths, wired like two api replicas
// and a worker: change notifications between replicas (pub/sub + Lua), the
// auth failure counter (Lua + pipeline), and an asynq queue.
type paths struct {
	pub, sub  *redisadapter.Changes
	subSink   *sink
	counter   *redisadapter.FailureCounter
	conn      asynqlib.RedisConnOpt
	queue     string
	processed chan string
	ticks     chan time.Time
	log       *testsupport.SyncBuffer
}

func startPaths(t *testing.T, cfg config.Redis) *paths {
	t.Helper()
	buf := &testsupport.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tenant := "test_" + uuid.NewString()[:8]
	clients := make([]goredis.UniversalClient, 3)
	for i := range clients {
		c, err := redisadapter.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		clients[i] = c
	}
	p := &paths{subSink: &sink{}, processed: make(chan string, 16), ticks: make(chan time.Time, 64),
		queue: "brokkr:topology_" + tenant, log: buf}
	p.pub = redisadapter.NewChanges(clients[0], tenant, nil, log)
	p.sub = redisadapter.NewChanges(clients[1], tenant, p.subSink, log)
	go p.pub.Run(ctx)
	go p.sub.Run(ctx)
	p.counter = redisadapter.NewFailureCounter(clients[2], "brokkr_test_"+tenant+":")
	conn, err := asynqadapter.ConnOpt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.conn = conn
	w := asynqadapter.NewWorker(conn, p.queue, asynqadapter.WorkerOptions{Concurrency: 2, PollInterval: 200 * time.Millisecond,
		ShutdownTimeout: 2 * time.Second, Logger: log})
	w.Handle("test:topology", func(_ context.Context, payload []byte) error {
		p.processed <- string(payload)
		return nil
	})
	w.Handle("test:periodic", func(context.Context, []byte) error {
		select {
		case p.ticks <- time.Now():
		default:
		}
		return nil
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Shutdown)
	// The work-order-scheduler's periodic tasks, on a one-second cron.
	per, err := asynqadapter.NewPeriodic(conn, p.queue, func() []asynqadapter.PeriodicTask {
		return []asynqadapter.PeriodicTask{{Type: "test:periodic", Every: time.Second}}
	}, time.Second, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := per.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(per.Shutdown)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service logs:\n%s", buf.String())
		}
	})
	redistest.Eventually(t, 15*time.Second, "both change hubs subscribed", func(context.Context) error {
		if !p.pub.Subscribed() || !p.sub.Subscribed() {
			return fmt.Errorf("pub subscribed %v, sub subscribed %v", p.pub.Subscribed(), p.sub.Subscribed())
		}
		return nil
	})
	return p
}

// changeArrives publishes stack changes until the other replica applied
// one (a publish into a connection the failover just cut is lost, as it
// is in production, where the next change or the resync covers it), and
// reports how many publishes it took.
func (p *paths) changeArrives(t *testing.T, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for n := 1; ; n++ {
		id := uuid.New()
		p.pub.StackChanged(context.Background(), id)
		for range 20 {
			if p.subSink.has(id) {
				return n
			}
			time.Sleep(50 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no change reached the other replica within %v (%d publishes)", timeout, n)
		}
	}
}

func (p *paths) enqueue(t *testing.T, payload string, opts ...asynqlib.Option) {
	t.Helper()
	c := asynqlib.NewClient(p.conn)
	defer c.Close()
	redistest.Eventually(t, 15*time.Second, "enqueue "+payload, func(ctx context.Context) error {
		_, err := c.EnqueueContext(ctx, asynqlib.NewTask("test:topology", []byte(payload)),
			append([]asynqlib.Option{asynqlib.Queue(p.queue), asynqlib.TaskID(payload)}, opts...)...)
		if err == asynqlib.ErrTaskIDConflict {
			return nil
		}
		return err
	})
}

// awaitTick waits for a periodic task that ran after since.
func (p *paths) awaitTick(t *testing.T, since time.Time, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case at := <-p.ticks:
			if at.After(since) {
				return
			}
		case <-deadline:
			t.Fatalf("no periodic task ran within %v", timeout)
		}
	}
}

// noSlotErrors fails on cross-slot or wrong-node errors in the logs.
func (p *paths) noSlotErrors(t *testing.T) {
	t.Helper()
	for _, bad := range []string{"CROSSSLOT", "MOVED", "ASK ", "READONLY"} {
		if strings.Contains(p.log.String(), bad) {
			t.Errorf("logs mention %s:\n%s", bad, p.log.String())
		}
	}
}

func (p *paths) awaitTask(t *testing.T, payload string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case got := <-p.processed:
			if got == payload {
				return
			}
		case <-deadline:
			t.Fatalf("task %q not processed within %v", payload, timeout)
		}
	}
}

// countFailure adds one failure (retrying only a failed call) and checks
// the window's count: a count lost in a failover shows as a lower number.
func (p *paths) countFailure(t *testing.T, key string, want int64) {
	t.Helper()
	var got int64
	redistest.Eventually(t, 15*time.Second, "failure counter", func(ctx context.Context) error {
		n, _, err := p.counter.AddFailure(ctx, key, time.Minute)
		got = n
		return err
	})
	if got != want {
		t.Errorf("failure count %d, want %d", got, want)
	}
}

// The broker's Redis paths on a Sentinel-managed primary keep working when
// the primary is SIGKILLed and the sentinels promote the replica: changes
// still reach the other replica, a task queued before the crash runs
// after it, and new tasks are enqueued and run on the new primary.
func TestSentinelFailover(t *testing.T) {
	set := redistest.StartSentinel(t)
	cfg := config.Redis{URL: "redis://unused:6379/0", SentinelMaster: redistest.SentinelMaster, SentinelAddrs: set.SentinelAddrs()}
	p := startPaths(t, cfg)

	p.changeArrives(t, 5*time.Second)
	p.countFailure(t, "k", 1)
	p.enqueue(t, "before")
	p.awaitTask(t, "before", 10*time.Second)
	p.awaitTick(t, time.Now(), 10*time.Second)

	// A task due after the failover, replicated before the crash.
	p.enqueue(t, "queued-across-failover", asynqlib.ProcessIn(4*time.Second))
	pc := set.Primary.Client(t)
	if n, err := pc.Wait(context.Background(), 1, 2*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}

	start := time.Now()
	set.Primary.Kill()
	redistest.Eventually(t, 30*time.Second, "sentinels promote the replica", func(ctx context.Context) error {
		a, err := set.MasterAddr(ctx)
		if err != nil {
			return err
		}
		if a != set.Replica.Addr {
			return fmt.Errorf("primary still %s", a)
		}
		return nil
	})
	promoted := time.Since(start)

	n := p.changeArrives(t, 20*time.Second)
	recovered := time.Since(start)
	p.countFailure(t, "k", 2) // the count survived on the replica
	p.awaitTask(t, "queued-across-failover", 20*time.Second)
	p.enqueue(t, "after")
	p.awaitTask(t, "after", 20*time.Second)
	p.awaitTick(t, time.Now(), 20*time.Second)
	t.Logf("failover: promoted after %v; changes flowing again after %v (%d publishes)", promoted.Round(time.Millisecond), recovered.Round(time.Millisecond), n)
}

// The same paths on a three-master Redis Cluster: the change channel, the
// failure counter and the asynq queue (whose keys share one hash tag).
func TestClusterPaths(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	p := startPaths(t, config.Redis{URL: "redis://unused:6379", ClusterAddrs: cl.Addrs()})
	p.changeArrives(t, 5*time.Second)
	p.countFailure(t, "k", 1)
	p.countFailure(t, "k", 2)
	p.enqueue(t, "now")
	p.awaitTask(t, "now", 15*time.Second)
	p.enqueue(t, "later", asynqlib.ProcessIn(time.Second))
	p.awaitTask(t, "later", 15*time.Second)
	p.awaitTick(t, time.Now(), 15*time.Second)
	time.Sleep(6 * time.Second) // a few scheduler syncs and server heartbeats
	p.noSlotErrors(t)
}
