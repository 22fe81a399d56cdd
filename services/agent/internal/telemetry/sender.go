package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// Broker is the one broker call telemetry makes (*broker.Client).
type Broker interface {
	PostTelemetry(ctx context.Context, agentID uuid.UUID, frames []broker.TelemetryFrame) (broker.TelemetryResult, error)
}

// SenderOptions tune the Sender; zero values take the defaults.
type SenderOptions struct {
	// MaxFrames per request (default the broker's limit, 500).
	MaxFrames int
	// MaxBytes per request body (default the broker's limit, 1 MiB, minus
	// a margin for the envelope).
	MaxBytes int
	// QueueBatches bounds the batches waiting to be sent (default 256)
	// and QueueBytes their encoded size (default 32 MiB, so a flood of
	// 16 KiB lines cannot hold 256 MiB); a batch that finds the queue
	// full is dropped into a buffer_full gap.
	QueueBatches int
	QueueBytes   int
	// FlushEvery sends a partial batch this often (default 1 s).
	FlushEvery time.Duration
	// Retries of a failing request before its batch is dropped into a
	// disconnected gap (default 3), Backoff the first pause between
	// them (default 1 s, doubling).
	Retries int
	Backoff time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

func (o *SenderOptions) defaults() {
	if o.MaxFrames <= 0 {
		o.MaxFrames = domaintelemetry.MaxFrames
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = domaintelemetry.MaxBodyBytes - 4<<10
	}
	if o.QueueBatches <= 0 {
		o.QueueBatches = 256
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 32 << 20
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

type gapKey struct {
	src    Source
	reason string
}

// Sender batches frames and posts them. Emit never blocks: frames gather
// into a batch (at most MaxFrames and MaxBytes) that goes to a bounded
// queue when full or at the next flush; Run posts the queued batches one at
// a time. Lost frames (queue full, broker failing after retries) are
// counted per source and reason and sent later as log_gap frames.
type Sender struct {
	b       Broker
	agentID uuid.UUID
	opts    SenderOptions
	log     *slog.Logger

	mu          sync.Mutex
	cur         []Frame
	curBytes    int
	queuedBytes int
	gaps        map[gapKey]*domaintelemetry.LogGap
	queue       chan batch
}

type batch struct {
	frames []Frame
	bytes  int
}

// NewSender returns a sender posting as agentID; Run starts it.
func NewSender(b Broker, agentID uuid.UUID, opts SenderOptions, log *slog.Logger) *Sender {
	opts.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sender{b: b, agentID: agentID, opts: opts, log: log, gaps: map[gapKey]*domaintelemetry.LogGap{},
		queue: make(chan batch, opts.QueueBatches)}
}

// Emit adds f to the current batch; it never blocks.
func (s *Sender) Emit(f Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(f)
}

func (s *Sender) addLocked(f Frame) {
	if len(s.cur) > 0 && (len(s.cur) >= s.opts.MaxFrames || s.curBytes+f.size() > s.opts.MaxBytes) {
		s.enqueueLocked()
	}
	s.cur = append(s.cur, f)
	s.curBytes += f.size()
}

// enqueueLocked moves the current batch to the queue, or drops it into
// buffer_full gaps when the queue is full.
func (s *Sender) enqueueLocked() {
	if len(s.cur) == 0 {
		return
	}
	b := batch{frames: s.cur, bytes: s.curBytes}
	s.cur, s.curBytes = nil, 0
	if s.queuedBytes+b.bytes > s.opts.QueueBytes {
		s.dropLocked(b.frames, domaintelemetry.GapBufferFull)
		return
	}
	select {
	case s.queue <- b:
		s.queuedBytes += b.bytes
	default:
		s.dropLocked(b.frames, domaintelemetry.GapBufferFull)
	}
}

// dropLocked counts the frames of a lost batch into pending gaps. A lost
// gap frame is merged back as it was, so its count is not lost with it
// and gaps do not multiply.
func (s *Sender) dropLocked(batch []Frame, reason string) {
	for _, f := range batch {
		if f.Gap != nil {
			s.addGapLocked(f.Source, f.Gap.Reason, f.Gap.SinceTS, f.Gap.DroppedCount)
			continue
		}
		ts := f.TS
		if ts.IsZero() {
			ts = s.opts.Now()
		}
		s.addGapLocked(f.Source, reason, ts, 1)
	}
}

func (s *Sender) addGapLocked(src Source, reason string, since time.Time, n int64) {
	k := gapKey{src: src, reason: reason}
	g, ok := s.gaps[k]
	if !ok {
		s.gaps[k] = &domaintelemetry.LogGap{AgentID: s.agentID, StackID: src.StackID, Namespace: src.Namespace, Pod: src.Pod,
			Container: src.Container, Reason: reason, SinceTS: since, DroppedCount: n}
		return
	}
	if since.Before(g.SinceTS) {
		g.SinceTS = since
	}
	g.DroppedCount += n
}

// Flush appends the pending gaps to the current batch, when the queue has
// room for them, and queues the batch.
func (s *Sender) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gaps) > 0 && len(s.queue) < cap(s.queue) && s.queuedBytes < s.opts.QueueBytes {
		gaps := make([]*domaintelemetry.LogGap, 0, len(s.gaps))
		for _, g := range s.gaps {
			gaps = append(gaps, g)
		}
		s.gaps = map[gapKey]*domaintelemetry.LogGap{}
		sort.Slice(gaps, func(i, j int) bool { return gaps[i].SinceTS.Before(gaps[j].SinceTS) })
		for _, g := range gaps {
			s.addLocked(GapFrame(*g))
		}
	}
	s.enqueueLocked()
}

// Pending returns the gaps not yet sent, oldest first (tests, logs).
func (s *Sender) Pending() []domaintelemetry.LogGap {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]domaintelemetry.LogGap, 0, len(s.gaps))
	for _, g := range s.gaps {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].SinceTS.Equal(out[j].SinceTS) {
			return out[i].SinceTS.Before(out[j].SinceTS)
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// Run flushes every FlushEvery and posts queued batches until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	tick := time.NewTicker(s.opts.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.Flush()
		case b := <-s.queue:
			s.post(ctx, s.dequeued(b))
		}
	}
}

