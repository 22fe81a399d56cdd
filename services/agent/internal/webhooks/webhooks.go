// Package webhooks is the agent's side of webhook delivery
// (docs/webhooks.md, "Agent delivery"): while the agent is ACTIVE it
// claims the agent-mode deliveries whose target labels it carries, POSTs
// each from inside the cluster with the very sender the broker uses
// (pkg/adapters/webhookhttp: same headers, signature, per-subscription
// timeout, no redirects), and reports every attempt to the broker, which
// alone decides about retries and dead letters.
//
// The URL, auth header and signing secret arrive as secret.String and stay
// so up to the wire. Log lines name a delivery by its id, subscription id
// and event type only; the error text reported back is the sender's
// generic phrase or the receiver's own answer, scrubbed of every part of
// the URL, the auth header and the secret.
package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/webhookhttp"
	appwebhooks "github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// Sender performs one HTTP attempt (webhookhttp.Sender).
type Sender interface {
	Send(ctx context.Context, r webhook.Request) webhook.Result
}

// Options tune the deliverer.
type Options struct {
	// PollInterval is webhook_poll_interval (default 10 s).
	PollInterval time.Duration
	// Concurrency is webhook_concurrency: attempts in flight at once
	// (default 10, the size of one claim).
	Concurrency int
	// DrainGrace is how long in-flight attempts may go on once the agent
	// drains (shutdown_grace_seconds; 0 cancels them at once); then they
	// are cancelled and reported as failed.
	DrainGrace time.Duration
	// StartMargin: a claimed delivery whose lease ends sooner than this is
	// not attempted (default 5 s); it returns to the pool when the lease
	// ends, without an attempt counted.
	StartMargin time.Duration
	// ReportGrace is how long past the lease a report is still retried
	// while the broker does not answer (default 30 s): the broker accepts
	// it until the delivery is released or claimed again.
	ReportGrace time.Duration
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Sender replaces the HTTP sender (tests); the default is
	// webhookhttp.New without the SSRF guard: reaching in-cluster and
	// private addresses is what agent delivery is for.
	Sender Sender
}

// FromConfig maps the [agent] keys.
func FromConfig(c config.Agent) Options {
	return Options{
		PollInterval: time.Duration(c.WebhookPollInterval) * time.Second,
		Concurrency:  c.WebhookConcurrency,
		DrainGrace:   time.Duration(c.ShutdownGraceSeconds) * time.Second,
	}
}

func (o Options) withDefaults() Options {
	defaults.Set(&o.PollInterval, 10*time.Second)
	defaults.Set(&o.Concurrency, webhook.AgentClaimBatch)
	o.DrainGrace = max(o.DrainGrace, 0)
	defaults.Set(&o.StartMargin, 5*time.Second)
	defaults.Set(&o.ReportGrace, 30*time.Second)
	return o
}

// Hook returns the webhook delivery loop for the agent runtime.
func Hook(opts Options) agent.Hook {
	return agent.Hook{Name: "webhooks", Run: func(ctx context.Context, env agent.Env) error {
		return New(env, opts).Run(ctx)
	}}
}

// Broker is the deliverer's part of the broker client.
type Broker interface {
	ClaimWebhooks(ctx context.Context, agentID uuid.UUID) ([]broker.PendingWebhook, error)
	ReportWebhook(ctx context.Context, id uuid.UUID, r broker.WebhookResult) (broker.WebhookOutcome, error)
}

// Deliverer claims, sends and reports deliveries.
type Deliverer struct {
	env    agent.Env
	broker Broker
	opts   Options
	log    *slog.Logger
	sender Sender
	m      *metrics

	slots    chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	inFlight map[uuid.UUID]bool
	failing  bool // the last claim failed (log the next failure at debug)
}

// New returns a deliverer; Run starts it.
func New(env agent.Env, opts Options) *Deliverer {
	opts = opts.withDefaults()
	s := opts.Sender
	if s == nil {
		s = webhookhttp.New(webhookhttp.Options{AllowPrivate: true})
	}
	return &Deliverer{env: env, broker: env.Broker, opts: opts, log: env.Log(), sender: s, m: newMetrics(opts.Registerer),
		slots: make(chan struct{}, opts.Concurrency), inFlight: map[uuid.UUID]bool{}}
}

// Run claims deliveries every PollInterval while the agent is ACTIVE (at
// once again after a full claim) until ctx ends, then lets in-flight
// attempts finish within DrainGrace and report.
func (d *Deliverer) Run(ctx context.Context) error {
	// work outlives ctx by the drain grace: attempts under way are not cut
	// off the moment the agent starts draining.
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-work.Done():
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(d.opts.DrainGrace)
		defer t.Stop()
		select {
		case <-t.C:
			stop()
		case <-work.Done():
		}
	}()
	// After a full claim more may be waiting: Poll returned only once every
	// claimed delivery started, so claiming again at once is safe.
	d.env.Poll(ctx, d.opts.PollInterval, nil, func() bool { return d.Poll(ctx, work) })
	d.wg.Wait()
	return nil
}

