package httpserver

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// StatusClientClosedRequest is recorded (access log, metrics) for a request
// whose client went away before the answer: nginx's 499. Nothing is sent,
// since nobody is listening; it is not a server error.
const StatusClientClosedRequest = 499

// RetryAfterSeconds is the Retry-After of a 503: long enough for a
// restarted dependency or a drained queue, short enough for a poller.
const RetryAfterSeconds = 5

// AbortUnavailable ends the request with 503, Retry-After and a JSON error:
// the answer to "a dependency is down" and to "too busy now" alike, so that
// clients back off and retry instead of treating it as a bug. Use it for
// every such case (load shedding included) rather than writing 503 by hand.
func AbortUnavailable(c *gin.Context, msg string) {
	c.Header("Retry-After", strconv.Itoa(RetryAfterSeconds))
	AbortError(c, http.StatusServiceUnavailable, msg)
}

// ClientGone reports whether err is the request's own cancellation: the
// client disconnected (or its deadline passed), so the error is not ours.
func ClientGone(c *gin.Context, err error) bool {
	return c.Request.Context().Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// AbortClientGone records a request whose client went away as 499 and
// writes nothing more.
func AbortClientGone(c *gin.Context) {
	c.Status(StatusClientClosedRequest)
	c.Abort()
}

// DependencyDown reports whether err means a dependency (PostgreSQL, Redis,
// another service) could not be reached or did not answer in time, as
// opposed to a bug: domain.ErrUnavailable, a refused/reset/timed-out
// connection, or a driver's bad connection. Such failures answer 503.
func DependencyDown(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, domain.ErrUnavailable) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// A connection that dies under a statement: PostgreSQL crashing or
	// shutting down immediately closes its sockets without a word, and
	// database/sql hands back pgx's bare io.ErrUnexpectedEOF; the same
	// connection then answers "conn closed" (to a COMMIT, say). Request
	// bodies are decoded (and their errors mapped to 400) before any of
	// this runs, so an unexpected EOF here is a dependency's connection.
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	// PostgreSQL going away or refusing work: connection exceptions (08),
	// shutdown/recovery (57P01–57P03), too many connections (53300).
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch code := st.SQLState(); {
		case len(code) == 5 && code[:2] == "08", code == "57P01", code == "57P02", code == "57P03", code == "53300":
			return true
		}
	}
	// pgx reports a failed dial as *pgconn.ConnectError and the pool's
	// wait for a connection as a deadline; both wrap a net error or
	// context.DeadlineExceeded, the latter only while the request itself
	// is still alive (ClientGone is checked first by callers).
	return errors.Is(err, context.DeadlineExceeded)
}