func (s *Sender) dequeued(b batch) []Frame {
	s.mu.Lock()
	s.queuedBytes -= b.bytes
	s.mu.Unlock()
	return b.frames
}

// SendQueued posts every batch queued now (tests and the final flush).
func (s *Sender) SendQueued(ctx context.Context) {
	for {
		select {
		case b := <-s.queue:
			s.post(ctx, s.dequeued(b))
		default:
			return
		}
	}
}

// post sends one batch, retrying transient failures (no answer, 429, 5xx)
// with backoff; a batch that still fails is dropped into disconnected
// gaps. A batch the broker refuses (400, 401, 403, 404, 413, 422) cannot
// succeed by sending it again: it is dropped and logged.
func (s *Sender) post(ctx context.Context, batch []Frame) {
	frames := make([]broker.TelemetryFrame, len(batch))
	for i, f := range batch {
		frames[i] = f.wire()
	}
	for attempt := 0; ; attempt++ {
		res, err := s.b.PostTelemetry(ctx, s.agentID, frames)
		if err == nil {
			if res.Dropped > 0 {
				s.log.Debug("the broker dropped telemetry frames", "dropped", res.Dropped, "accepted", res.Accepted)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !transient(err) {
			s.log.Warn("the broker refused a telemetry batch; dropped", "frames", len(batch), "error", err)
			return
		}
		if attempt >= s.opts.Retries {
			s.log.Warn("could not send a telemetry batch; dropped", "frames", len(batch), "error", err)
			s.mu.Lock()
			s.dropLocked(batch, domaintelemetry.GapDisconnected)
			s.mu.Unlock()
			return
		}
		t := time.NewTimer(s.opts.Backoff << attempt)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// transient says whether sending again may succeed: no answer at all, 429
// or a 5xx.
func transient(err error) bool {
	var se *broker.StatusError
	if !errors.As(err, &se) {
		return true
	}
	return se.Code == http.StatusTooManyRequests || se.Code >= 500
}
