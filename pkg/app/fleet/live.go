package fleet

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// LiveBuffer is each subscriber's queue. A subscriber that falls further
// behind loses the frames that do not fit: each frame is an agent's whole
// record, so the next one for that agent supersedes what was lost (0.9.1's
// rule for the fleet stream, docs/compatibility.md#fleet-live).
const LiveBuffer = 1024

// Live pushes changed fleet records to subscribers (GET /fleet/live). It
// rebuilds the whole fleet (the same fixed number of grouped queries as a
// list) when a change note arrives from any replica, and at least every
// interval to catch what has no note (heartbeats, connections, health
// reports), at most once a second, and only while someone subscribes. It
// sends a record when anything but its ages changed since the previous
// rebuild; the first rebuild after the first subscriber arrives only sets
// that baseline (a subscriber reads GET /fleet first).
type Live struct {
	svc      *Service
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	subs map[chan Record]struct{}
	last map[uuid.UUID]Record
	kick chan struct{}
}

// NewLive returns the fan-out; Run drives it.
func NewLive(svc *Service, interval time.Duration, log *slog.Logger) *Live {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Live{svc: svc, interval: interval, log: log, subs: map[chan Record]struct{}{}, kick: make(chan struct{}, 1)}
}

// Subscribe registers an admin's subscription; cancel ends it.
func (l *Live) Subscribe(p identity.Principal) (<-chan Record, func(), error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, nil, err
	}
	ch := make(chan Record, LiveBuffer)
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	l.mu.Unlock()
	l.Kick()
	return ch, func() {
		l.mu.Lock()
		delete(l.subs, ch)
		if len(l.subs) == 0 {
			l.last = nil
		}
		l.mu.Unlock()
	}, nil
}

// Subscribers counts the current subscriptions.
func (l *Live) Subscribers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// Kick asks for a rebuild soon; it never blocks.
func (l *Live) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Run rebuilds on notes (a channel signalled on every change, possibly
// nil), kicks and the interval, until ctx ends.
func (l *Live) Run(ctx context.Context, notes <-chan struct{}) {
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	var lastRun time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-notes:
		case <-l.kick:
		case <-tick.C:
		}
		if wait := time.Second - time.Since(lastRun); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		lastRun = time.Now()
		l.Sweep(ctx)
	}
}

// Sweep rebuilds the fleet and sends the records that changed. A failure
// is logged and skipped: the push never affects anything else.
func (l *Live) Sweep(ctx context.Context) {
	if l.Subscribers() == 0 {
		return
	}
	recs, err := l.svc.records(ctx, nil)
	if err != nil {
		l.log.Warn("fleet live rebuild failed; next tick retries", "error", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	seeded := l.last != nil
	next := make(map[uuid.UUID]Record, len(recs))
	for _, r := range recs {
		key := comparable(r)
		next[r.AgentID] = key
		if prev, ok := l.last[r.AgentID]; seeded && (!ok || !sameRecord(prev, key)) {
			for ch := range l.subs {
				select {
				case ch <- r:
				default: // lagging: dropped, superseded by its next frame
				}
			}
		}
	}
	if len(l.subs) > 0 {
		l.last = next
	}
}

// comparable is r without what changes by itself (the ages).
func comparable(r Record) Record {
	r.HeartbeatAgeSeconds, r.SecondsSinceLastEvent = nil, nil
	return r
}

func sameRecord(a, b Record) bool {
	return a.Name == b.Name && a.ClusterName == b.ClusterName && a.Status == b.Status && a.Connected == b.Connected &&
		eqTime(a.ConnectedSince, b.ConnectedSince) && eqTime(a.LastHeartbeat, b.LastHeartbeat) &&
		eqTime(a.LastEventAt, b.LastEventAt) && a.PendingObjects == b.PendingObjects &&
		a.PendingWorkOrders == b.PendingWorkOrders && a.ClaimedWorkOrders == b.ClaimedWorkOrders &&
		a.HealthFailing == b.HealthFailing && a.HealthDegraded == b.HealthDegraded
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
