package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/webhooks"
)

// pending is what the fake broker hands out: the contract's JSON.
type pending struct {
	ID             uuid.UUID  `json:"id"`
	SubscriptionID uuid.UUID  `json:"subscription_id"`
	EventType      string     `json:"event_type"`
	EventID        uuid.UUID  `json:"event_id"`
	Payload        string     `json:"payload"`
	URL            string     `json:"url"`
	AuthHeader     *string    `json:"auth_header"`
	SigningSecret  *string    `json:"signing_secret"`
	TimeoutSeconds int        `json:"timeout_seconds"`
	MaxRetries     int        `json:"max_retries"`
	Attempts       int        `json:"attempts"`
	AcquiredUntil  *time.Time `json:"acquired_until"`
}

type report struct {
	ID   uuid.UUID
	Body broker.WebhookResult
}

// fakeBroker serves the two agent routes of docs/webhooks.md.
type fakeBroker struct {
	*httptest.Server
	agentID uuid.UUID

	mu      sync.Mutex
	batches [][]pending
	claims  int
	reports []report
	// answer decides the status of a result report (default 200).
	answer func(n int, id uuid.UUID) int
	// clock is the broker's Date (default: now).
	clock func() time.Time
}

func newFakeBroker(t *testing.T) *fakeBroker {
	f := &fakeBroker{agentID: uuid.New()}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeBroker) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.clock != nil {
		now = f.clock()
	}
	w.Header().Set("Date", now.UTC().Format(http.TimeFormat))
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/v1/agents/"+f.agentID.String()+"/webhooks/pending":
		f.claims++
		out := []pending{}
		if len(f.batches) > 0 {
			out, f.batches = f.batches[0], f.batches[1:]
		}
		for i := range out {
			if out[i].AcquiredUntil == nil {
				until := now.Add(webhook.AgentLease)
				out[i].AcquiredUntil = &until
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/webhook-deliveries/"):
		id := uuid.MustParse(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/webhook-deliveries/"), "/result"))
		var body broker.WebhookResult
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.reports = append(f.reports, report{ID: id, Body: body})
		code := http.StatusOK
		if f.answer != nil {
			code = f.answer(len(f.reports), id)
		}
		if code != http.StatusOK {
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, `{"error":"answer %d"}`, code)
			return
		}
		status := "success"
		if !body.Success {
			status = "failed"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": status, "delivery_id": id})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeBroker) queue(batch ...pending) {
	f.mu.Lock()
	f.batches = append(f.batches, batch)
	f.mu.Unlock()
}

func (f *fakeBroker) snapshot() (claims int, reports []report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.claims, append([]report(nil), f.reports...)
}

func (f *fakeBroker) reportFor(id uuid.UUID) (broker.WebhookResult, int) {
	_, reps := f.snapshot()
	var last broker.WebhookResult
	n := 0
	for _, r := range reps {
		if r.ID == id {
			last, n = r.Body, n+1
		}
	}
	return last, n
}

// logBuffer collects the deliverer's log lines (JSON).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	t      *testing.T
	broker *fakeBroker
	logs   *logBuffer
	env    agent.Env
	reg    *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fb := newFakeBroker(t)
	bc, err := broker.New(fb.URL, secret.String("pak"), broker.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &fixture{t: t, broker: fb, logs: logs, reg: prometheus.NewRegistry(),
		env: agent.Env{AgentID: fb.agentID, Broker: bc, Logger: log}}
}

func (f *fixture) deliverer(opts webhooks.Options) *webhooks.Deliverer {
	opts.Registerer = f.reg
	return webhooks.New(f.env, opts)
}

func (f *fixture) hook(opts webhooks.Options) agent.Hook {
	opts.Registerer = f.reg
	return webhooks.Hook(opts)
}

func (f *fixture) metric(name string, labels ...string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// assertNoSecrets fails when a log line holds any of the secrets.
func (f *fixture) assertNoSecrets(secrets ...string) {
	f.t.Helper()
	logs := f.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			f.t.Errorf("the log holds the secret %q:\n%s", s, logs)
		}
	}
}

func eventually(t *testing.T, d time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func payload(id uuid.UUID, eventType string) string {
	return fmt.Sprintf(`{"id":%q,"event_type":%q,"timestamp":"2025-01-02T10:00:00Z","data":{"n":1}}`, id, eventType)
}

// received is one request at the receiver.
type received struct {
	Path   string
	Header http.Header
	Body   []byte
}

type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		rc.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// TestDeliverAndReport: a delivery arrives with the documented headers,
// its payload byte for byte and a valid signature, and is reported as a
// success; a 500 whose body echoes the auth header and the URL is reported
// as a failure with status 500 and those blanked out; nothing secret
// reaches the log.
func TestDeliverAndReport(t *testing.T) {
	f := newFixture(t)
	token := "tok-" + uuid.NewString()
	auth := "Bearer " + token
	signing := "signing-" + uuid.NewString()
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/fail/") {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, "boom for %s at %s%s", r.Header.Get("Authorization"), r.Host, r.URL.RequestURI())
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	key := "key-" + uuid.NewString()
	okPath, failPath := "/ok/"+uuid.NewString(), "/fail/"+uuid.NewString()+"?key="+key
	ok := pending{ID: uuid.New(), SubscriptionID: uuid.New(), EventType: "deployment.failed", EventID: uuid.New(),
		URL: rc.URL + okPath, AuthHeader: &auth, SigningSecret: &signing, TimeoutSeconds: 5, MaxRetries: 5}
	ok.Payload = payload(ok.EventID, ok.EventType)
	bad := pending{ID: uuid.New(), SubscriptionID: uuid.New(), EventType: "stack.created", EventID: uuid.New(),
		URL: rc.URL + failPath, AuthHeader: &auth, TimeoutSeconds: 5, MaxRetries: 5, Attempts: 2}
	bad.Payload = payload(bad.EventID, bad.EventType)
	f.broker.queue(ok, bad)

	d := f.deliverer(webhooks.Options{})
	ctx := context.Background()
	if full := d.Poll(ctx, ctx); full {
		t.Error("a claim of 2 reported as full")
	}
	d.Wait()

	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(reqs))
	}
	var got received
	for _, r := range reqs {
		if r.Path == okPath {
			got = r
		}
	}
	h := got.Header
	if string(got.Body) != ok.Payload {
		t.Errorf("body %q, want the payload %q", got.Body, ok.Payload)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "X-Brokkr-Event-Type": "deployment.failed",
		"X-Brokkr-Delivery-Id": ok.ID.String(), "Authorization": auth, "User-Agent": "Brokkr-Webhook/1.0"} {
		if h.Get(k) != want {
			t.Errorf("header %s = %q, want %q", k, h.Get(k), want)
		}
	}
	if sig := h.Get(webhook.HeaderSignature); !webhook.Verify([]byte(signing), got.Body, sig) {
		t.Errorf("signature %q does not verify", sig)
	}
	for _, r := range reqs {
		if r.Path != okPath && r.Header.Get(webhook.HeaderSignature) != "" {
			t.Error("a delivery without a signing secret carries a signature")
		}
	}

	rep, n := f.broker.reportFor(ok.ID)
	if n != 1 || !rep.Success || rep.StatusCode == nil || *rep.StatusCode != 202 || rep.Error != nil || rep.DurationMS == nil {
		t.Errorf("success report (%d): %+v", n, rep)
	}
	rep, n = f.broker.reportFor(bad.ID)
	if n != 1 || rep.Success || rep.StatusCode == nil || *rep.StatusCode != 500 || rep.Error == nil {
		t.Fatalf("failure report (%d): %+v", n, rep)
	}
	if !strings.HasPrefix(*rep.Error, "HTTP 500 Internal Server Error: boom for [REDACTED]") {
		t.Errorf("error text %q", *rep.Error)
	}
	secrets := []string{token, auth, signing, rc.URL + okPath, rc.URL + failPath, okPath, failPath, key, rc.Listener.Addr().String()}
	for _, s := range secrets {
		if strings.Contains(*rep.Error, s) {
			t.Errorf("reported error %q holds %q", *rep.Error, s)
		}
	}
	if v := f.metric("brokkr_agent_webhook_deliveries_total", "outcome", "retryable"); v != 1 {
		t.Errorf("deliveries_total{retryable} = %v, want 1", v)
	}
	logs := f.logs.String()
	for _, want := range []string{`"msg":"webhook delivered"`, ok.ID.String(), `"msg":"webhook delivery attempt failed"`, bad.ID.String(), `"attempt":3`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	f.assertNoSecrets(secrets...)
}

// TestRedirectTimeoutAndClassification: a 302 is the answer (the target
// is not followed) and a non-retryable one; a receiver slower than the
// subscription's timeout is a retryable failure without a status code.
func TestRedirectTimeoutAndClassification(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	redirect := pending{ID: uuid.New(), EventType: "stack.created", URL: rc.URL + "/redirect", TimeoutSeconds: 5, Payload: "{}"}
	slow := pending{ID: uuid.New(), EventType: "stack.created", URL: rc.URL + "/slow", TimeoutSeconds: 1, Payload: "{}"}
	f.broker.queue(redirect, slow)
	d := f.deliverer(webhooks.Options{})
	ctx := context.Background()
	start := time.Now()
	d.Poll(ctx, ctx)
	d.Wait()
	took := time.Since(start)

	for _, r := range rc.requests() {
		if r.Path == "/elsewhere" {
			t.Error("the redirect was followed")
		}
	}
	rep, _ := f.broker.reportFor(redirect.ID)
	if rep.Success || rep.StatusCode == nil || *rep.StatusCode != 302 || webhook.Classify(*rep.StatusCode) != webhook.Rejected {
		t.Errorf("redirect report: %+v", rep)
	}
	rep, _ = f.broker.reportFor(slow.ID)
	if rep.Success || rep.StatusCode != nil || rep.Error == nil || *rep.Error != "Request failed: request timed out" {
		t.Errorf("timeout report: %+v (error %v)", rep, rep.Error)
	}
	if rep.DurationMS == nil || *rep.DurationMS < 900 || took > 5*time.Second {
		t.Errorf("timeout after %v ms (whole poll %v), want the subscription's 1 s", rep.DurationMS, took)
	}
}

// TestReportRetriedWhileBrokerFails: a report answered 503 is sent again
// until the broker records it; one answered 403 (lease lost) is dropped
// at once.
func TestReportRetriedWhileBrokerFails(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	retried, lost := uuid.New(), uuid.New()
	var retriedCalls atomic.Int32
	f.broker.answer = func(_ int, id uuid.UUID) int {
		if id == lost {
			return http.StatusForbidden
		}
		if retriedCalls.Add(1) <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	f.broker.queue(pending{ID: retried, EventType: "a.b", URL: rc.URL, TimeoutSeconds: 5, Payload: "{}"},
		pending{ID: lost, EventType: "a.b", URL: rc.URL, TimeoutSeconds: 5, Payload: "{}"})
	d := f.deliverer(webhooks.Options{})
	ctx := context.Background()
	d.Poll(ctx, ctx)
	d.Wait()
	if _, n := f.broker.reportFor(retried); n != 3 {
		t.Errorf("report sent %d times, want 3 (two 503s, then recorded)", n)
	}
	if _, n := f.broker.reportFor(lost); n != 1 {
		t.Errorf("report refused with 403 sent %d times, want 1", n)
	}
	if !strings.Contains(f.logs.String(), "webhook result refused by the broker") {
		t.Errorf("no log of the refused report:\n%s", f.logs.String())
	}
}

// TestLeaseNearlyOver: a delivery whose lease ends within the start margin
// (by the broker's clock, an hour off from ours) is not attempted.
func TestLeaseNearlyOver(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	brokerNow := time.Now().Add(-time.Hour)
	f.broker.clock = func() time.Time { return brokerNow }
	soon, later := brokerNow.Add(3*time.Second), brokerNow.Add(50*time.Second)
	short := pending{ID: uuid.New(), EventType: "a.b", URL: rc.URL + "/short", TimeoutSeconds: 5, Payload: "{}", AcquiredUntil: &soon}
	long := pending{ID: uuid.New(), EventType: "a.b", URL: rc.URL + "/long", TimeoutSeconds: 5, Payload: "{}", AcquiredUntil: &later}
	f.broker.queue(short, long)
	d := f.deliverer(webhooks.Options{})
	ctx := context.Background()
	d.Poll(ctx, ctx)
	d.Wait()
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].Path != "/long" {
		t.Fatalf("receiver got %v, want only /long", reqs)
	}
	if _, n := f.broker.reportFor(short.ID); n != 0 {
		t.Error("a delivery that was not attempted was reported")
	}
}

// TestConcurrencyAndActivity runs the loop: nothing is claimed while the
// agent is INACTIVE; once ACTIVE, no claim is made while every slot is
// busy, and a claim of 10 runs at most Concurrency attempts at once.
func TestConcurrencyAndActivity(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var cur, peak atomic.Int32
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		cur.Add(-1)
		w.WriteHeader(http.StatusOK)
	})
	mk := func(n int) []pending {
		out := make([]pending, n)
		for i := range out {
			out[i] = pending{ID: uuid.New(), EventType: "a.b", URL: rc.URL, TimeoutSeconds: 30, Payload: "{}"}
		}
		return out
	}
	// Registered after the receiver: runs before its Close, which waits
	// for the blocked handlers.
	t.Cleanup(unblock)
	f.broker.queue(mk(3)...)
	f.broker.queue(mk(webhook.AgentClaimBatch)...)
	f.broker.queue(mk(1)...)

	var active atomic.Bool
	var asked atomic.Int32
	f.env.Active = func() bool { asked.Add(1); return active.Load() }
	hook := f.hook(webhooks.Options{PollInterval: 20 * time.Millisecond, Concurrency: 3})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hook.Run(ctx, f.env) }()
	ticks := func(n int32) {
		t.Helper()
		from := asked.Load()
		eventually(t, 5*time.Second, func() string {
			if asked.Load() < from+n {
				return "the loop does not tick"
			}
			return ""
		})
	}

	ticks(5)
	if claims, _ := f.broker.snapshot(); claims != 0 {
		t.Fatalf("an INACTIVE agent claimed %d times", claims)
	}
	active.Store(true)
	eventually(t, 5*time.Second, func() string {
		if cur.Load() != 3 {
			return fmt.Sprintf("%d attempts in flight, want 3", cur.Load())
		}
		return ""
	})
	ticks(5)
	if claims, _ := f.broker.snapshot(); claims != 1 {
		t.Errorf("%d claims while every slot was busy, want 1", claims)
	}
	if v := f.metric("brokkr_agent_webhook_in_flight"); v != 3 {
		t.Errorf("in-flight gauge %v, want 3", v)
	}
	unblock()
	want := 3 + webhook.AgentClaimBatch + 1
	eventually(t, 5*time.Second, func() string {
		if _, reps := f.broker.snapshot(); len(reps) != want {
			return fmt.Sprintf("%d reports, want %d", len(reps), want)
		}
		return ""
	})
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
	if v := f.metric("brokkr_agent_webhook_deliveries_total", "outcome", "success"); v != float64(want) {
		t.Errorf("deliveries_total{success} = %v, want %d", v, want)
	}
	if v := f.metric("brokkr_agent_webhook_reports_total", "result", "recorded"); v != float64(want) {
		t.Errorf("reports_total{recorded} = %v, want %d", v, want)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop")
	}
}