// Wait blocks until every attempt started by Poll has been reported.
func (d *Deliverer) Wait() { d.wg.Wait() }

// Poll claims once and starts an attempt for each claimed delivery, at
// most Concurrency at a time (waiting for a free slot). Attempts run under
// work. It reports whether the claim was a full batch.
func (d *Deliverer) Poll(ctx, work context.Context) bool {
	if len(d.slots) == cap(d.slots) {
		// Every slot busy: claiming now would only let leases run out.
		return false
	}
	claimed, err := d.broker.ClaimWebhooks(ctx, d.env.AgentID)
	if err != nil {
		d.m.polls.WithLabelValues("error").Inc()
		if ctx.Err() != nil {
			return false
		}
		if d.failing {
			d.log.Debug("claiming webhook deliveries failed", "error", err)
		} else {
			d.log.Warn("claiming webhook deliveries failed; retrying every poll interval", "error", err)
		}
		d.failing = true
		return false
	}
	d.m.polls.WithLabelValues("success").Inc()
	if d.failing {
		d.log.Info("claiming webhook deliveries works again")
		d.failing = false
	}
	for i, p := range claimed {
		log := d.log.With("delivery_id", p.ID, "subscription_id", p.SubscriptionID, "event_type", p.EventType)
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			// Draining: what has not started is not attempted; each returns
			// to the pool when its lease ends.
			log.Info("webhook delivery not attempted (draining); it returns to the pool when its lease ends",
				"not_started", len(claimed)-i)
			return false
		}
		if left := time.Until(p.LeaseEnd); left < d.opts.StartMargin {
			<-d.slots
			d.m.deliveries.WithLabelValues("not_attempted").Inc()
			log.Warn("webhook delivery not attempted: its lease is (nearly) over; it returns to the pool",
				"lease_left", left.Round(time.Millisecond).String())
			continue
		}
		if !d.begin(p.ID) {
			// Our own earlier attempt outlived its lease and we claimed the
			// delivery again: that attempt reports on this claim.
			<-d.slots
			log.Info("webhook delivery already in flight here; not sent twice")
			continue
		}
		d.wg.Add(1)
		d.m.inFlight.Inc()
		go func() {
			defer func() {
				d.end(p.ID)
				d.m.inFlight.Dec()
				<-d.slots
				d.wg.Done()
			}()
			d.deliver(work, log, p)
		}()
	}
	return len(claimed) >= webhook.AgentClaimBatch
}

func (d *Deliverer) begin(id uuid.UUID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inFlight[id] {
		return false
	}
	d.inFlight[id] = true
	return true
}

func (d *Deliverer) end(id uuid.UUID) {
	d.mu.Lock()
	delete(d.inFlight, id)
	d.mu.Unlock()
}

// deliver makes one attempt and reports it.
func (d *Deliverer) deliver(work context.Context, log *slog.Logger, p broker.PendingWebhook) {
	res := d.sender.Send(work, webhook.Request{URL: p.URL, AuthHeader: p.AuthHeader, SigningSecret: p.SigningSecret,
		EventType: p.EventType, DeliveryID: p.ID.String(), Body: []byte(p.Payload),
		Timeout: time.Duration(p.TimeoutSeconds) * time.Second})
	verdict := res.Verdict()
	outcome := map[webhook.Verdict]string{webhook.Delivered: "success", webhook.Retryable: "retryable", webhook.Rejected: "rejected"}[verdict]
	d.m.deliveries.WithLabelValues(outcome).Inc()
	d.m.duration.Observe(res.Duration.Seconds())

	r := broker.WebhookResult{Success: verdict == webhook.Delivered}
	ms := res.Duration.Milliseconds()
	r.DurationMS = &ms
	if res.StatusCode != 0 {
		code := res.StatusCode
		r.StatusCode = &code
	}
	errText := ""
	if !r.Success {
		// Scrub the receiver's answer before ErrorText shortens it, so no
		// secret is cut in half and kept.
		res.Body = []byte(scrubBody(string(res.Body), p))
		errText = Scrub(res.ErrorText(), p)
		r.Error = &errText
	}
	attrs := []any{"attempt", p.Attempts + 1, "outcome", outcome, "took", res.Duration.Round(time.Millisecond).String()}
	if res.StatusCode != 0 {
		attrs = append(attrs, "status_code", res.StatusCode)
	}
	if r.Success {
		log.Info("webhook delivered", attrs...)
	} else {
		log.Warn("webhook delivery attempt failed", append(attrs, "error", errText)...)
	}
	d.report(work, log, p, r)
}

