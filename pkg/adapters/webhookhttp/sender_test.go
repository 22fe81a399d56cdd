package webhookhttp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

func TestSendHeadersBodyAndSignature(t *testing.T) {
	type seen struct {
		header http.Header
		body   []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Clone(), b}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte("thanks"))
	}))
	defer srv.Close()
	s := New(Options{AllowPrivate: true})
	defer s.Close()
	body := []byte(`{"id":"e","event_type":"stack.created","timestamp":"t","data":{}}`)
	res := s.Send(context.Background(), Request{URL: secret.String(srv.URL + "/hook?token=abc"),
		AuthHeader: "Bearer s3cret", SigningSecret: "sign-key", EventType: "stack.created",
		DeliveryID: "d-1", Body: body, Timeout: 5 * time.Second})
	if res.StatusCode != 202 || res.Error != "" || string(res.Body) != "thanks" {
		t.Fatalf("result %+v", res)
	}
	r := <-got
	checks := map[string]string{
		"Content-Type":           "application/json",
		webhook.HeaderEventType:  "stack.created",
		webhook.HeaderDeliveryID: "d-1",
		"Authorization":          "Bearer s3cret",
		webhook.HeaderSignature:  webhook.Sign([]byte("sign-key"), body),
	}
	for k, want := range checks {
		if v := r.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if string(r.body) != string(body) {
		t.Errorf("body %s", r.body)
	}

	// Without auth header and secret, neither header is sent.
	res = s.Send(context.Background(), Request{URL: secret.String(srv.URL), EventType: "x", Body: body, Timeout: time.Second})
	r = <-got
	if r.header.Get("Authorization") != "" || r.header.Get(webhook.HeaderSignature) != "" || res.StatusCode != 202 {
		t.Errorf("unexpected headers %v", r.header)
	}
}

func TestGuardRefusesLoopbackUnlessAllowed(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	guarded := New(Options{})
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/x", "http://[::ffff:127.0.0.1]:" + port} {
		res := guarded.Send(context.Background(), Request{URL: secret.String(u), Body: []byte("{}"), Timeout: 2 * time.Second})
		if res.StatusCode != 0 || res.Error != "destination address not allowed (loopback)" || !res.Refused ||
			res.Verdict() != webhook.Rejected {
			t.Errorf("%s: %+v", u, res)
		}
		if strings.Contains(res.Error, port) || strings.Contains(res.Error, "localhost") {
			t.Errorf("error names the destination: %q", res.Error)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver was reached %d times", n)
	}
	open := New(Options{AllowPrivate: true})
	if res := open.Send(context.Background(), Request{URL: secret.String(srv.URL), Body: []byte("{}"), Timeout: 2 * time.Second}); res.StatusCode != 200 {
		t.Fatalf("allow-private: %+v", res)
	}
}

func TestForbidden(t *testing.T) {
	cases := map[string]string{
		"127.0.0.1":         "loopback",
		"127.5.6.7":         "loopback",
		"::1":               "loopback",
		"::ffff:127.0.0.1":  "loopback",
		"64:ff9b::7f00:1":   "loopback",
		"169.254.169.254":   "metadata",
		"169.254.10.1":      "link-local",
		"fe80::1":           "link-local",
		"fd00:ec2::254":     "metadata",
		"100.100.100.200":   "metadata",
		"0.0.0.0":           "unspecified",
		"0.1.2.3":           "unspecified",
		"::":                "unspecified",
		"10.0.0.1":          "",
		"192.168.1.10":      "",
		"172.16.0.1":        "",
		"8.8.8.8":           "",
		"2606:4700::1111":   "",
		"::ffff:10.1.2.3":   "",
		"64:ff9b::808:808":  "",
		"100.100.100.201":   "",
		"fd00:ec2::253":     "",
		"169.254.169.254.1": "skip",
	}
	for s, want := range cases {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			if want != "skip" {
				t.Errorf("parse %s: %v", s, err)
			}
			continue
		}
		if got := Forbidden(ip); got != want {
			t.Errorf("Forbidden(%s) = %q, want %q", s, got, want)
		}
	}
}

func TestNoRedirects(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Store(true) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	res := New(Options{AllowPrivate: true}).Send(context.Background(), Request{URL: secret.String(srv.URL), Body: []byte("{}"), Timeout: 2 * time.Second})
	if res.StatusCode != http.StatusTemporaryRedirect || followed.Load() {
		t.Fatalf("redirect followed or not reported: %+v followed=%v", res, followed.Load())
	}
	if webhook.Classify(res.StatusCode) != webhook.Rejected {
		t.Fatal("an unfollowed redirect is not retryable")
	}
}

func TestTransportErrorsAreGeneric(t *testing.T) {
	s := New(Options{AllowPrivate: true})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	res := s.Send(context.Background(), Request{URL: secret.String(slow.URL + "/secret-path"), Body: []byte("{}"), Timeout: 200 * time.Millisecond})
	if res.StatusCode != 0 || res.Error != "request timed out" || res.Duration < 200*time.Millisecond {
		t.Errorf("timeout: %+v", res)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	res = s.Send(context.Background(), Request{URL: secret.String("http://" + addr + "/secret-path"), Body: []byte("{}"), Timeout: 2 * time.Second})
	if res.Error != "connection refused" {
		t.Errorf("refused: %+v", res)
	}

	res = s.Send(context.Background(), Request{URL: "http://bad host/secret-path", Body: []byte("{}"), Timeout: time.Second})
	if res.Error != "invalid URL" {
		t.Errorf("invalid URL: %+v", res)
	}
	res = s.Send(context.Background(), Request{URL: "http://no-such-host.invalid/secret-path", Body: []byte("{}"), Timeout: 5 * time.Second})
	if res.StatusCode != 0 || strings.Contains(res.Error, "no-such-host") || strings.Contains(res.Error, "secret-path") {
		t.Errorf("DNS failure: %+v", res)
	}
}
