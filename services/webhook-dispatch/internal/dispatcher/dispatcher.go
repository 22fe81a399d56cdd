// Package dispatcher runs webhook-dispatch: the outbox relay (woken right
// after commit by api's Redis signal, and by a periodic sweep that catches
// whatever a lost signal or a lost queue entry would have delayed), the
// asynq worker that makes broker-mode delivery attempts, and the hourly
// retention cleanup. Every part is safe with several replicas: the relay
// and the sweep lock rows with SKIP LOCKED, an attempt holds its delivery
// under a lease, and asynq hands each task to one worker.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/internal/metrics"
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/internal/queue"
)

// Options configures a Service.
type Options struct {
	Store *postgres.Store
	// Redis carries the outbox signal.
	Redis goredis.UniversalClient
	// QueueConn and Queue locate the asynq queue.
	QueueConn asynq.RedisConnOpt
	Queue     string
	// Tenant names the outbox signal channel (the database schema).
	Tenant   string
	Cipher   webhooks.Cipher
	Sender   webhooks.Sender
	Settings func() webhooks.DispatchSettings
	// Concurrency is the number of asynq workers; PerHost bounds
	// concurrent attempts to one receiver host.
	Concurrency int
	PerHost     int
	// ShutdownTimeout is how long in-flight attempts may finish on stop.
	ShutdownTimeout time.Duration
	// CleanupEvery is the retention cleanup period (default one hour).
	CleanupEvery time.Duration
	// Registry receives the metrics (optional).
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Service is one webhook-dispatch replica.
type Service struct {
	opts       Options
	dispatcher *webhooks.Dispatcher
	server     *asynq.Server
	enqueuer   *queue.Enqueuer
	inspector  *asynq.Inspector
	signal     *redisadapter.OutboxSignal
}

// New assembles a Service; Run starts it.
func New(o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	defaults.Set(&o.CleanupEvery, time.Hour)
	defaults.Set(&o.Concurrency, 20)
	defaults.Set(&o.ShutdownTimeout, 20*time.Second)
	s := &Service{opts: o, enqueuer: queue.NewEnqueuer(o.QueueConn, o.Queue),
		inspector: asynq.NewInspector(o.QueueConn), signal: redisadapter.NewOutboxSignal(o.Redis, o.Tenant, o.Log)}
	var observer webhooks.Observer
	if o.Registry != nil {
		obs, err := metrics.NewObserver(o.Registry)
		if err != nil {
			return nil, err
		}
		if err := o.Registry.Register(metrics.NewGauges(s.inspector, o.Queue, postgres.NewWebhookCounts(o.Store), o.Log)); err != nil {
			return nil, err
		}
		observer = obs
	}
	// Every recorded attempt is also a note to the api's live console views
	// (coalesced to at most one message a second per replica), so a
	// delivery's outcome shows within a second or two.
	observer = noteObserver{next: observer, changes: redisadapter.NewChanges(o.Redis, o.Tenant, nil, o.Log)}
	s.dispatcher = webhooks.NewDispatcher(dispatchRepos(o.Store), o.Cipher, o.Sender, s.enqueuer, webhooks.NewHostLimiter(o.PerHost),
		o.Settings, observer, o.Log)
	s.server = asynq.NewServer(o.QueueConn, queue.ServerConfig(o.Queue, o.Concurrency, o.ShutdownTimeout, o.Log))
	return s, nil
}

// dispatchRepos builds the dispatcher's repositories over one store: one
// pool, and the transaction InTx opens is carried in the context to all.
func dispatchRepos(st *postgres.Store) webhooks.DispatchRepos {
	deliveries := postgres.NewDeliveries(st)
	return webhooks.DispatchRepos{Tx: st, Journal: st, Subscriptions: postgres.NewSubscriptions(st),
		Outbox: postgres.NewOutbox(st), Queue: deliveries, Attempts: deliveries, Cleanup: deliveries}
}

// Dispatcher exposes the use cases (tests drive sweeps and cleanups).
func (s *Service) Dispatcher() *webhooks.Dispatcher { return s.dispatcher }

// Ping checks the queue's Redis (readiness).
func (s *Service) Ping() error { return s.server.Ping() }

// Run works until ctx ends, then drains: in-flight attempts get the
// shutdown timeout to finish, and unfinished tasks go back to the queue.
func (s *Service) Run(ctx context.Context) error {
	if err := s.server.Start(queue.Handler{D: s.dispatcher, Log: s.opts.Log}); err != nil {
		return fmt.Errorf("start the webhook worker: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.cleanupLoop(ctx)
	}()
	s.relayLoop(ctx, s.signal.Wake(ctx))
	<-done
	s.server.Shutdown()
	return errors.Join(s.enqueuer.Close(), s.inspector.Close())
}

// relayLoop relays on every outbox signal and sweeps every interval (read
// anew each time, so a hot-reloaded interval applies at once).
func (s *Service) relayLoop(ctx context.Context, wake <-chan struct{}) {
	next := time.Now()
	for ctx.Err() == nil {
		wait := time.Until(next)
		if wait <= 0 {
			s.sweep(ctx)
			next = time.Now().Add(max(s.opts.Settings().Interval, 100*time.Millisecond))
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-wake:
			if _, err := s.dispatcher.Relay(ctx); err != nil && ctx.Err() == nil {
				s.opts.Log.Warn("webhook relay failed; the sweep will retry", "error", err)
			}
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Service) sweep(ctx context.Context) {
	r, err := s.dispatcher.Sweep(ctx)
	if err != nil && ctx.Err() == nil {
		s.opts.Log.Warn("webhook sweep failed", "error", err)
		return
	}
	if r.Released > 0 || r.Requeued > 0 {
		s.opts.Log.Info("webhook sweep", "relayed_events", r.Relayed, "released_agent_leases", r.Released,
			"requeued_deliveries", r.Requeued)
	}
}

func (s *Service) cleanupLoop(ctx context.Context) {
	for {
		n, err := s.dispatcher.Cleanup(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.opts.Log.Warn("webhook retention cleanup failed", "error", err)
		case n > 0:
			s.opts.Log.Info("webhook retention cleanup", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.opts.CleanupEvery):
		}
	}
}

// noteObserver passes measurements on and publishes a note after every
// recorded attempt.
type noteObserver struct {
	next    webhooks.Observer // nil: no metrics
	changes *redisadapter.Changes
}

func (n noteObserver) Attempted(status string, took time.Duration) {
	if n.next != nil {
		n.next.Attempted(status, took)
	}
	n.changes.Noted(context.Background(), "delivery")
}

func (n noteObserver) Relayed(events, deliveries int) {
	if n.next != nil {
		n.next.Relayed(events, deliveries)
	}
}

func (n noteObserver) Throttled() {
	if n.next != nil {
		n.next.Throttled()
	}
}
