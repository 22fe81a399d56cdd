package redis

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

// AuthInvalidationChannel carries auth-cache invalidations: a PAK hash, or
// "*" for everything.
const AuthInvalidationChannel = "brokkr:auth:invalidate"

const invalidateAllPayload = "*"

// AuthCache is what the subscriber drives: authn.Cache.
type AuthCache interface {
	Invalidate(hashes ...string)
	InvalidateAll()
}

// bypasser is implemented by caches that can stop caching while the
// invalidation stream is down (authn.Cache).
type bypasser interface{ SetBypass(on bool) }

// AuthInvalidation publishes auth-cache invalidations to every replica
// (docs/compatibility.md#pak-revocation). It implements authn.Invalidator and
// authn.AllInvalidator.
type AuthInvalidation struct {
	client  goredis.UniversalClient
	channel string
	local   AuthCache
}

var _ authn.AllInvalidator = (*AuthInvalidation)(nil)

// NewAuthInvalidation publishes on AuthInvalidationChannel. local, when not
// nil, is this process's cache: it is invalidated directly too, so this
// replica is right even when Redis is down.
func NewAuthInvalidation(client goredis.UniversalClient, local AuthCache) *AuthInvalidation {
	return &AuthInvalidation{client: client, channel: AuthInvalidationChannel, local: local}
}

// OnChannel returns a copy that uses another channel (tests, isolation).
func (a *AuthInvalidation) OnChannel(channel string) *AuthInvalidation {
	cp := *a
	cp.channel = channel
	return &cp
}

// Invalidate drops hashes from every replica's cache.
func (a *AuthInvalidation) Invalidate(ctx context.Context, hashes ...string) error {
	if len(hashes) == 0 {
		return nil
	}
	if a.local != nil {
		a.local.Invalidate(hashes...)
	}
	ctx = context.WithoutCancel(ctx) // a rotation that committed must be announced
	_, err := a.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, h := range hashes {
			p.Publish(ctx, a.channel, h)
		}
		return nil
	})
	return err
}

// InvalidateAll drops every replica's whole cache (config reload).
func (a *AuthInvalidation) InvalidateAll(ctx context.Context) error {
	if a.local != nil {
		a.local.InvalidateAll()
	}
	return a.client.Publish(context.WithoutCancel(ctx), a.channel, invalidateAllPayload).Err()
}

// AuthSubscriber applies invalidations received from Redis to a cache.
type AuthSubscriber struct {
	ready      chan struct{}
	readyOnce  sync.Once
	done       chan struct{}
	subscribed atomic.Bool
}

// Ready is closed once the first subscription is active.
func (s *AuthSubscriber) Ready() <-chan struct{} { return s.ready }

// Done is closed when the subscriber has stopped (ctx ended).
func (s *AuthSubscriber) Done() <-chan struct{} { return s.done }

// Subscribed reports whether invalidations currently flow.
func (s *AuthSubscriber) Subscribed() bool { return s.subscribed.Load() }

// SubscribeAuthInvalidation subscribes cache to AuthInvalidationChannel
// until ctx ends; see (*AuthInvalidation).Subscribe.
func SubscribeAuthInvalidation(ctx context.Context, client goredis.UniversalClient, cache AuthCache, log *slog.Logger) *AuthSubscriber {
	return NewAuthInvalidation(client, nil).Subscribe(ctx, cache, log)
}

// Subscribe starts a goroutine that applies invalidations from a's channel
// to cache until ctx ends. Messages published while the subscription is
// down are lost, so whenever it is not active the cache is emptied and,
// when it supports SetBypass, not used; it is turned back on after every
// (re)subscription.
func (a *AuthInvalidation) Subscribe(ctx context.Context, cache AuthCache, log *slog.Logger) *AuthSubscriber {
	if log == nil {
		log = slog.Default()
	}
	s := &AuthSubscriber{ready: make(chan struct{}), done: make(chan struct{})}
	setBypass := func(on bool) {
		if b, ok := cache.(bypasser); ok {
			b.SetBypass(on)
		} else {
			cache.InvalidateAll()
		}
	}
	setBypass(true)
	go func() {
		defer close(s.done)
		listen(ctx, a.client, a.channel, listener{
			up: func() {
				// Whatever was published while unsubscribed is lost.
				cache.InvalidateAll()
				s.subscribed.Store(true)
				setBypass(false)
				s.readyOnce.Do(func() { close(s.ready) })
			},
			down: func(err error) {
				s.subscribed.Store(false)
				setBypass(true)
				log.WarnContext(ctx, "auth invalidation subscription lost; caching paused", "error", err)
			},
			message: func(payload string) {
				switch {
				case payload == invalidateAllPayload:
					cache.InvalidateAll()
				case pak.IsHash(payload):
					cache.Invalidate(payload)
				default:
					log.DebugContext(ctx, "ignoring malformed auth invalidation message")
				}
			},
		})
		s.subscribed.Store(false)
	}()
	return s
}

// FailurePrefix prefixes the failure-counter keys.
const FailurePrefix = "brokkr:auth:fail:"

// FailureCounter counts failed verifications per client in fixed windows
// (INCR, with the expiry set by the first failure of a window). It
// implements paks.FailureCounter.
type FailureCounter struct {
	client goredis.UniversalClient
	prefix string
}

var _ paks.FailureCounter = (*FailureCounter)(nil)

// NewFailureCounter uses keys prefix+client; "" means FailurePrefix.
func NewFailureCounter(client goredis.UniversalClient, prefix string) *FailureCounter {
	if prefix == "" {
		prefix = FailurePrefix
	}
	return &FailureCounter{client: client, prefix: prefix}
}

// Failures returns the count of key's current window and the time left.
func (f *FailureCounter) Failures(ctx context.Context, key string) (int64, time.Duration, error) {
	var get *goredis.StringCmd
	var ttl *goredis.DurationCmd
	_, err := f.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, f.prefix+key)
		ttl = p.PTTL(ctx, f.prefix+key)
		return nil
	})
	if errors.Is(err, goredis.Nil) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	n, err := get.Int64()
	if err != nil {
		return 0, 0, err
	}
	return n, max(ttl.Val(), 0), nil
}

// addFailure increments and, when the key has no expiry yet (a new
// window), sets it; atomic, so concurrent failures share one window.
var addFailure = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}`)

// AddFailure counts one failure of key in a window of length window.
func (f *FailureCounter) AddFailure(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	ms := window.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	res, err := addFailure.Run(ctx, f.client, []string{f.prefix + key}, ms).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(res) != 2 {
		return 0, 0, errors.New("redis: unexpected reply from failure counter")
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}
