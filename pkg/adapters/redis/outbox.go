package redis

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// OutboxSignal tells the webhook relay that outbox events were committed,
// so it moves them on at once instead of at its next sweep. api publishes
// (Notify, after commit), webhook-dispatch listens (Wake). A signal carries
// no data and may be lost or repeated: the relay always reads the outbox
// table itself, and its periodic sweep catches whatever a lost signal
// would have announced.
type OutboxSignal struct {
	client     goredis.UniversalClient
	channel    string
	log        *slog.Logger
	pending    chan struct{}
	subscribed atomic.Bool
}

// NewOutboxSignal returns the signal of one tenant (schema).
func NewOutboxSignal(client goredis.UniversalClient, tenant string, log *slog.Logger) *OutboxSignal {
	if tenant == "" {
		tenant = "public"
	}
	if log == nil {
		log = slog.Default()
	}
	return &OutboxSignal{client: client, channel: "brokkr:" + tenant + ":outbox", log: log, pending: make(chan struct{}, 1)}
}

// Channel is the pub/sub channel used.
func (o *OutboxSignal) Channel() string { return o.channel }

// Notify asks for a publish and returns at once: it runs on the request
// path right after commit, and a burst of commits coalesces into few
// messages. Run does the publishing.
func (o *OutboxSignal) Notify() {
	select {
	case o.pending <- struct{}{}:
	default:
	}
}

// Run publishes requested signals until ctx ends. A failed publish is
// dropped (the sweep covers it).
func (o *OutboxSignal) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.pending:
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := o.client.Publish(pctx, o.channel, "1").Err(); err != nil && ctx.Err() == nil {
				o.log.Debug("outbox signal not published; the relay sweep will pick the events up", "error", err)
			}
			cancel()
		}
	}
}

// Subscribed reports whether Wake's subscription is active.
func (o *OutboxSignal) Subscribed() bool { return o.subscribed.Load() }

// Wake subscribes until ctx ends and returns a channel that receives a
// value for each signal (coalesced), and once after every (re)subscription,
// since anything published while the subscription was down is lost.
func (o *OutboxSignal) Wake(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	poke := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go listen(ctx, o.client, o.channel, listener{
		up: func() {
			o.subscribed.Store(true)
			poke()
		},
		down: func(err error) {
			o.subscribed.Store(false)
			o.log.Debug("outbox signal subscription lost; relying on the sweep", "error", err)
		},
		message: func(string) { poke() },
	})
	return out
}
