// Package redistest connects tests to the real Redis
// (docs/architecture.md#tests) and gives each test its own namespace for keys
// and pub/sub channels, so test processes running in parallel never see each
// other's data.
//
// BROKKR_TEST_REDIS_URL overrides the server (default
// redis://127.0.0.1:6379/0). With -short, tests that need Redis are skipped.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable that overrides the server URL.
const EnvURL = "BROKKR_TEST_REDIS_URL"

// DefaultURL is the local development server.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL is the server used by tests.
func URL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Options returns client options for the test server; tests that need a
// second client (or a named one, to kill its connections) start from here.
func Options(t testing.TB) *goredis.Options {
	t.Helper()
	if testing.Short() {
		t.Skip("redistest: Redis tests skipped with -short")
	}
	opts, err := goredis.ParseURL(URL())
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvURL, err)
	}
	return opts
}

// New returns a client on the test server, closed when t ends.
func New(t testing.TB) *goredis.Client {
	t.Helper()
	return NewWith(t, Options(t))
}

// NewWith returns a client with opts, checked with PING and closed when t
// ends.
func NewWith(t testing.TB, opts *goredis.Options) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("redistest: cannot reach Redis at %s (set %s, or start tools/devenv): %v", opts.Addr, EnvURL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Namespace returns a unique prefix ("brokkr_test_<hex>:") for the test's
// keys and channels; keys under it are deleted when t ends.
func Namespace(t testing.TB, c *goredis.Client) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	ns := "brokkr_test_" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, ns+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return ns
}
