// Package redis holds the Redis adapters: change notifications that keep
// every api replica's target-state index exact, auth-cache invalidation and
// failure counters. Redis only speeds things up: PostgreSQL stays the source
// of truth.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
)

// Sink receives decoded changes in publication order: the api replica's
// target-state index.
type Sink interface {
	Apply(ctx context.Context, c targetstate.Change)
	// SetTrusted reports whether notifications flow; on → resynchronise.
	SetTrusted(ctx context.Context, on bool)
	// Resync recovers from a lost notification.
	Resync(ctx context.Context)
}

// CheckEvery is how often a replica compares the published sequence number
// with the last one it received: a message Redis dropped is noticed within
// two periods and answered with a resync.
var CheckEvery = time.Second

// publishScript numbers every change (INCR) and publishes it in one atomic
// step, so subscribers see consecutive numbers and can tell a gap. The
// channel is an argument, not a key: a channel has no hash slot, and
// declaring it as a key fails with CROSSSLOT on Redis Cluster.
var publishScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], n .. ' ' .. ARGV[2])
return n`)

// Changes publishes change notifications through Redis and applies every
// replica's (its own included, synchronously) to the local Sink. It
// implements the ChangeNotifier ports of the agents, stacks and generators
// use cases.
//
// Wire format: "<seq> <origin> <kind>:<args>", seq from an INCR counter
// (gap → resync), origin the publishing process (its own echo is skipped:
// it was applied before publishing).
type Changes struct {
	client  goredis.UniversalClient
	channel string
	seqKey  string
	origin  string
	sink    Sink
	log     *slog.Logger

	subscribed atomic.Bool
	owed       atomic.Bool // a publish failed: other replicas must resync

	mu      sync.Mutex
	last    uint64 // last sequence number received
	suspect uint64 // a published number not received at the last check

	watchMu  sync.Mutex
	watchers map[chan struct{}]struct{} // the console's live views

	noteMu      sync.Mutex
	noteLast    time.Time // when the last note was published
	notePending bool      // a note waits for the end of the window
}

// NoteEvery is the shortest gap between two notes a process publishes
// (see Noted): a burst of heartbeat transitions or delivery outcomes costs
// at most one message per period and process.
var NoteEvery = time.Second

// NewChanges returns the notification hub of one tenant (the schema keeps
// tenants apart), delivering to sink; a nil sink only publishes (auth).
func NewChanges(client goredis.UniversalClient, tenant string, sink Sink, log *slog.Logger) *Changes {
	if tenant == "" {
		tenant = "public"
	}
	if sink == nil {
		sink = nopSink{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Changes{client: client, channel: "brokkr:" + tenant + ":changes", seqKey: "brokkr:" + tenant + ":changes:seq",
		origin: hex.EncodeToString(b[:]), sink: sink, log: log}
}

// Run subscribes until ctx ends, resubscribing after Redis outages. While
// the subscription is down the sink is untrusted, so target state is read
// from PostgreSQL and long-polls poll.
func (c *Changes) Run(ctx context.Context) {
	go c.checkLoop(ctx)
	listen(ctx, c.client, c.channel, listener{
		up: func() {
			n, err := c.client.Get(ctx, c.seqKey).Uint64()
			if err != nil && err != goredis.Nil {
				c.log.Debug("reading the change sequence failed", "error", err)
			}
			c.mu.Lock()
			c.last, c.suspect = n, 0
			c.mu.Unlock()
			c.subscribed.Store(true)
			// Anything published while we were away is lost: resync.
			c.sink.SetTrusted(ctx, true)
			c.wakeWatchers()
		},
		down: func(err error) {
			c.subscribed.Store(false)
			c.sink.SetTrusted(ctx, false)
			c.log.Debug("change subscription lost; target state reads PostgreSQL and long-polls poll", "error", err)
		},
		message: func(payload string) { c.receive(ctx, payload) },
	})
	c.subscribed.Store(false)
	c.sink.SetTrusted(context.WithoutCancel(ctx), false)
}

// Subscribed reports whether notifications currently flow.
func (c *Changes) Subscribed() bool { return c.subscribed.Load() }

func (c *Changes) receive(ctx context.Context, payload string) {
	seqStr, rest, _ := strings.Cut(payload, " ")
	origin, msg, _ := strings.Cut(rest, " ")
	seq, err := strconv.ParseUint(seqStr, 10, 64)
	if err != nil {
		return
	}
	c.mu.Lock()
	gap := c.last != 0 && seq > c.last+1
	if seq > c.last {
		c.last = seq
	}
	c.mu.Unlock()
	if origin != c.origin {
		if ch, ok := Decode(msg); ok {
			c.sink.Apply(ctx, ch)
		}
		c.wakeWatchers()
	}
	if gap {
		c.log.Warn("change notifications were lost; resynchronising target state", "seq", seq)
		c.sink.Resync(ctx)
	}
}

// checkLoop notices messages Redis dropped (the counter moved past what we
// received for two checks in a row) and pays off resyncs owed after a
// failed publish.
func (c *Changes) checkLoop(ctx context.Context) {
	t := time.NewTicker(CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.subscribed.Load() {
			continue
		}
		if c.owed.Load() {
			if _, err := publishScript.Run(ctx, c.client, []string{c.seqKey}, c.channel, c.origin+" all").Result(); err == nil {
				c.owed.Store(false)
			}
		}
		n, err := c.client.Get(ctx, c.seqKey).Uint64()
		if err != nil {
			continue
		}
		c.mu.Lock()
		lost := false
		switch {
		case n <= c.last:
			c.suspect = 0
		case c.suspect != 0 && c.last < c.suspect:
			lost = true
			c.last, c.suspect = n, 0
		default:
			c.suspect = n
		}
		c.mu.Unlock()
		if lost {
			c.log.Warn("change notifications were lost; resynchronising target state", "seq", n)
			c.sink.Resync(ctx)
		}
	}
}

// AgentChanged: the agent's status, labels, annotations or targets changed.
func (c *Changes) AgentChanged(ctx context.Context, id uuid.UUID) {
	c.publish(ctx, targetstate.Change{Kind: targetstate.ChangeAgent, ID: id})
}

// ObjectAcknowledged: the agent reported SUCCESS for the object (it leaves
// the agent's default target state).
func (c *Changes) ObjectAcknowledged(ctx context.Context, agentID, objectID uuid.UUID) {
	c.publish(ctx, targetstate.Change{Kind: targetstate.ChangeAck, ID: agentID, Object: objectID})
}

// StackChanged: the stack's latest object changed or the stack was deleted.
func (c *Changes) StackChanged(ctx context.Context, id uuid.UUID) {
	c.publish(ctx, targetstate.Change{Kind: targetstate.ChangeStack, ID: id})
}

// StackLabelChanged: a stack gained or lost label; only agents carrying it
// may change association.
func (c *Changes) StackLabelChanged(ctx context.Context, label string) {
	c.publish(ctx, targetstate.Change{Kind: targetstate.ChangeLabel, Key: label})
}

// StackAnnotationChanged: a stack gained or lost an annotation with key.
func (c *Changes) StackAnnotationChanged(ctx context.Context, key string) {
	c.publish(ctx, targetstate.Change{Kind: targetstate.ChangeAnnotation, Key: key})
}

// publish announces a change once it is committed: right away, or after
// the commit of an outer transaction that is still open (see aftercommit),
// so no long-poll wakes up to read the old state.
func (c *Changes) publish(ctx context.Context, ch targetstate.Change) {
	aftercommit.Do(ctx, func() { c.publishNow(ctx, ch) })
}

// publishNow applies the change here first (so this replica reads its own
// writes at once), then tells the others.
func (c *Changes) publishNow(ctx context.Context, ch targetstate.Change) {
	c.sink.Apply(ctx, ch)
	c.wakeWatchers()
	err := publishScript.Run(context.WithoutCancel(ctx), c.client, []string{c.seqKey},
		c.channel, c.origin+" "+Encode(ch)).Err()
	if err != nil {
		c.log.Debug("publish change failed; other replicas resync when Redis is back", "error", err)
		c.owed.Store(true)
	}
}

// Noted tells the console's live views, on every replica, that something
// they show changed without changing any agent's target state (an agent
// seen again after being stale, a webhook delivery's outcome). Notes are
// coalesced: the first of a quiet period is published at once, the rest of
// a burst as one note at the end of the NoteEvery window. A note wakes
// watchers only; target-state indexes ignore it.
func (c *Changes) Noted(ctx context.Context, what string) {
	ctx = context.WithoutCancel(ctx)
	c.noteMu.Lock()
	defer c.noteMu.Unlock()
	if c.notePending {
		return
	}
	wait := NoteEvery - time.Since(c.noteLast)
	if wait <= 0 {
		c.noteLast = time.Now()
		go c.publishNote(ctx, what)
		return
	}
	c.notePending = true
	time.AfterFunc(wait, func() {
		c.noteMu.Lock()
		c.notePending = false
		c.noteLast = time.Now()
		c.noteMu.Unlock()
		c.publishNote(ctx, what)
	})
}

func (c *Changes) publishNote(ctx context.Context, what string) {
	c.wakeWatchers()
	err := publishScript.Run(ctx, c.client, []string{c.seqKey}, c.channel, c.origin+" note:"+what).Err()
	if err != nil {
		// Only the console's refresh is late: its views tick anyway.
		c.log.Debug("publish note failed", "error", err)
	}
}

// Watch returns a channel that receives a value (coalesced) after every
// change of the tenant, whatever it is about and whichever replica made it,
// and once after every (re)subscription. The console's live view waits on it
// instead of polling; cancel releases it.
func (c *Changes) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.watchMu.Lock()
	if c.watchers == nil {
		c.watchers = make(map[chan struct{}]struct{})
	}
	c.watchers[ch] = struct{}{}
	c.watchMu.Unlock()
	return ch, func() {
		c.watchMu.Lock()
		delete(c.watchers, ch)
		c.watchMu.Unlock()
	}
}

func (c *Changes) wakeWatchers() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	for ch := range c.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Encode is the wire form of a change.
func Encode(ch targetstate.Change) string {
	switch ch.Kind {
	case targetstate.ChangeAgent:
		return "agent:" + ch.ID.String()
	case targetstate.ChangeStack:
		return "stack:" + ch.ID.String()
	case targetstate.ChangeAck:
		return "ack:" + ch.ID.String() + ":" + ch.Object.String()
	case targetstate.ChangeLabel:
		return "label:" + ch.Key
	case targetstate.ChangeAnnotation:
		return "annotation:" + ch.Key
	}
	return "all"
}

// Decode parses Encode's output; a note (see Noted) is no change.
func Decode(msg string) (targetstate.Change, bool) {
	kind, arg, _ := strings.Cut(msg, ":")
	switch kind {
	case "note":
		return targetstate.Change{}, false
	case "all":
		return targetstate.Change{Kind: targetstate.ChangeAll}, true
	case "label":
		return targetstate.Change{Kind: targetstate.ChangeLabel, Key: arg}, true
	case "annotation":
		return targetstate.Change{Kind: targetstate.ChangeAnnotation, Key: arg}, true
	case "ack":
		a, o, _ := strings.Cut(arg, ":")
		aid, err1 := uuid.Parse(a)
		oid, err2 := uuid.Parse(o)
		if err1 != nil || err2 != nil {
			return targetstate.Change{}, false
		}
		return targetstate.Change{Kind: targetstate.ChangeAck, ID: aid, Object: oid}, true
	case "agent", "stack":
		id, err := uuid.Parse(arg)
		if err != nil {
			return targetstate.Change{}, false
		}
		k := targetstate.ChangeAgent
		if kind == "stack" {
			k = targetstate.ChangeStack
		}
		return targetstate.Change{Kind: k, ID: id}, true
	}
	return targetstate.Change{}, false
}

type nopSink struct{}

func (nopSink) Apply(context.Context, targetstate.Change) {}
func (nopSink) SetTrusted(context.Context, bool)          {}
func (nopSink) Resync(context.Context)                    {}
