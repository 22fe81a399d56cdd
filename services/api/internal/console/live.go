package console

import (
	"context"
	"sync"
	"time"
)

// Hub fans change notifications out to the console's open live streams.
// Its sources are the api's existing notification channels (the change hub
// that wakes target-state long-polls, and the outbox signal sent after
// every commit with a domain event), so a browser waits on one server-sent
// event stream instead of polling; a burst of changes reaches each stream
// as at most one event per Coalesce.
type Hub struct {
	mu      sync.Mutex
	clients map[chan struct{}]*stream
	// Coalesce is the shortest gap between two events of one stream.
	Coalesce time.Duration
	// Tick refreshes open views even without a change (heartbeat ages and
	// stale agents move with time, and heartbeats send no notification).
	Tick time.Duration
	// MaxStream ends a stream after this long; the browser reconnects,
	// which re-checks the session.
	MaxStream time.Duration

	stop <-chan struct{}
}

// done is closed when the server stops, so open streams end and do not
// hold up a graceful shutdown.
func (h *Hub) done() <-chan struct{} { return h.stop }

// NewHub starts forwarding every source until ctx ends.
func NewHub(ctx context.Context, sources ...<-chan struct{}) *Hub {
	h := &Hub{clients: map[chan struct{}]*stream{}, Coalesce: time.Second, Tick: 30 * time.Second,
		MaxStream: 10 * time.Minute, stop: ctx.Done()}
	for _, src := range sources {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case _, ok := <-src:
					if !ok {
						return
					}
					h.Notify()
				}
			}
		}()
	}
	return h
}

// Notify wakes every stream (coalesced per stream).
func (h *Hub) Notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// stream is one open live stream: the session's PAK hash, and ended,
// closed when that PAK is revoked.
type stream struct {
	pakHash string
	ended   chan struct{}
	closed  bool
}

// subscribe registers a stream of a session signed in with pakHash: it
// receives the (coalesced) change signals, and ended is closed when the
// PAK is revoked.
func (h *Hub) subscribe(pakHash string) (changes <-chan struct{}, ended <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	s := &stream{pakHash: pakHash, ended: make(chan struct{})}
	h.mu.Lock()
	h.clients[c] = s
	h.mu.Unlock()
	return c, s.ended, func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
	}
}

// Revoke ends the open streams of sessions signed in with these PAK hashes.
func (h *Hub) Revoke(pakHashes ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.clients {
		for _, ph := range pakHashes {
			if s.pakHash == ph && !s.closed {
				s.closed = true
				close(s.ended)
			}
		}
	}
}

// Streams reports how many streams are open.
func (h *Hub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}
