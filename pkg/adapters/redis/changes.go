// Package redis holds the Redis adapters: change notifications that wake
// target-state long-polls, auth-cache invalidation and failure counters.
// Redis only speeds things up: PostgreSQL stays the source of truth.
package redis

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
)

// Changes publishes "something changed" notifications through Redis and
// dispatches them to the long-polls waiting in this process. It implements
// the ChangeNotifier ports of the agents, stacks and generators use cases and
// the Waiter port of target state.
type Changes struct {
	client  *goredis.Client
	channel string
	log     *slog.Logger

	mu      sync.Mutex
	waiters map[*waiter]struct{}
	healthy atomic.Bool
}

type waiter struct {
	agent  uuid.UUID
	stacks map[uuid.UUID]struct{}
	ch     chan struct{}
}

// NewChanges returns a hub for one tenant (the schema keeps tenants apart).
func NewChanges(client *goredis.Client, tenant string, log *slog.Logger) *Changes {
	if tenant == "" {
		tenant = "public"
	}
	return &Changes{client: client, channel: "brokkr:" + tenant + ":changes", log: log, waiters: map[*waiter]struct{}{}}
}

// Run subscribes until ctx ends, resubscribing after Redis outages. While
// the subscription is down, Subscribe reports ok=false so waiters poll.
func (c *Changes) Run(ctx context.Context) {
	listen(ctx, c.client, c.channel, listener{
		up: func() {
			c.healthy.Store(true)
			// Anything published while we were away is lost: wake everyone.
			c.dispatch("all")
		},
		down: func(err error) {
			c.healthy.Store(false)
			c.log.Debug("change subscription lost; long-polls fall back to polling", "error", err)
		},
		message: c.dispatch,
	})
	c.healthy.Store(false)
}

// Healthy reports whether notifications currently flow.
func (c *Changes) Healthy() bool { return c.healthy.Load() }

// Subscribe implements targetstate.Waiter.
func (c *Changes) Subscribe(agentID uuid.UUID, stackIDs []uuid.UUID) (<-chan struct{}, func(), bool) {
	w := &waiter{agent: agentID, stacks: make(map[uuid.UUID]struct{}, len(stackIDs)), ch: make(chan struct{}, 1)}
	for _, id := range stackIDs {
		w.stacks[id] = struct{}{}
	}
	c.mu.Lock()
	c.waiters[w] = struct{}{}
	c.mu.Unlock()
	cancel := func() {
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
	}
	return w.ch, cancel, c.Healthy()
}

// AgentChanged wakes the agent's long-polls.
func (c *Changes) AgentChanged(ctx context.Context, id uuid.UUID) {
	c.publish(ctx, "agent:"+id.String())
}

// StackChanged wakes long-polls that hold the stack.
func (c *Changes) StackChanged(ctx context.Context, id uuid.UUID) {
	c.publish(ctx, "stack:"+id.String())
}

// EverythingChanged wakes every long-poll (associations may have moved).
func (c *Changes) EverythingChanged(ctx context.Context) { c.publish(ctx, "all") }

// publish announces a change once the change is committed: right away, or
// after the commit of an outer transaction that is still open (see
// aftercommit), so no long-poll wakes up to read the old state.
func (c *Changes) publish(ctx context.Context, msg string) {
	aftercommit.Do(ctx, func() { c.publishNow(ctx, msg) })
}

func (c *Changes) publishNow(ctx context.Context, msg string) {
	if err := c.client.Publish(context.WithoutCancel(ctx), c.channel, msg).Err(); err != nil {
		c.log.Debug("publish change failed; waiters will poll", "error", err)
		// Still wake local waiters; other replicas poll.
		c.dispatch(msg)
	}
}

func (c *Changes) dispatch(msg string) {
	kind, idStr, _ := strings.Cut(msg, ":")
	var id uuid.UUID
	if kind != "all" {
		var err error
		if id, err = uuid.Parse(idStr); err != nil {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for w := range c.waiters {
		if kind == "all" || (kind == "agent" && w.agent == id) || (kind == "stack" && w.wantsStack(id)) {
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
	}
}

// wantsStack reports whether the stack is associated with the waiting agent
// (whether or not it has an object yet).
func (w *waiter) wantsStack(id uuid.UUID) bool {
	_, ok := w.stacks[id]
	return ok
}
