package authn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

// fakeAuth resolves tokens from a map keyed by the long token's hash.
type fakeAuth struct {
	mu    sync.Mutex
	known map[string]identity.Principal
	calls int
	hook  func() // runs inside Authenticate, before answering
}

func (f *fakeAuth) Authenticate(_ context.Context, token string, _ Client) (identity.Principal, error) {
	f.mu.Lock()
	f.calls++
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	long, err := pak.ParseHeader(token)
	if err != nil {
		return identity.Principal{}, Unauthenticated()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.known[pak.Hash(long)]
	if !ok {
		return identity.Principal{}, Unauthenticated()
	}
	return p, nil
}

func (f *fakeAuth) set(token string, p *identity.Principal) {
	long, _ := pak.ParseHeader(token)
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == nil {
		delete(f.known, pak.Hash(long))
	} else {
		f.known[pak.Hash(long)] = *p
	}
}

func (f *fakeAuth) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func hashOf(token string) string { long, _ := pak.ParseHeader(token); return pak.Hash(long) }

func TestCacheHitsAndTTL(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	tok := "brokkr_BRabc_abc123"
	agent := identity.Agent(uuid.New())
	f.set(tok, &agent)

	c := NewCache(f, time.Minute, 0)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		p, err := c.Authenticate(ctx, "Bearer "+tok, Client{})
		if err != nil || p != agent {
			t.Fatalf("got %v, %v", p, err)
		}
	}
	if f.count() != 1 {
		t.Fatalf("calls = %d, want 1", f.count())
	}
	// The key is the hash of the long token: a different header form of
	// the same PAK hits the same entry, and the plain token is not a key.
	if _, err := c.Authenticate(ctx, "  bearer "+tok+" ", Client{}); err != nil || f.count() != 1 {
		t.Fatalf("want a hit for the same PAK (calls %d, %v)", f.count(), err)
	}
	if _, ok := c.entries[tok]; ok {
		t.Fatal("plain token used as key")
	}
	if _, ok := c.entries[hashOf(tok)]; !ok {
		t.Fatal("entry not keyed by hash")
	}
	now = now.Add(time.Minute)
	if _, err := c.Authenticate(ctx, tok, Client{}); err != nil || f.count() != 2 {
		t.Fatalf("want a miss after the TTL (calls %d, %v)", f.count(), err)
	}
}

func TestCacheNeverCachesFailures(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	c := NewCache(f, time.Minute, 0)
	for _, tok := range []string{"a_b_c", "a_b_c", "garbage", "garbage"} {
		if _, err := c.Authenticate(context.Background(), tok, Client{}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("%q: %v", tok, err)
		}
	}
	if f.count() != 4 || c.Len() != 0 {
		t.Fatalf("calls %d, len %d", f.count(), c.Len())
	}
}

func TestCacheDisabled(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	f.set("a_b_c", &identity.Admin)
	c := NewCache(f, 0, 0)
	for i := 0; i < 3; i++ {
		if _, err := c.Authenticate(context.Background(), "a_b_c", Client{}); err != nil {
			t.Fatal(err)
		}
	}
	if f.count() != 3 || c.Len() != 0 {
		t.Fatalf("calls %d, len %d", f.count(), c.Len())
	}
	c.SetTTL(time.Minute)
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	if f.count() != 4 {
		t.Fatalf("calls %d after enabling", f.count())
	}
	c.SetTTL(0)
	if c.Len() != 0 {
		t.Fatal("SetTTL(0) keeps entries")
	}
}

func TestCacheInvalidate(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	gen := identity.Generator(uuid.New())
	f.set("a_b_one", &gen)
	f.set("a_b_two", &identity.Admin)
	c := NewCache(f, time.Hour, 0)
	ctx := context.Background()
	_, _ = c.Authenticate(ctx, "a_b_one", Client{})
	_, _ = c.Authenticate(ctx, "a_b_two", Client{})

	// Rotation: the old PAK is gone upstream and dropped from the cache.
	f.set("a_b_one", nil)
	c.Invalidate(hashOf("a_b_one"))
	if _, err := c.Authenticate(ctx, "a_b_one", Client{}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("old PAK still works: %v", err)
	}
	if _, err := c.Authenticate(ctx, "a_b_two", Client{}); err != nil || f.count() != 3 {
		t.Fatalf("other entry lost (calls %d, %v)", f.count(), err)
	}
	c.InvalidateAll()
	if c.Len() != 0 {
		t.Fatal("InvalidateAll kept entries")
	}
}

