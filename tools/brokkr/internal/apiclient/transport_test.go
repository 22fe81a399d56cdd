package apiclient

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServerURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000", ""},
		{"http://127.0.0.1:3000/", "http://127.0.0.1:3000", ""},
		{"http://127.0.0.1:3000/api/v1", "http://127.0.0.1:3000", ""},
		{"https://b.example.com/api/v1/", "https://b.example.com", ""},
		{"https://b.example.com/prefix/api/v1", "https://b.example.com/prefix", ""},
		{" https://b.example.com ", "https://b.example.com", ""},
		{"", "", "no broker URL"},
		{"b.example.com", "", "not an http(s) URL"},
		{"ftp://b.example.com", "", "not an http(s) URL"},
		{"https://user:pw@b.example.com", "", "credentials"},
	} {
		got, err := ServerURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ServerURL(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ServerURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

type seen struct {
	mu    sync.Mutex
	reqs  []*http.Request
	keys  []string
	auths []string
	paths []string
}

func (s *seen) add(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, r)
	s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
	s.auths = append(s.auths, r.Header.Get("Authorization"))
	s.paths = append(s.paths, r.URL.Path)
}

// A 503 is retried after Retry-After with the same Idempotency-Key and body;
// the next create gets a fresh key.
func TestRetry503HonoursRetryAfterAndReusesKey(t *testing.T) {
	var s seen
	calls := 0
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.add(r)
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		calls++
		if calls <= 2 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"error":"auth service unavailable"}`))
			return
		}
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"id":"5f0e8f4e-4d0a-4c36-9d55-8f7e5f9f2b10","name":"s"}`))
	}))
	defer srv.Close()
	var waits []time.Duration
	c, err := New(Options{BrokerURL: srv.URL + "/api/v1", PAK: "brokkr_BRabcdef_secret", MaxRetryWait: 5 * time.Second,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := Decode[Stack](c.CreateStack(context.Background(), nil, CreateStackRequest{Name: "s"}))
	if err != nil || st.Name != "s" {
		t.Fatalf("create after two 503s: %v %+v", err, st)
	}
	if len(s.keys) != 3 || s.keys[0] == "" || s.keys[0] != s.keys[1] || s.keys[1] != s.keys[2] {
		t.Fatalf("idempotency keys across retries: %q", s.keys)
	}
	if bodies[0] != bodies[2] || !strings.Contains(bodies[2], `"name":"s"`) {
		t.Fatalf("retried body differs: %q", bodies)
	}
	// Retry-After 7 s is capped by MaxRetryWait.
	if len(waits) != 2 || waits[0] != 5*time.Second {
		t.Fatalf("waits %v, want two of 5s", waits)
	}
	if s.auths[0] != "Bearer brokkr_BRabcdef_secret" || s.paths[0] != "/api/v1/stacks" {
		t.Fatalf("auth %q path %q", s.auths[0], s.paths[0])
	}
	if _, _, err := Decode[Stack](c.CreateStack(context.Background(), nil, CreateStackRequest{Name: "s"})); err != nil {
		t.Fatal(err)
	}
	if s.keys[3] == "" || s.keys[3] == s.keys[0] {
		t.Fatalf("second create reused the key: %q", s.keys)
	}
	// GETs carry no key.
	_, _ = Read(c.ListStacks(context.Background(), nil))
	if s.keys[4] != "" {
		t.Fatalf("GET sent an Idempotency-Key")
	}
}

// Retries are bounded: a broker that always answers 503 yields the 503.
func TestRetryBounded(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.WriteHeader(503)
		_, _ = w.Write([]byte(`{"error":"overloaded"}`))
	}))
	defer srv.Close()
	c, _ := New(Options{BrokerURL: srv.URL, PAK: "p", MaxAttempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }})
	_, err := Read(c.ListAgents(context.Background()))
	if n != 3 || !IsStatus(err, 503) || !strings.Contains(err.Error(), "overloaded (503 Service Unavailable)") {
		t.Fatalf("attempts %d err %v", n, err)
	}
}

// A refused connection is retried (the broker may be restarting).
func TestRetryConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tries := 0
	var srv *http.Server
	c, _ := New(Options{BrokerURL: "http://" + addr, PAK: "p", Sleep: func(context.Context, time.Duration) error {
		tries++
		if tries == 2 && srv == nil {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return nil
			}
			srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`[]`)) })}
			go func() { _ = srv.Serve(l) }()
		}
		return nil
	}})
	body, err := Read(c.ListAgents(context.Background()))
	if srv != nil {
		defer srv.Close()
	}
	if err != nil || string(body) != "[]" || tries < 2 {
		t.Fatalf("after the broker came up: %q %v (tries %d)", body, err, tries)
	}
}

// --debug prints requests without the PAK.
func TestDebugRedactsAuthorization(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`[]`)) }))
	defer srv.Close()
	var dbg bytes.Buffer
	pak := "brokkr_BRabcdef_TheSecretLongToken0123456789"
	c, _ := New(Options{BrokerURL: srv.URL, PAK: pak, Debug: &dbg})
	if _, err := Read(c.ListAgents(context.Background())); err != nil {
		t.Fatal(err)
	}
	out := dbg.String()
	if strings.Contains(out, "TheSecret") || !strings.Contains(out, "Authorization: REDACTED") || !strings.Contains(out, "GET "+srv.URL+"/api/v1/agents") {
		t.Fatalf("debug output:\n%s", out)
	}
}

func TestParseError(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{404, `{"error":"Stack not found"}`, "Stack not found (404 Not Found)"},
		{409, `{"error":"x","code":"already_registered","message":"agent already registered"}`, "agent already registered (409 Conflict)"},
		{401, `{"error":"Invalid PAK"}`, "Invalid PAK (401 Unauthorized); hint: the PAK is missing, malformed or unknown: run `brokkr login`"},
		{502, `<html>bad gateway</html>`, "<html>bad gateway</html> (502 Bad Gateway)"},
	} {
		got := ParseError(tc.status, []byte(tc.body)).Error()
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("ParseError(%d, %s) = %q, want prefix %q", tc.status, tc.body, got, tc.want)
		}
	}
}

// Redirects are not followed: the PAK must not travel to another host.
func TestNoRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed with Authorization %q", r.Header.Get("Authorization"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer srv.Close()
	c, _ := New(Options{BrokerURL: srv.URL, PAK: "p"})
	if _, err := Read(c.ListAgents(context.Background())); !IsStatus(err, 302) {
		t.Fatalf("redirect: %v", err)
	}
}
