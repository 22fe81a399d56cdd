package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Request headers of every delivery (docs/webhooks.md#what-a-receiver-gets).
const (
	HeaderEventType  = "X-Brokkr-Event-Type"
	HeaderDeliveryID = "X-Brokkr-Delivery-Id"
	HeaderSignature  = "X-Brokkr-Signature"
	ContentType      = "application/json"
)

// Sign returns the X-Brokkr-Signature value for body: "sha256=" and the
// lowercase hex HMAC-SHA256 of the exact body bytes under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header in constant time (for receivers and
// tests).
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// Verdict classifies one attempt.
type Verdict int

const (
	// Delivered: the receiver answered 2xx.
	Delivered Verdict = iota
	// Retryable: 408, 429, 5xx, or no answer at all (timeout, refused,
	// reset, TLS or DNS failure).
	Retryable
	// Rejected: any other status (other 4xx, and 1xx/3xx since redirects
	// are not followed); retrying would not change the answer.
	Rejected
)

// Classify applies docs/webhooks.md#retries. statusCode is 0 when no
// response arrived.
func Classify(statusCode int) Verdict {
	switch {
	case statusCode == 0:
		return Retryable
	case statusCode >= 200 && statusCode < 300:
		return Delivered
	case statusCode == http.StatusRequestTimeout, statusCode == http.StatusTooManyRequests, statusCode >= 500:
		return Retryable
	}
	return Rejected
}

// Backoff limits.
const (
	BackoffBase = time.Second
	BackoffMax  = time.Hour
	// JitterFraction widens each delay by up to this fraction, so many
	// deliveries failing together do not retry in lockstep, while delay n+1
	// always exceeds delay n.
	JitterFraction = 0.25
)

// Backoff is the delay before retry number n (n ≥ 1): 2^n seconds (2, 4,
// 8, 16 … as the docs give it), widened by jitter ∈ [0, 1) times
// JitterFraction, capped at BackoffMax.
func Backoff(n int, jitter float64) time.Duration {
	if n < 1 {
		n = 1
	}
	if jitter < 0 {
		jitter = 0
	}
	if jitter >= 1 {
		jitter = 0.999
	}
	if n > 30 {
		return BackoffMax
	}
	d := BackoffBase << n
	d += time.Duration(float64(d) * JitterFraction * jitter)
	return min(d, BackoffMax)
}

// Decision is the state a delivery moves to after an attempt.
type Decision struct {
	Status      string // success, failed or dead
	Attempts    int
	NextRetryAt *time.Time
}

// Decide turns an attempt's verdict into the delivery's next state.
// attempts counts this attempt; maxRetries is the number of retries allowed
// after the first attempt (docs/webhooks.md#retries), so a delivery gets at most
// maxRetries+1 attempts before it is dead.
func Decide(v Verdict, attempts, maxRetries int, now time.Time, jitter float64) Decision {
	d := Decision{Attempts: attempts}
	switch {
	case v == Delivered:
		d.Status = StatusSuccess
	case v == Rejected, attempts > maxRetries:
		d.Status = StatusDead
	default:
		d.Status = StatusFailed
		t := now.Add(Backoff(attempts, jitter))
		d.NextRetryAt = &t
	}
	return d
}

// HTTPError is the last_error text for a non-2xx answer: the status line
// and the start of the body (which the receiver chose to send).
func HTTPError(code int, body []byte) string {
	msg := fmt.Sprintf("HTTP %d", code)
	if t := http.StatusText(code); t != "" {
		msg += " " + t
	}
	if b := strings.TrimSpace(Truncate(string(body), 200)); b != "" {
		msg += ": " + b
	}
	return msg
}

// Truncate cuts s to at most n bytes on a rune boundary.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s
}