// TestDrain: once the agent drains, an attempt still in flight gets the
// drain grace, is then cancelled and reported as a failure without status
// code, and the loop returns.
func TestDrain(t *testing.T) {
	f := newFixture(t)
	started := make(chan struct{}, 1)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	p := pending{ID: uuid.New(), EventType: "a.b", URL: rc.URL, TimeoutSeconds: 60, Payload: "{}"}
	f.broker.queue(p)
	hook := f.hook(webhooks.Options{PollInterval: 20 * time.Millisecond, DrainGrace: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hook.Run(ctx, f.env) }()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no attempt started")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not return after the drain grace")
	}
	rep, n := f.broker.reportFor(p.ID)
	if n != 1 || rep.Success || rep.StatusCode != nil || rep.Error == nil || *rep.Error != "Request failed: request cancelled" {
		t.Errorf("report of the cut attempt (%d): %+v", n, rep)
	}
}

func TestScrub(t *testing.T) {
	p := broker.PendingWebhook{PendingDelivery: webhook.PendingDelivery[secret.String]{
		URL:           secret.String("https://hooks.example.com:8443/services/T00/B00/XXXX?token=abcd"),
		AuthHeader:    secret.String("Token token=pd-secret"),
		SigningSecret: secret.String("sign-me"),
	}}
	for in, want := range map[string]string{
		"posting https://hooks.example.com:8443/services/T00/B00/XXXX?token=abcd failed": "posting [REDACTED] failed",
		"Cannot POST /services/T00/B00/XXXX?token=abcd":                                  "Cannot POST [REDACTED]",
		"no route /services/T00/B00/XXXX":                                                "no route [REDACTED]",
		"host hooks.example.com:8443 / hooks.example.com":                                "host [REDACTED] / [REDACTED]",
		"bad auth Token token=pd-secret, token=pd-secret":                                "bad auth [REDACTED], [REDACTED]",
		"sig sign-me":                    "sig [REDACTED]",
		"HTTP 500 Internal Server Error": "HTTP 500 Internal Server Error",
	} {
		if got := webhooks.Scrub(in, p); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
	// A claimed delivery never renders its secrets.
	s := fmt.Sprintf("%v %+v", p, p)
	b, _ := json.Marshal(p)
	for _, leak := range []string{"hooks.example.com", "pd-secret", "sign-me"} {
		if strings.Contains(s, leak) || strings.Contains(string(b), leak) {
			t.Errorf("rendering shows %q: %s %s", leak, s, b)
		}
	}
}

// TestClaimDecoding: nulls stay empty secrets, and the lease is converted
// to the local clock through the broker's Date.
func TestClaimDecoding(t *testing.T) {
	f := newFixture(t)
	brokerNow := time.Now().Add(2 * time.Hour)
	f.broker.clock = func() time.Time { return brokerNow }
	until := brokerNow.Add(40 * time.Second)
	f.broker.queue(pending{ID: uuid.New(), EventType: "a.b", URL: "http://x.example", TimeoutSeconds: 5, Payload: "{}", AcquiredUntil: &until})
	got, err := f.env.Broker.ClaimWebhooks(context.Background(), f.env.AgentID)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	p := got[0]
	if p.URL.Reveal() != "http://x.example" || !p.AuthHeader.IsZero() || !p.SigningSecret.IsZero() {
		t.Errorf("decoded secrets: url %q auth zero %v secret zero %v", p.URL.Reveal(), p.AuthHeader.IsZero(), p.SigningSecret.IsZero())
	}
	// 40 s left by the broker's clock, minus a second for Date's resolution.
	if left := time.Until(p.LeaseEnd); left < 37*time.Second || left > 40*time.Second {
		t.Errorf("lease left %v, want about 39 s", left)
	}
}

// TestFullClaim: a claim of a whole batch says so (the loop claims again
// at once).
func TestFullClaim(t *testing.T) {
	f := newFixture(t)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	batch := make([]pending, webhook.AgentClaimBatch)
	for i := range batch {
		batch[i] = pending{ID: uuid.New(), EventType: "a.b", URL: rc.URL, TimeoutSeconds: 5, Payload: "{}"}
	}
	f.broker.queue(batch...)
	d := f.deliverer(webhooks.Options{})
	ctx := context.Background()
	if !d.Poll(ctx, ctx) {
		t.Error("a claim of a whole batch was not reported as full")
	}
	d.Wait()
	if n := len(rc.requests()); n != webhook.AgentClaimBatch {
		t.Errorf("%d deliveries made, want %d", n, webhook.AgentClaimBatch)
	}
}

// TestScrubCutSecret: a secret the 512-byte read of the answer cut in
// half does not survive in the reported error.
func TestScrubCutSecret(t *testing.T) {
	f := newFixture(t)
	token := "tok-" + strings.Repeat("s", 40)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		// Nine echoes (459 bytes) and padding, then a tenth echo the
		// sender's 512-byte read cuts 20 bytes in. Scrubbing the nine
		// shortens the text enough for that stub to fall within the
		// 200 bytes reported.
		a := r.Header.Get("Authorization")
		fmt.Fprint(w, strings.Repeat(a, 9)+strings.Repeat("x", 33)+a)
	})
	auth := "Bearer " + token
	p := pending{ID: uuid.New(), EventType: "a.b", URL: rc.URL, AuthHeader: &auth, TimeoutSeconds: 5, Payload: "{}"}
	f.broker.queue(p)
	d := f.deliverer(webhooks.Options{})
	ctx := context.Background()
	d.Poll(ctx, ctx)
	d.Wait()
	rep, _ := f.broker.reportFor(p.ID)
	if rep.Error == nil || rep.StatusCode == nil || *rep.StatusCode != 400 {
		t.Fatalf("report %+v", rep)
	}
	if strings.Contains(*rep.Error, "tok-ssss") || strings.Contains(*rep.Error, "Bearer t") {
		t.Errorf("reported error keeps part of the auth header: %q", *rep.Error)
	}
}
