package webhook

import (
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// Request is one delivery attempt as the sender sees it. The URL, auth
// header and signing secret stay secret.String all the way to the wire.
type Request struct {
	URL           secret.String
	AuthHeader    secret.String // sent verbatim as Authorization when set
	SigningSecret secret.String // adds X-Brokkr-Signature when set
	EventType     string
	DeliveryID    string
	Body          []byte
	Timeout       time.Duration
}

// Result is what an attempt produced. StatusCode is 0 when no response
// arrived; then Error says why in words that reveal nothing about the
// destination (no URL, host or address).
type Result struct {
	StatusCode int
	// Body holds the start of the response body (at most 512 bytes).
	Body     []byte
	Error    string
	Duration time.Duration
	// Refused means the request was never sent because it could not be:
	// the SSRF guard refused the destination or the URL is unusable.
	// Retrying would not change that, so the attempt is final.
	Refused bool
}

// Verdict classifies the result (docs/webhooks.md#retries).
func (r Result) Verdict() Verdict {
	if r.Refused {
		return Rejected
	}
	return Classify(r.StatusCode)
}

// ErrorText is the last_error of a failed attempt, "" on success.
func (r Result) ErrorText() string {
	switch {
	case r.StatusCode == 0 && r.Error != "":
		return "Request failed: " + r.Error
	case r.StatusCode == 0:
		return "Request failed"
	case r.Verdict() == Delivered:
		return ""
	}
	return HTTPError(r.StatusCode, r.Body)
}