// report posts the result, retrying while the broker does not answer and
// the broker may still take it (until the lease ended plus ReportGrace).
func (d *Deliverer) report(work context.Context, log *slog.Logger, p broker.PendingWebhook, r broker.WebhookResult) {
	// The report outlives work by a few seconds: an attempt the drain cut
	// short is still reported (as failed, "request cancelled").
	ctx, cancel := context.WithDeadline(context.WithoutCancel(work), p.LeaseEnd.Add(d.opts.ReportGrace))
	defer cancel()
	stop := context.AfterFunc(work, func() { time.AfterFunc(reportAfterDrain, cancel) })
	defer stop()
	delay := 500 * time.Millisecond
	for {
		out, err := d.broker.ReportWebhook(ctx, p.ID, r)
		if err == nil {
			d.m.reports.WithLabelValues("recorded").Inc()
			attrs := []any{"status", out.Status}
			if out.NextRetryAt != nil {
				attrs = append(attrs, "next_retry_at", out.NextRetryAt.UTC().Format(time.RFC3339))
			}
			log.Debug("webhook result recorded", attrs...)
			return
		}
		switch {
		case errors.Is(err, domain.ErrForbidden), errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrConflict):
			// Not ours any more (lease expired and released or re-claimed),
			// the subscription is gone, or it was already reported.
			d.m.reports.WithLabelValues("refused").Inc()
			log.Warn("webhook result refused by the broker; dropped", "status_code", broker.StatusCode(err), "error", err)
			return
		case broker.Permanent(err):
			d.m.reports.WithLabelValues("refused").Inc()
			log.Error("webhook result rejected by the broker; dropped", "error", err)
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			d.m.reports.WithLabelValues("lost").Inc()
			log.Warn("webhook result could not be reported; the delivery returns to the pool when its lease ends and is attempted again",
				"error", err)
			return
		case <-t.C:
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// reportAfterDrain is how long reports may still be tried once the drain
// grace is over.
const reportAfterDrain = 5 * time.Second

// Scrub blanks out of text the delivery's URL (whole, its host, and its
// path and query), its auth header (whole and its credential after the
// scheme) and its signing secret, should a receiver have echoed them.
func Scrub(text string, p broker.PendingWebhook) string {
	return appwebhooks.Scrub(text, secretsOf(p)...)
}

// scrubBody is Scrub for the start of a response body, which the sender
// cut at a fixed length: a secret cut there leaves a prefix at the very
// end, which is blanked too.
func scrubBody(body string, p broker.PendingWebhook) string {
	secrets := secretsOf(p)
	body = appwebhooks.Scrub(body, secrets...)
	for _, sec := range secrets {
		for k := min(len(sec)-1, len(body)); k >= 4; k-- {
			if strings.HasSuffix(body, sec[:k]) {
				return body[:len(body)-k] + secret.Redacted
			}
		}
	}
	return body
}

func secretsOf(p broker.PendingWebhook) []string {
	secrets := []string{p.URL.Reveal()}
	if u, err := url.Parse(p.URL.Reveal()); err == nil {
		secrets = append(secrets, strings.TrimPrefix(p.URL.Reveal(), u.Scheme+"://"))
		if ru := u.RequestURI(); ru != "/" {
			secrets = append(secrets, ru, u.EscapedPath())
		}
		secrets = append(secrets, u.Host, u.Hostname())
	}
	auth := p.AuthHeader.Reveal()
	secrets = append(secrets, auth)
	if _, cred, ok := strings.Cut(auth, " "); ok {
		secrets = append(secrets, strings.TrimSpace(cred))
	}
	return append(secrets, p.SigningSecret.Reveal())
}

type metrics struct {
	polls      *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	reports    *prometheus.CounterVec
	duration   prometheus.Histogram
	inFlight   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := httpserver.NewFamilies(reg)
	m := &metrics{
		polls: f.CounterVec("brokkr_agent_webhook_polls_total",
			"Claims of pending webhook deliveries, by result (success, error)", "result"),
		deliveries: f.CounterVec("brokkr_agent_webhook_deliveries_total",
			"Webhook delivery attempts by outcome (success, retryable, rejected, not_attempted)", "outcome"),
		reports: f.CounterVec("brokkr_agent_webhook_reports_total",
			"Webhook results reported to the broker, by result (recorded, refused, lost)", "result"),
		duration: f.Histogram("brokkr_agent_webhook_delivery_duration_seconds", "HTTP duration of webhook delivery attempts",
			[]float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}),
		inFlight: f.Gauge("brokkr_agent_webhook_in_flight", "Webhook delivery attempts in progress"),
	}
	f.Must()
	for _, o := range []string{"success", "retryable", "rejected", "not_attempted"} {
		m.deliveries.WithLabelValues(o)
	}
	for _, r := range []string{"recorded", "refused", "lost"} {
		m.reports.WithLabelValues(r)
	}
	for _, r := range []string{"success", "error"} {
		m.polls.WithLabelValues(r)
	}
	return m
}
