package dispatcher_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/adapters/webhookhttp"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/internal/dispatcher"
)

// harness is one webhook-dispatch replica in-process, on a fresh database,
// the real Redis (its own queue and signal channel) and real HTTP.
type harness struct {
	t        testing.TB
	db       *sqlx.DB
	store    *postgres.Store
	cipher   *aesgcm.Cipher
	svc      *dispatcher.Service
	registry *prometheus.Registry
	queue    string
	conn     asynq.RedisConnOpt
	settings webhooks.DispatchSettings
	mu       sync.Mutex
	// rdb and tenant: the Redis and tenant this replica publishes on.
	rdb    *goredis.Client
	tenant string
}

type harnessOptions struct {
	guard       bool // SSRF guard on
	noSignal    bool // commits do not signal (Redis "down" at commit)
	perHost     int
	concurrency int
	interval    time.Duration
	poolSize    int // database connections (default pgtest's)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	var db *sqlx.DB
	if o.poolSize > 0 {
		var err error
		db, err = postgres.Open(context.Background(), postgres.Options{URL: pgtest.NewURL(t), MaxOpenConns: o.poolSize})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
	} else {
		db = pgtest.New(t)
	}
	store := postgres.NewStore(db)
	rdb := redistest.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tenant := "wh_" + randomHex(6)
	ctx, cancel := context.WithCancel(context.Background())
	if !o.noSignal {
		sig := redisadapter.NewOutboxSignal(rdb, tenant, log)
		go sig.Run(ctx)
		store.OnOutboxCommit(func(context.Context) { sig.Notify() })
	}
	conn, err := asynqadapter.ConnOpt(config.Redis{URL: redistest.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if o.interval == 0 {
		o.interval = time.Second
	}
	if o.concurrency == 0 {
		o.concurrency = 10
	}
	if o.perHost == 0 {
		o.perHost = 16
	}
	cipher, _ := aesgcm.New(aesgcm.RandomKey())
	h := &harness{t: t, db: db, store: store, cipher: cipher, registry: prometheus.NewRegistry(),
		queue: "brokkr_test_" + randomHex(6) + ":webhooks", conn: conn,
		settings: webhooks.DispatchSettings{BatchSize: 50, Interval: o.interval, RetentionDays: 7}, rdb: rdb, tenant: tenant}
	sender := webhookhttp.New(webhookhttp.Options{AllowPrivate: !o.guard})
	h.svc, err = dispatcher.New(dispatcher.Options{Store: store, Redis: rdb, QueueConn: conn, Queue: h.queue, Tenant: tenant,
		Cipher: cipher, Sender: sender, Settings: h.currentSettings, Concurrency: o.concurrency, PerHost: o.perHost,
		ShutdownTimeout: 5 * time.Second, Registry: h.registry, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("webhook-dispatch did not stop")
		}
		in := asynq.NewInspector(conn)
		_ = in.DeleteQueue(h.queue, true)
		_ = in.Close()
		sender.Close()
	})
	return h
}

func (h *harness) currentSettings() webhooks.DispatchSettings {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.settings
}

func (h *harness) setRetention(days int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settings.RetentionDays = days
}

// subscribe stores an enabled subscription the way the API does (secrets
// sealed).
func (h *harness) subscribe(s webhook.Subscription, url, auth, key string) webhook.Subscription {
	h.t.Helper()
	if s.Name == "" {
		s.Name = "sub-" + randomHex(4)
	}
	if s.EventTypes == nil {
		s.EventTypes = []string{"*"}
	}
	if s.TimeoutSeconds == 0 {
		s.TimeoutSeconds = 5
	}
	s.Enabled = true
	s.URLEncrypted = h.cipher.SealString(url)
	if auth != "" {
		s.AuthHeaderEncrypted = h.cipher.SealString(auth)
	}
	if key != "" {
		s.SigningSecretEncrypted = h.cipher.SealString(key)
	}
	if err := postgres.NewSubscriptions(h.store).CreateSubscription(context.Background(), &s); err != nil {
		h.t.Fatal(err)
	}
	return s
}

// emit commits an event through the outbox, as a use case does.
func (h *harness) emit(typ string, data map[string]any) event.Event {
	h.t.Helper()
	ev := event.New(typ, data)
	if err := h.store.InTx(context.Background(), func(ctx context.Context) error { return h.store.Emit(ctx, ev) }); err != nil {
		h.t.Fatal(err)
	}
	return ev
}

type deliveryRow struct {
	ID             uuid.UUID `db:"id"`
	SubscriptionID uuid.UUID `db:"subscription_id"`
	EventID        uuid.UUID `db:"event_id"`
	Status         string    `db:"status"`
	Attempts       int       `db:"attempts"`
	LastError      *string   `db:"last_error"`
	LastStatusCode *int      `db:"last_status_code"`
}

func (h *harness) deliveries(sub uuid.UUID) []deliveryRow {
	h.t.Helper()
	var out []deliveryRow
	if err := h.db.Select(&out, `SELECT id, subscription_id, event_id, status, attempts, last_error, last_status_code
		FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY created_at, id`, sub); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// hit is one request a receiver got.
type hit struct {
	at     time.Time
	header http.Header
	body   []byte
}

// receiver answers with respond (by the delivery's attempt number at this
// receiver, from 1) and records every request.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	byID    map[string]int
	respond func(deliveryID string, n int, w http.ResponseWriter)
}

func newReceiver(t testing.TB, respond func(deliveryID string, n int, w http.ResponseWriter)) *receiver {
	r := &receiver{byID: map[string]int{}, respond: respond}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		id := req.Header.Get(webhook.HeaderDeliveryID)
		r.mu.Lock()
		r.hits = append(r.hits, hit{at: time.Now(), header: req.Header.Clone(), body: b})
		r.byID[id]++
		n := r.byID[id]
		r.mu.Unlock()
		if r.respond != nil {
			r.respond(id, n, w)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hits)
}

func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}

func envelope(t testing.TB, b []byte) event.Event {
	t.Helper()
	var ev event.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("body is not an event envelope: %v: %s", err, b)
	}
	return ev
}