func TestCacheInvalidationRacesInFlight(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	f.set("a_b_c", &identity.Admin)
	c := NewCache(f, time.Hour, 0)
	// The rotation lands while the verification is in flight: its answer
	// must not be cached.
	f.hook = func() { c.Invalidate(hashOf("a_b_c")) }
	if _, err := c.Authenticate(context.Background(), "a_b_c", Client{}); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Fatal("stale answer cached")
	}
}

func TestCacheBypass(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	f.set("a_b_c", &identity.Admin)
	c := NewCache(f, time.Hour, 0)
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	c.SetBypass(true)
	if c.Len() != 0 {
		t.Fatal("bypass kept entries")
	}
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	if f.count() != 3 || c.Len() != 0 {
		t.Fatalf("calls %d len %d", f.count(), c.Len())
	}
	c.SetBypass(false)
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	_, _ = c.Authenticate(context.Background(), "a_b_c", Client{})
	if f.count() != 4 {
		t.Fatalf("calls %d", f.count())
	}
}

func TestCacheCapacity(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	for i := 0; i < 20; i++ {
		f.set(tok(i), &identity.Admin)
	}
	c := NewCache(f, time.Hour, 5)
	for i := 0; i < 20; i++ {
		_, _ = c.Authenticate(context.Background(), tok(i), Client{})
		if c.Len() > 5 {
			t.Fatalf("len %d > capacity", c.Len())
		}
	}
	// The newest entries survive.
	before := f.count()
	_, _ = c.Authenticate(context.Background(), tok(19), Client{})
	if f.count() != before {
		t.Fatal("newest entry evicted")
	}
}

func TestCacheConcurrent(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	for i := 0; i < 50; i++ {
		f.set(tok(i), &identity.Admin)
	}
	c := NewCache(f, time.Hour, 20)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				token := tok((i*7 + w) % 50)
				if _, err := c.Authenticate(context.Background(), token, Client{}); err != nil {
					t.Error(err)
					return
				}
				if i%97 == 0 {
					c.Invalidate(hashOf(token))
				}
				if i%251 == 0 {
					c.InvalidateAll()
				}
			}
		}(w)
	}
	wg.Wait()
}

func TestThrottledRetryAfter(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Throttled(1500*time.Millisecond))
	if !errors.Is(err, domain.ErrThrottled) {
		t.Fatal("kind")
	}
	d, ok := RetryAfter(err)
	if !ok || d != 2*time.Second {
		t.Fatalf("retry after %v %v", d, ok)
	}
	if _, ok := RetryAfter(Unauthenticated()); ok {
		t.Fatal("401 has no retry-after")
	}
	if Seconds(0) != 1 || Seconds(time.Second) != 1 || Seconds(time.Second+1) != 2 {
		t.Fatal("Seconds")
	}
}

// tok returns a distinct well-formed token (base58 has no '0').
func tok(i int) string {
	return "a_b_t" + string("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"[i])
}

// Issue 10 item 6: a cached verification answers only the exact PAK that
// verified; the same long token under another prefix or short token goes
// to the auth service (which refuses it).
func TestCacheKeysOnThePublicPartToo(t *testing.T) {
	f := &fakeAuth{known: map[string]identity.Principal{}}
	c := NewCache(f, time.Minute, 10)
	good := "brokkr_BRabc123_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	f.set(good, &identity.Admin)
	if _, err := c.Authenticate(context.Background(), good, Client{}); err != nil {
		t.Fatal(err)
	}
	f.set(good, nil) // the auth service would refuse any other public part
	if _, err := c.Authenticate(context.Background(), "x_y_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8", Client{}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("forged public part answered from the cache: %v", err)
	}
	if _, err := c.Authenticate(context.Background(), good, Client{}); err != nil {
		t.Fatalf("the real PAK lost its entry: %v", err)
	}
}
