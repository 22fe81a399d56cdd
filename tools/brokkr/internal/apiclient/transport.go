package apiclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// Options configure New.
type Options struct {
	// BrokerURL is the broker's address, with or without the /api/v1 suffix.
	BrokerURL string
	// PAK is sent as "Authorization: Bearer <PAK>" and nowhere else.
	PAK string
	// UserAgent identifies the client (audit logs record it).
	UserAgent string
	// Debug, when set, receives one line per request and response with the
	// Authorization header redacted.
	Debug io.Writer
	// MaxAttempts bounds the tries of one request (connection errors and
	// 503s are retried); 0 means 4.
	MaxAttempts int
	// MaxRetryWait caps one wait between tries, whatever Retry-After asks;
	// 0 means 30 s.
	MaxRetryWait time.Duration
	// Timeout bounds each try; 0 means 60 s (the target-state long-poll is
	// at most 60 s, the CLI never waits on it).
	Timeout time.Duration
	// Sleep waits between tries; tests replace it. nil means a timer that
	// honours ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// ServerURL turns what a user typed into the base the generated client
// expects (the spec's paths start with /api/v1): a trailing /api/v1 and
// slashes are removed, so "host", "host/" and "host/api/v1" are the same
// broker and the suffix is never doubled.
func ServerURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("no broker URL: pass --broker-url, set BROKKR_BROKER_URL or run `brokkr login`")
	}
	s = strings.TrimRight(s, "/")
	s = strings.TrimSuffix(s, "/api/v1")
	s = strings.TrimRight(s, "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("broker URL %q is not an http(s) URL", raw)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("broker URL %q must not carry credentials or a query", raw)
	}
	return s, nil
}

// New returns the generated client over a transport that authenticates,
// retries and (optionally) logs.
func New(o Options) (*Client, error) {
	server, err := ServerURL(o.BrokerURL)
	if err != nil {
		return nil, err
	}
	d := &Doer{opts: o, http: &http.Client{Timeout: o.Timeout}}
	if d.opts.MaxAttempts <= 0 {
		d.opts.MaxAttempts = 4
	}
	if d.opts.MaxRetryWait <= 0 {
		d.opts.MaxRetryWait = 30 * time.Second
	}
	if d.http.Timeout <= 0 {
		d.http.Timeout = 60 * time.Second
	}
	if d.opts.Sleep == nil {
		d.opts.Sleep = lifecycle.Sleep
	}
	// Redirects would resend the PAK to wherever the broker points; a
	// control-plane client has no reason to follow them.
	d.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return NewClient(server, WithHTTPClient(d))
}

// Doer sends a request with the PAK, an Idempotency-Key on POSTs, bounded
// retries and the redacted debug log.
type Doer struct {
	opts Options
	http *http.Client
}

// NewIdempotencyKey returns a random key (UUID v4 text form).
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Do implements HttpRequestDoer.
func (d *Doer) Do(req *http.Request) (*http.Response, error) {
	if d.opts.PAK != "" {
		req.Header.Set("Authorization", "Bearer "+d.opts.PAK)
	}
	if d.opts.UserAgent != "" {
		req.Header.Set("User-Agent", d.opts.UserAgent)
	}
	// Every create is a POST. One key per logical request, reused by its
	// retries, lets the broker answer a retried create with the first
	// answer instead of creating twice.
	if req.Method == http.MethodPost && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", NewIdempotencyKey())
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	ctx := req.Context()
	for attempt := 1; ; attempt++ {
		try := req.Clone(ctx)
		if body != nil {
			try.Body = io.NopCloser(bytes.NewReader(body))
			try.ContentLength = int64(len(body))
		}
		d.logRequest(try, attempt)
		start := time.Now()
		resp, err := d.http.Do(try)
		d.logResponse(try, resp, err, time.Since(start))
		if attempt >= d.opts.MaxAttempts || ctx.Err() != nil {
			return resp, err
		}
		var wait time.Duration
		switch {
		case err != nil && retryableError(err):
			wait = backoff(attempt)
		case err == nil && resp.StatusCode == http.StatusServiceUnavailable:
			wait = retryAfter(resp.Header.Get("Retry-After"), backoff(attempt))
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			_ = resp.Body.Close()
		default:
			return resp, err
		}
		if wait > d.opts.MaxRetryWait {
			wait = d.opts.MaxRetryWait
		}
		if d.opts.Debug != nil {
			fmt.Fprintf(d.opts.Debug, "debug: retrying in %s (attempt %d of %d)\n", wait, attempt+1, d.opts.MaxAttempts)
		}
		if err := d.opts.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// retryableError is a failure to reach the broker or a connection that broke
// (not a context cancellation and not a TLS/URL mistake, which retrying
// cannot fix).
func retryableError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection reset")
}

func backoff(attempt int) time.Duration {
	return time.Duration(1<<uint(attempt-1)) * 500 * time.Millisecond
}

// retryAfter reads delta-seconds or an HTTP date.
func retryAfter(v string, fallback time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return fallback
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
		return 0
	}
	return fallback
}

