package kube

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// IsRetryable reports whether err is worth another attempt: throttling
// (429), server errors (500, 502, 503, 504), server and client timeouts, and
// transient transport failures (connection refused or reset, an unexpected
// EOF). Everything else (4xx, an unresolvable kind, a cancelled context) is
// permanent. Classification uses apierrors, never message text.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var unresolved *UnresolvedKindError
	if errors.As(err, &unresolved) {
		return false
	}
	if apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
		apierrors.IsServerTimeout(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		switch st.Status().Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Backoff is an exponential backoff with jitter. The zero value is the
// original's policy: 1 s initial, ×2, ±50 % jitter, at most 60 s between
// attempts, 5 minutes in total.
type Backoff struct {
	Initial  time.Duration
	Factor   float64
	Jitter   float64 // 0.5 means each delay is drawn from [d/2, 3d/2]
	Max      time.Duration
	Deadline time.Duration // total time budget; <0 means unbounded
	Attempts int           // maximum attempts; 0 means unbounded
}

func (b Backoff) withDefaults() Backoff {
	defaults.Set(&b.Initial, time.Second)
	if b.Factor < 1 {
		b.Factor = 2
	}
	if b.Jitter == 0 {
		b.Jitter = 0.5
	}
	defaults.Set(&b.Max, 60*time.Second)
	if b.Deadline == 0 {
		b.Deadline = 5 * time.Minute
	}
	return b
}

// Delay returns the wait before retry number n (0-based), jittered.
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	d := float64(b.Initial)
	for i := 0; i < n && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	d = min(d, float64(b.Max))
	if b.Jitter > 0 {
		d = d * (1 - b.Jitter + 2*b.Jitter*rand.Float64())
	}
	return time.Duration(d)
}

// Retry calls fn until it succeeds, returns a permanent error, the budget
// runs out or ctx ends. It returns fn's last error.
func Retry(ctx context.Context, b Backoff, fn func(context.Context) error) error {
	b = b.withDefaults()
	var deadline time.Time
	if b.Deadline > 0 {
		deadline = time.Now().Add(b.Deadline)
	}
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil || !IsRetryable(err) {
			return err
		}
		if b.Attempts > 0 && attempt+1 >= b.Attempts {
			return err
		}
		wait := b.Delay(attempt)
		if !deadline.IsZero() && time.Now().Add(wait).After(deadline) {
			return err
		}
		if lifecycle.Sleep(ctx, wait) != nil {
			return err
		}
	}
}
