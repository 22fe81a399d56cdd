package redis

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
)

// TelemetrySink receives the frames of every replica's ingests
// (telemetry.Hub).
type TelemetrySink interface {
	Deliver(stackID uuid.UUID, frames []telemetry.Frame)
	// Watching reports whether this replica has a subscriber of the stack;
	// messages for other stacks are skipped undecoded.
	Watching(stackID uuid.UUID) bool
}

// TelemetryQueue is how many batches wait for publication; beyond it
// Publish drops (the frames are stored: only the live tail misses them).
const TelemetryQueue = 1024

type telemetryMessage struct {
	stackID uuid.UUID
	frames  []telemetry.Frame
}

// TelemetryFeed carries live-tail frames across the api replicas
// (docs/telemetry.md#live): one channel per tenant, each message
// "<stack id> <JSON array of frames>". Publish never blocks ingestion: it
// queues, and one goroutine publishes.
type TelemetryFeed struct {
	client  goredis.UniversalClient
	channel string
	log     *slog.Logger
	queue   chan telemetryMessage

	subscribed atomic.Bool
	dropped    atomic.Int64
}

var _ telemetry.Publisher = (*TelemetryFeed)(nil)

// NewTelemetryFeed returns the feed of one tenant (schema); Run delivers.
func NewTelemetryFeed(client goredis.UniversalClient, tenant string, log *slog.Logger) *TelemetryFeed {
	if tenant == "" {
		tenant = "public"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TelemetryFeed{client: client, channel: "brokkr:" + tenant + ":telemetry", log: log,
		queue: make(chan telemetryMessage, TelemetryQueue)}
}

// Publish queues the stack's frames for every replica's live tail; a full
// queue drops them (counted by Dropped).
func (f *TelemetryFeed) Publish(stackID uuid.UUID, frames []telemetry.Frame) {
	select {
	case f.queue <- telemetryMessage{stackID: stackID, frames: frames}:
	default:
		f.dropped.Add(int64(len(frames)))
	}
}

// Dropped counts the frames Publish could not queue or Redis refused.
func (f *TelemetryFeed) Dropped() int64 { return f.dropped.Load() }

// Subscribed reports whether the subscription is up.
func (f *TelemetryFeed) Subscribed() bool { return f.subscribed.Load() }

// Run publishes the queue and, with a sink, subscribes and delivers what
// every replica publishes to it, until ctx ends.
func (f *TelemetryFeed) Run(ctx context.Context, sink TelemetrySink) {
	go f.publishLoop(ctx)
	if sink == nil {
		<-ctx.Done()
		return
	}
	listen(ctx, f.client, f.channel, listener{
		up:      func() { f.subscribed.Store(true) },
		down:    func(err error) { f.subscribed.Store(false); f.log.Debug("telemetry subscription down", "error", err) },
		message: func(payload string) { f.receive(sink, payload) },
	})
	f.subscribed.Store(false)
}

func (f *TelemetryFeed) publishLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-f.queue:
			body, err := json.Marshal(m.frames)
			if err != nil {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = f.client.Publish(pctx, f.channel, m.stackID.String()+" "+string(body)).Err()
			cancel()
			if err != nil && ctx.Err() == nil {
				f.dropped.Add(int64(len(m.frames)))
				f.log.Debug("telemetry frames not published", "error", err)
			}
		}
	}
}

func (f *TelemetryFeed) receive(sink TelemetrySink, payload string) {
	idS, body, ok := strings.Cut(payload, " ")
	id, err := uuid.Parse(idS)
	if !ok || err != nil || !sink.Watching(id) {
		return
	}
	var frames []telemetry.Frame
	if err := json.Unmarshal([]byte(body), &frames); err != nil {
		f.log.Debug("bad telemetry message", "error", err)
		return
	}
	sink.Deliver(id, frames)
}