func (d *Doer) logRequest(req *http.Request, attempt int) {
	if d.opts.Debug == nil {
		return
	}
	fmt.Fprintf(d.opts.Debug, "debug: > %s %s (attempt %d)\n", req.Method, req.URL.Redacted(), attempt)
	for _, k := range sortedKeys(req.Header) {
		v := strings.Join(req.Header.Values(k), ", ")
		if strings.EqualFold(k, "Authorization") {
			v = "REDACTED"
		}
		fmt.Fprintf(d.opts.Debug, "debug: > %s: %s\n", k, v)
	}
}

func (d *Doer) logResponse(req *http.Request, resp *http.Response, err error, took time.Duration) {
	if d.opts.Debug == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(d.opts.Debug, "debug: < %s %s: %v (%s)\n", req.Method, req.URL.Redacted(), err, took.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(d.opts.Debug, "debug: < %s (%s)\n", resp.Status, took.Round(time.Millisecond))
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Message string
	Code    string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	s := fmt.Sprintf("%s (%d %s)", msg, e.Status, http.StatusText(e.Status))
	if h := e.Hint(); h != "" {
		s += "; " + h
	}
	return s
}

// Hint suggests the next step for the statuses where one helps.
func (e *APIError) Hint() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "hint: the PAK is missing, malformed or unknown: run `brokkr login` or check BROKKR_PAK"
	case http.StatusForbidden:
		return "hint: this PAK's role may not do this (most commands need an admin PAK; apply works with a generator PAK)"
	case http.StatusTooManyRequests:
		return "hint: too many failed authentications from this address; wait and check the PAK"
	case http.StatusServiceUnavailable:
		return "hint: the broker or one of its dependencies is unavailable; retry later"
	}
	return ""
}

// ParseError builds the APIError of a non-2xx answer. The broker's body is
// {"error": "..."}; a body with "message" (and "code") is preferred when
// present, so both the current and the richer error shape read well.
func ParseError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	var m struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
		Code    string `json:"code"`
	}
	if json.Unmarshal(body, &m) == nil {
		e.Code = m.Code
		switch {
		case m.Message != "":
			e.Message = m.Message
		default:
			if s, ok := m.Error.(string); ok {
				e.Message = s
			}
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	return e
}

// Read returns the body of a 2xx answer (any 2xx: creates answer 201, as in
// the original 0.9.1, and a seed-era broker answered 200), or the APIError
// of any other.
func Read(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("cannot reach the broker: %w", err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, ParseError(resp.StatusCode, body)
	}
	if rerr != nil {
		return nil, fmt.Errorf("reading the broker's answer: %w", rerr)
	}
	return body, nil
}

// Decode reads a 2xx answer into T and also returns its raw body (printed
// as is by -o json, so the output is the API's shape).
func Decode[T any](resp *http.Response, err error) (T, []byte, error) {
	var v T
	body, err := Read(resp, err)
	if err != nil {
		return v, nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return v, body, nil
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, body, fmt.Errorf("unexpected answer from the broker: %w", err)
	}
	return v, body, nil
}

// IsStatus reports whether err is an APIError with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
