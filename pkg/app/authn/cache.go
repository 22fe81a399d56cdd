package authn

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

// DefaultCacheCapacity is the original's cache size.
const DefaultCacheCapacity = 10000

// Cache is an Authenticator that remembers successful verifications for a
// TTL counted from insertion (the original's moka cache). Entries are keyed
// by the SHA-256 of the long token, never by the token itself, so a heap dump
// holds no usable credential. Failures are never cached, so throttling and
// failure audit happen in the auth service for every bad attempt.
type Cache struct {
	next Authenticator
	now  func() time.Time

	mu       sync.Mutex
	ttl      time.Duration
	capacity int
	bypass   bool
	// gen increases on every invalidation; a verification that started
	// before one is not cached, so a rotation racing an in-flight request
	// cannot resurrect the old PAK.
	gen     uint64
	entries map[string]*list.Element
	order   *list.List // insertion order = expiry order (same TTL for all)
}

type cacheEntry struct {
	hash string
	// public is the PAK's "<prefix>_<short>" part: an entry answers only
	// the exact PAK that verified, not one with the same long token and
	// another public part (which the auth service refuses).
	public    string
	principal identity.Principal
	expires   time.Time
}

// NewCache wraps next with a cache of ttl (0 disables caching) holding at
// most capacity entries (<= 0 means DefaultCacheCapacity).
func NewCache(next Authenticator, ttl time.Duration, capacity int) *Cache {
	if capacity <= 0 {
		capacity = DefaultCacheCapacity
	}
	return &Cache{
		next:     next,
		now:      time.Now,
		ttl:      ttl,
		capacity: capacity,
		entries:  make(map[string]*list.Element),
		order:    list.New(),
	}
}

// Authenticate answers from the cache when it can, else asks next and
// caches a success.
func (c *Cache) Authenticate(ctx context.Context, token string, client Client) (identity.Principal, error) {
	public, long, err := pak.Parse(token)
	if err != nil {
		// Malformed tokens still go to the auth service: it counts the
		// failure towards throttling and audits it.
		return c.next.Authenticate(ctx, token, client)
	}
	hash := pak.Hash(long)

	c.mu.Lock()
	if p, ok := c.getLocked(hash, public); ok {
		c.mu.Unlock()
		return p, nil
	}
	gen, enabled := c.gen, c.ttl > 0 && !c.bypass
	c.mu.Unlock()

	p, err := c.next.Authenticate(ctx, token, client)
	if err != nil || !enabled {
		return p, err
	}

	c.mu.Lock()
	if c.gen == gen && c.ttl > 0 && !c.bypass {
		c.putLocked(hash, public, p)
	}
	c.mu.Unlock()
	return p, nil
}

func (c *Cache) getLocked(hash, public string) (identity.Principal, bool) {
	el, ok := c.entries[hash]
	if !ok {
		return identity.Principal{}, false
	}
	e := el.Value.(*cacheEntry)
	if e.public != public {
		return identity.Principal{}, false
	}
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		return identity.Principal{}, false
	}
	return e.principal, true
}

func (c *Cache) putLocked(hash, public string, p identity.Principal) {
	now := c.now()
	if el, ok := c.entries[hash]; ok {
		c.removeLocked(el)
	}
	// Expired entries sit at the front; drop them, then the oldest live
	// ones while over capacity.
	for front := c.order.Front(); front != nil; front = c.order.Front() {
		if now.Before(front.Value.(*cacheEntry).expires) && c.order.Len() < c.capacity {
			break
		}
		c.removeLocked(front)
	}
	c.entries[hash] = c.order.PushBack(&cacheEntry{hash: hash, public: public, principal: p, expires: now.Add(c.ttl)})
}

func (c *Cache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).hash)
	c.order.Remove(el)
}

// Invalidate drops the given PAK hashes.
func (c *Cache) Invalidate(hashes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, h := range hashes {
		if el, ok := c.entries[h]; ok {
			c.removeLocked(el)
		}
	}
}

// InvalidateAll drops every entry (config reload, lost invalidation stream).
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.entries = make(map[string]*list.Element)
	c.order.Init()
}

// SetBypass turns caching off (and empties the cache) while invalidations
// cannot be received, e.g. while Redis is unreachable; SetBypass(false)
// turns it back on.
func (c *Cache) SetBypass(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.bypass = on
	if on {
		c.entries = make(map[string]*list.Element)
		c.order.Init()
	}
}

// SetTTL changes the TTL of future entries (hot reload); 0 disables the
// cache and empties it. Existing entries keep their expiry.
func (c *Cache) SetTTL(ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ttl = ttl
	if ttl <= 0 {
		c.gen++
		c.entries = make(map[string]*list.Element)
		c.order.Init()
	}
}

// Len is the number of entries held (expired ones included until evicted).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
