package telemetry

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// LiveBuffer is each live-tail subscriber's queue, in frames (0.9.1's
// per-stack broadcast capacity).
const LiveBuffer = 1024

// Hub is this replica's live tail: the frames of every replica's ingests
// (delivered by the Redis subscription, pkg/adapters/redis/telemetry.go)
// fanned out to the subscribers of their stack. Delivery never blocks: a
// subscriber whose queue is full loses the frame, and reads a synthetic
// log_gap with reason buffer_full where the frames went missing.
type Hub struct {
	svc *Service

	mu   sync.RWMutex
	subs map[uuid.UUID]map[*Subscription]struct{}
	// delivered counts the frames handed to Deliver for watched stacks.
	delivered atomic.Int64
}

// NewHub returns an empty hub; svc checks who may subscribe.
func NewHub(svc *Service) *Hub {
	return &Hub{svc: svc, subs: map[uuid.UUID]map[*Subscription]struct{}{}}
}

// Subscription is one live-tail subscriber of one stack.
type Subscription struct {
	hub     *Hub
	stackID uuid.UUID
	ch      chan Frame

	mu        sync.Mutex
	dropped   int64
	dropSince time.Time
}

// Subscribe registers a subscriber of the stack's frames: admin or the
// owning generator (agents 403, unknown stack 404). Close ends it.
func (h *Hub) Subscribe(ctx context.Context, p identity.Principal, stackID uuid.UUID) (*Subscription, error) {
	if err := h.svc.CheckRead(ctx, p, stackID); err != nil {
		return nil, err
	}
	s := &Subscription{hub: h, stackID: stackID, ch: make(chan Frame, LiveBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[stackID] == nil {
		h.subs[stackID] = map[*Subscription]struct{}{}
	}
	h.subs[stackID][s] = struct{}{}
	return s, nil
}

// Close unregisters the subscriber.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[s.stackID], s)
	if len(h.subs[s.stackID]) == 0 {
		delete(h.subs, s.stackID)
	}
}

// Subscribers counts this replica's live-tail subscribers.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}

// Delivered counts the frames this replica received for stacks it had
// subscribers of (offered to them, queued or lost).
func (h *Hub) Delivered() int64 { return h.delivered.Load() }

// Watching reports whether any subscriber follows the stack here.
func (h *Hub) Watching(stackID uuid.UUID) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs[stackID]) > 0
}

// Deliver hands frames of a stack to its subscribers without blocking.
func (h *Hub) Deliver(stackID uuid.UUID, frames []Frame) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.subs[stackID]) > 0 {
		h.delivered.Add(int64(len(frames)))
	}
	for s := range h.subs[stackID] {
		for _, f := range frames {
			s.offer(f)
		}
	}
}

// offer queues f, or counts it lost. A pending gap goes first, so it sits
// where the frames went missing.
func (s *Subscription) offer(f Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped > 0 {
		select {
		case s.ch <- s.gapFrame():
			s.dropped = 0
		default:
			s.dropped++
			return
		}
	}
	select {
	case s.ch <- f:
	default:
		if s.dropped == 0 {
			s.dropSince = time.Now().UTC()
		}
		s.dropped++
	}
}

// gapFrame is the log_gap frame of the lost count (s.mu held).
func (s *Subscription) gapFrame() Frame {
	body, _ := json.Marshal(domaintelemetry.LogGap{StackID: s.stackID, SinceTS: s.dropSince, DroppedCount: s.dropped, Reason: domaintelemetry.GapBufferFull})
	return Frame{Type: domaintelemetry.TypeLogGap, Body: body}
}

// Next returns the next frame, a buffer_full gap once the queue has
// drained after losses, or ctx's error.
func (s *Subscription) Next(ctx context.Context) (Frame, error) {
	select {
	case f := <-s.ch:
		return f, nil
	default:
	}
	s.mu.Lock()
	if s.dropped > 0 {
		g := s.gapFrame()
		s.dropped = 0
		s.mu.Unlock()
		return g, nil
	}
	s.mu.Unlock()
	select {
	case f := <-s.ch:
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}
