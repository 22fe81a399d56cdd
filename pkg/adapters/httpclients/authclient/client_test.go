package authclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

func TestVerifyResponseRoundTrip(t *testing.T) {
	for _, p := range []identity.Principal{identity.Admin, identity.Agent(uuid.New()), identity.Generator(uuid.New())} {
		b, _ := json.Marshal(NewVerifyResponse(p))
		var vr VerifyResponse
		if err := json.Unmarshal(b, &vr); err != nil {
			t.Fatal(err)
		}
		got, err := vr.Principal()
		if err != nil || got != p {
			t.Fatalf("%s: %+v %v", b, got, err)
		}
	}
	b, _ := json.Marshal(NewVerifyResponse(identity.Admin))
	if string(b) != `{"role":"admin","id":null,"admin":true,"agent":null,"generator":null}` {
		t.Fatalf("admin body %s", b)
	}
	for _, bad := range []VerifyResponse{{}, {Role: "agent"}, {Role: "generator", ID: &uuid.Nil}, {Role: "system"}, {Role: "admin"}} {
		if _, err := bad.Principal(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestAuthenticateStatusMapping(t *testing.T) {
	agentID := uuid.New()
	var last VerifyRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != VerifyPath || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&last)
		switch last.Token {
		case "ok":
			_ = json.NewEncoder(w).Encode(NewVerifyResponse(identity.Agent(agentID)))
		case "bad":
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid PAK"}`)
		case "slowdown":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		case "weird":
			_, _ = io.WriteString(w, `{"role":"agent"}`)
		case "garbage":
			_, _ = io.WriteString(w, `{`)
		default:
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"error":"boom"}`)
		}
	}))
	defer srv.Close()
	c := New(srv.URL + "/")
	ctx := context.Background()

	p, err := c.Authenticate(ctx, "ok", authn.Client{IP: "1.2.3.4", UserAgent: "ua"})
	if err != nil || p != identity.Agent(agentID) {
		t.Fatalf("%+v %v", p, err)
	}
	if last.ClientIP != "1.2.3.4" || last.UserAgent != "ua" {
		t.Fatalf("client not forwarded: %+v", last)
	}
	if _, err := c.Authenticate(ctx, "bad", authn.Client{}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatal(err)
	}
	_, err = c.Authenticate(ctx, "slowdown", authn.Client{})
	if d, ok := authn.RetryAfter(err); !errors.Is(err, domain.ErrThrottled) || !ok || d != 7*time.Second {
		t.Fatalf("%v %v", err, d)
	}
	for _, tok := range []string{"weird", "garbage", "other"} {
		if _, err := c.Authenticate(ctx, tok, authn.Client{}); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("%s: %v", tok, err)
		}
	}
}

func TestAuthenticateServiceDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := New("http://"+addr).Authenticate(context.Background(), "x", authn.Client{})
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatal(err)
	}
}

// flaky fails the first round trip with a connection error.
type flaky struct {
	calls atomic.Int32
	err   error
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.calls.Add(1) == 1 {
		return nil, f.err
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestRetriesOnceOnConnectionError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) == 0 {
			t.Error("retried request lost its body")
		}
		_ = json.NewEncoder(w).Encode(NewVerifyResponse(identity.Admin))
	}))
	defer srv.Close()

	refused := &flaky{err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	p, err := NewWith(srv.URL, refused, 0).Authenticate(context.Background(), "x", authn.Client{})
	if err != nil || p != identity.Admin || refused.calls.Load() != 2 {
		t.Fatalf("%v %v calls=%d", p, err, refused.calls.Load())
	}
	// A timeout is not retried: the service may be processing it.
	timeout := &flaky{err: context.DeadlineExceeded}
	if _, err := NewWith(srv.URL, timeout, 0).Authenticate(context.Background(), "x", authn.Client{}); !errors.Is(err, domain.ErrUnavailable) || timeout.calls.Load() != 1 {
		t.Fatalf("%v calls=%d", err, timeout.calls.Load())
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	start := time.Now()
	_, err := NewWith(srv.URL, nil, 50*time.Millisecond).Authenticate(context.Background(), "x", authn.Client{})
	if !errors.Is(err, domain.ErrUnavailable) || time.Since(start) > 250*time.Millisecond {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}

func TestIssue(t *testing.T) {
	good, goodHash, _ := pak.Generate(pak.DefaultConfig, randReader{})
	var answer IssueResponse
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != IssuePath {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(answer)
	}))
	defer srv.Close()
	c := New(srv.URL)

	answer = IssueResponse{PAK: good, Hash: goodHash}
	p, h, err := c.Issue(context.Background())
	if err != nil || p.Reveal() != good || h != goodHash {
		t.Fatalf("%v %v", h, err)
	}
	for _, bad := range []IssueResponse{{PAK: good, Hash: pak.Hash("x")}, {PAK: "nope", Hash: goodHash}, {}} {
		answer = bad
		if _, _, err := c.Issue(context.Background()); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

type randReader struct{}

func (randReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return len(b), nil
}
