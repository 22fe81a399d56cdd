package redis

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// countingAuth accepts every well-formed token as one agent and counts calls.
type countingAuth struct {
	calls atomic.Int64
	id    uuid.UUID
}

func (c *countingAuth) Authenticate(_ context.Context, token string, _ authn.Client) (identity.Principal, error) {
	c.calls.Add(1)
	if _, err := pak.ParseHeader(token); err != nil {
		return identity.Principal{}, authn.Unauthenticated()
	}
	return identity.Agent(c.id), nil
}

func waitReady(t *testing.T, s *AuthSubscriber) {
	t.Helper()
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber not ready")
	}
}

const tokA, tokB = "brokkr_BRaaaaaa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "brokkr_BRbbbbbb_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

func hashOf(tok string) string { long, _ := pak.ParseHeader(tok); return pak.Hash(long) }

func TestAuthInvalidationAcrossReplicas(t *testing.T) {
	client := redistest.New(t)
	channel := redistest.Namespace(t, client) + "auth"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Two api replicas, each with its own cache and subscriber.
	var backends [2]*countingAuth
	var caches [2]*authn.Cache
	for i := range caches {
		backends[i] = &countingAuth{id: uuid.New()}
		caches[i] = authn.NewCache(backends[i], time.Hour, 0)
		waitReady(t, NewAuthInvalidation(client, nil).OnChannel(channel).Subscribe(ctx, caches[i], nil))
	}
	fill := func() {
		for _, c := range caches {
			for _, tok := range []string{tokA, tokB} {
				if _, err := c.Authenticate(ctx, tok, authn.Client{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	fill()
	for i, c := range caches {
		if c.Len() != 2 || backends[i].calls.Load() != 2 {
			t.Fatalf("replica %d: len %d calls %d", i, c.Len(), backends[i].calls.Load())
		}
	}

	// A third process (the auth CLI) rotates tokA.
	pub := NewAuthInvalidation(redistest.New(t), nil).OnChannel(channel)
	if err := pub.Invalidate(ctx, hashOf(tokA)); err != nil {
		t.Fatal(err)
	}
	for i, c := range caches {
		testsupport.Eventually(t, 5*time.Second, "invalidation on every replica", func() bool { return c.Len() == 1 })
		// tokB is still cached, tokA goes upstream again.
		_, _ = c.Authenticate(ctx, tokB, authn.Client{})
		_, _ = c.Authenticate(ctx, tokA, authn.Client{})
		if got := backends[i].calls.Load(); got != 3 {
			t.Fatalf("replica %d: calls %d, want 3", i, got)
		}
	}

	// Garbage on the channel is ignored; "*" empties everything.
	if err := client.Publish(ctx, channel, "not-a-hash").Err(); err != nil {
		t.Fatal(err)
	}
	if err := pub.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range caches {
		testsupport.Eventually(t, 5*time.Second, "invalidate all", func() bool { return c.Len() == 0 })
	}
}

func TestAuthInvalidationLocalCacheFirst(t *testing.T) {
	// With Redis unreachable the publishing replica's own cache is still
	// invalidated, and the error is reported.
	cache := authn.NewCache(&countingAuth{}, time.Hour, 0)
	_, _ = cache.Authenticate(context.Background(), tokA, authn.Client{})
	dead := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer dead.Close()
	inv := NewAuthInvalidation(dead, cache)
	if err := inv.Invalidate(context.Background(), hashOf(tokA)); err == nil {
		t.Fatal("want an error from an unreachable Redis")
	}
	if cache.Len() != 0 {
		t.Fatal("local cache not invalidated")
	}
}

func TestAuthSubscriberDropsCacheOnReconnect(t *testing.T) {
	old := pingEvery
	pingEvery = 200 * time.Millisecond
	t.Cleanup(func() { pingEvery = old })

	opts := redistest.Options(t)
	admin := redistest.NewWith(t, opts)
	channel := redistest.Namespace(t, admin) + "auth"
	named := *opts
	named.ClientName = "brokkr_test_sub_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	subClient := redistest.NewWith(t, &named)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend := &countingAuth{}
	cache := authn.NewCache(backend, time.Hour, 0)
	sub := NewAuthInvalidation(subClient, nil).OnChannel(channel).Subscribe(ctx, cache, nil)
	waitReady(t, sub)
	_, _ = cache.Authenticate(ctx, tokA, authn.Client{})
	if cache.Len() != 1 {
		t.Fatal("not cached")
	}

	// Simulate an outage of this subscriber's connection only.
	killed := killClients(t, admin, named.ClientName)
	if killed == 0 {
		t.Fatal("no connection to kill")
	}
	testsupport.Eventually(t, 5*time.Second, "cache dropped after losing the subscription", func() bool { return cache.Len() == 0 })
	testsupport.Eventually(t, 5*time.Second, "resubscribed", sub.Subscribed)

	// Caching and invalidation work again after the reconnect.
	testsupport.Eventually(t, 5*time.Second, "caching resumed", func() bool {
		_, _ = cache.Authenticate(ctx, tokB, authn.Client{})
		return cache.Len() == 1
	})
	if err := NewAuthInvalidation(admin, nil).OnChannel(channel).Invalidate(ctx, hashOf(tokB)); err != nil {
		t.Fatal(err)
	}
	testsupport.Eventually(t, 5*time.Second, "invalidation after reconnect", func() bool { return cache.Len() == 0 })

	cancel()
	select {
	case <-sub.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber did not stop")
	}
}

func TestAuthSubscriberBypassesUntilSubscribed(t *testing.T) {
	// Redis down from the start: the cache is never used.
	dead := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer dead.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backend := &countingAuth{}
	cache := authn.NewCache(backend, time.Hour, 0)
	sub := SubscribeAuthInvalidation(ctx, dead, cache, nil)
	for i := 0; i < 3; i++ {
		_, _ = cache.Authenticate(ctx, tokA, authn.Client{})
	}
	if cache.Len() != 0 || backend.calls.Load() != 3 || sub.Subscribed() {
		t.Fatalf("len %d calls %d subscribed %v", cache.Len(), backend.calls.Load(), sub.Subscribed())
	}
	cancel()
	<-sub.Done()
}

func killClients(t *testing.T, c *goredis.Client, name string) int {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		var id, cname string
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "id":
				id = v
			case "name":
				cname = v
			}
		}
		if cname == name && id != "" {
			if err := c.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

func TestFailureCounterWindow(t *testing.T) {
	client := redistest.New(t)
	fc := NewFailureCounter(client, redistest.Namespace(t, client)+"fail:")
	ctx := context.Background()
	if n, _, err := fc.Failures(ctx, "10.0.0.1"); err != nil || n != 0 {
		t.Fatalf("fresh: %d %v", n, err)
	}
	for i := int64(1); i <= 3; i++ {
		n, ttl, err := fc.AddFailure(ctx, "10.0.0.1", time.Second)
		if err != nil || n != i || ttl <= 0 || ttl > time.Second {
			t.Fatalf("add %d: n %d ttl %v err %v", i, n, ttl, err)
		}
	}
	n, ttl, err := fc.Failures(ctx, "10.0.0.1")
	if err != nil || n != 3 || ttl <= 0 || ttl > time.Second {
		t.Fatalf("failures: %d %v %v", n, ttl, err)
	}
	// Another client has its own count; the window is fixed, not sliding.
	if n, _, _ := fc.Failures(ctx, "10.0.0.2"); n != 0 {
		t.Fatal("counts leak between clients")
	}
	time.Sleep(1100 * time.Millisecond)
	if n, _, err := fc.Failures(ctx, "10.0.0.1"); err != nil || n != 0 {
		t.Fatalf("after window: %d %v", n, err)
	}
	if n, _, _ := fc.AddFailure(ctx, "10.0.0.1", time.Second); n != 1 {
		t.Fatalf("new window starts at %d", n)
	}
}
