package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/authclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/auth/internal/httpapi"
)

const (
	wellKnownPAK  = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	wellKnownHash = "4c697273df3d764cba950bb5c04368097685f09259f5bd880d892cf1ff9f4cdd"
)

type env struct {
	url    string
	client *authclient.Client
	store  *postgres.Store
	redis  *redis.AuthInvalidation
}

// start runs the auth service's HTTP API on real PostgreSQL and Redis with
// the given throttling, the admin bootstrapped from the well-known hash.
func start(t *testing.T, limit int, window time.Duration) env {
	t.Helper()
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	rdb := redistest.New(t)
	ns := redistest.Namespace(t, rdb)
	issuer := &pak.Issuer{Cfg: pak.DefaultConfig}
	admin, err := paks.NewAdmin(st, st, postgres.NewPAKs(st), issuer, nil, paks.AdminConfig{PinnedHash: wellKnownHash}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	verifier := paks.NewVerifier(postgres.NewPAKs(st), st, redis.NewFailureCounter(rdb, ns+"fail:"),
		paks.ThrottleConfig{FailureLimit: limit, FailureWindow: window}, nil)
	reg := httpserver.NewRegistry()
	verifications, err := httpapi.NewVerificationMetric(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := httpserver.New(httpserver.Options{Service: "brokkr-auth", Registry: reg})
	httpserver.Mount(e, httpserver.Ops{
		Ready: []httpserver.Check{
			{Name: "database", Probe: func(ctx context.Context) error { return postgres.Ping(ctx, db) }},
			{Name: "redis", Probe: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		},
		Metrics: reg,
	})
	httpapi.Register(e, httpapi.Handlers{Verifier: verifier, Issuer: issuer, Verifications: verifications})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return env{url: srv.URL, client: authclient.New(srv.URL), store: st,
		redis: redis.NewAuthInvalidation(rdb, nil).OnChannel(ns + "auth")}
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestVerifyEndToEnd(t *testing.T) {
	e := start(t, 100, time.Minute)
	ctx := context.Background()

	// Issue a PAK over HTTP, give it to an agent, and verify it.
	p, hash, err := e.client.Issue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var agentID uuid.UUID
	if err := e.store.DB().Get(&agentID, `INSERT INTO agents (name, cluster_name, pak_hash) VALUES ('a', 'c', $1) RETURNING id`, hash); err != nil {
		t.Fatal(err)
	}
	genPAK, genHash, _ := e.client.Issue(ctx)
	var genID uuid.UUID
	if err := e.store.DB().Get(&genID, `INSERT INTO generators (name, pak_hash) VALUES ('g', $1) RETURNING id`, genHash); err != nil {
		t.Fatal(err)
	}

	cases := map[string]identity.Principal{
		wellKnownPAK:                identity.Admin,
		"Bearer " + wellKnownPAK:    identity.Admin,
		p.Reveal():                  identity.Agent(agentID),
		"Bearer " + genPAK.Reveal(): identity.Generator(genID),
	}
	for tok, want := range cases {
		got, err := e.client.Authenticate(ctx, tok, authn.Client{IP: "198.51.100.1"})
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", tok, got, err)
		}
	}
	for _, bad := range []string{"", "garbage", "Bearer foo", "a_b_c_d", "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U9"} {
		if _, err := e.client.Authenticate(ctx, bad, authn.Client{IP: "198.51.100.1"}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("%q: %v", bad, err)
		}
	}

	// The wire format, as api and operators see it.
	resp, body := post(t, e.url+authclient.VerifyPath, `{"token":"`+wellKnownPAK+`","client_ip":"198.51.100.1","user_agent":"curl"}`)
	if resp.StatusCode != 200 || body != `{"role":"admin","id":null,"admin":true,"agent":null,"generator":null}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = post(t, e.url+authclient.VerifyPath, `{"token":"nope","client_ip":"198.51.100.1"}`)
	if resp.StatusCode != 401 || body != `{"code":"unauthorized","error":"invalid PAK","message":"invalid PAK"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = post(t, e.url+authclient.VerifyPath, `{"token":`)
	if resp.StatusCode != 400 || !strings.Contains(body, `"error"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = post(t, e.url+authclient.IssuePath, `{}`)
	var ir authclient.IssueResponse
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &ir) != nil || !strings.HasPrefix(ir.PAK, "brokkr_BR") || !pak.IsHash(ir.Hash) ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}

	// Ops routes.
	for path, want := range map[string]string{"/healthz": "OK", "/readyz": "Ready"} {
		r, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || string(b) != want {
			t.Fatalf("%s: %d %s", path, r.StatusCode, b)
		}
	}
	r, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), `brokkr_auth_verifications_total{result="admin"}`) ||
		!strings.Contains(string(b), `brokkr_auth_verifications_total{result="unauthenticated"}`) ||
		strings.Contains(string(b), "GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8") {
		t.Fatalf("metrics:\n%s", b)
	}
}

func TestThrottlingEndToEnd(t *testing.T) {
	e := start(t, 3, 2*time.Second)
	ctx := context.Background()
	nat := authn.Client{IP: "203.0.113." + uuid.NewString()[:3]}
	for i := 0; i < 3; i++ {
		if _, err := e.client.Authenticate(ctx, "a_b_wrong", nat); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatal(i, err)
		}
	}
	// Further failures from this address are throttled, with Retry-After.
	_, err := e.client.Authenticate(ctx, "a_c_wrong", nat)
	if d, ok := authn.RetryAfter(err); !errors.Is(err, domain.ErrThrottled) || !ok || d < time.Second || d > 2*time.Second {
		t.Fatalf("%v retry-after %v", err, d)
	}
	resp, body := post(t, e.url+authclient.VerifyPath, `{"token":"x_y_wrong","client_ip":"`+nat.IP+`"}`)
	// The body carries the same wait as the header (as the api's 429 does).
	if resp.StatusCode != 429 || body != `{"code":"rate_limited","details":{"retry_after":`+resp.Header.Get("Retry-After")+
		`},"error":"too many failed attempts","message":"too many failed attempts","retry_after":`+resp.Header.Get("Retry-After")+`}` ||
		resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %s %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// But a valid PAK from the same address is never refused (issue 10
	// item 3: one bad client behind a NAT must not lock out the fleet).
	for i := 0; i < 5; i++ {
		if p, err := e.client.Authenticate(ctx, wellKnownPAK, nat); err != nil || p != identity.Admin {
			t.Fatalf("valid PAK behind a throttled address: %v %v", p, err)
		}
	}
	// The window ends and failures are plain 401s again.
	time.Sleep(2100 * time.Millisecond)
	if _, err := e.client.Authenticate(ctx, "a_b_wrong", nat); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("not recovered: %v", err)
	}
}

func TestCacheInFrontOfService(t *testing.T) {
	// api's stack: Cache → authclient → auth service, with invalidation
	// through Redis after a rotation.
	e := start(t, 100, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cache := authn.NewCache(e.client, time.Hour, 0)
	<-e.redis.Subscribe(ctx, cache, nil).Ready()

	p, hash, _ := e.client.Issue(ctx)
	var id uuid.UUID
	if err := e.store.DB().Get(&id, `INSERT INTO agents (name, cluster_name, pak_hash) VALUES ('a', 'c', $1) RETURNING id`, hash); err != nil {
		t.Fatal(err)
	}
	if got, err := cache.Authenticate(ctx, p.Reveal(), authn.Client{}); err != nil || got != identity.Agent(id) {
		t.Fatal(got, err)
	}
	// Rotate in the database; the cache still answers until invalidated.
	if _, err := e.store.DB().Exec(`UPDATE agents SET pak_hash = 'x' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Authenticate(ctx, p.Reveal(), authn.Client{}); err != nil {
		t.Fatal("expected a cache hit before invalidation")
	}
	if err := e.redis.Invalidate(ctx, hash); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cache.Authenticate(ctx, p.Reveal(), authn.Client{})
		if errors.Is(err, domain.ErrUnauthenticated) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated PAK still accepted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
