package httpserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// The error table: what each domain error kind becomes on the wire. It is
// the one place where a use case's failure turns into an HTTP status, a
// Retry-After header and a JSON body, for every service (api, auth,
// templating) and the console (docs/architecture.md#errors). Order
// matters: the specific kinds (ErrInFlight, ErrKeyReused) come before the
// general ones, because an error may wrap several.
var table = []struct {
	kind   error
	status int
	// retryAfter, when set, is sent as Retry-After: a client should try
	// again after that many seconds (a Throttled error's own retry_after
	// field wins over it).
	retryAfter int
}{
	// Tells clients (the agent's outbox) that this 409 is worth a retry.
	{domain.ErrInFlight, http.StatusConflict, 1},
	{domain.ErrKeyReused, http.StatusUnprocessableEntity, 0},
	{domain.ErrInvalid, http.StatusBadRequest, 0},
	{domain.ErrUnauthenticated, http.StatusUnauthorized, 0},
	{domain.ErrForbidden, http.StatusForbidden, 0},
	{domain.ErrNotFound, http.StatusNotFound, 0},
	{domain.ErrConflict, http.StatusConflict, 0},
	{domain.ErrUnprocessable, http.StatusUnprocessableEntity, 0},
	{domain.ErrThrottled, http.StatusTooManyRequests, 60},
	{domain.ErrUnavailable, http.StatusServiceUnavailable, RetryAfterSeconds},
}

// StatusOf maps an error to its HTTP status through the table. Errors of no
// kind are 503 when a dependency could not be reached (the client should
// retry; it is not a bug) and 500 otherwise.
func StatusOf(err error) int {
	status, _ := lookup(err)
	return status
}

func lookup(err error) (status, retryAfter int) {
	for _, row := range table {
		if errors.Is(err, row.kind) {
			return row.status, row.retryAfter
		}
	}
	if DependencyDown(err) {
		return http.StatusServiceUnavailable, RetryAfterSeconds
	}
	return http.StatusInternalServerError, 0
}

// Public messages of the failures whose cause must not be shown.
const (
	msgInternal    = "internal server error"
	msgUnavailable = "service temporarily unavailable"
)

// Fail ends the request with err's status and JSON body
// (docs/compatibility.md#json-errors): a domain error's message and fields;
// for anything else a generic message, its cause logged, never sent. A
// request whose client went away is recorded as 499 and nothing is written.
func Fail(c *gin.Context, err error) {
	if ClientGone(c, err) {
		slog.DebugContext(c.Request.Context(), "client closed request", "error", err,
			"method", c.Request.Method, "route", c.FullPath())
		AbortClientGone(c)
		return
	}
	status, retryAfter := lookup(err)
	msg, fields := msgInternal, map[string]any(nil)
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		msg, fields = de.Msg, de.Fields
	case status == http.StatusServiceUnavailable:
		msg = msgUnavailable
	}
	if status >= 500 {
		slog.ErrorContext(c.Request.Context(), "request failed", "status", status, "error", err,
			"method", c.Request.Method, "route", c.FullPath())
	}
	if s, ok := fields["retry_after"].(int); ok && status == http.StatusTooManyRequests {
		retryAfter = s
	}
	if retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(retryAfter))
	}
	c.AbortWithStatusJSON(status, wireError(msg, fields))
}

// AbortError ends the request with an explicit status and message: for
// failures found before any use case runs (request decoding, routing,
// load shedding), which have no domain error to look up.
func AbortError(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, wireError(msg, nil))
}

// errorBody is the JSON error every Brokkr service writes: {"error": msg}
// plus the domain error's extra fields at the top level, as the original's
// clients read them.
func wireError(msg string, fields map[string]any) gin.H {
	body := gin.H{"error": msg}
	for k, v := range fields {
		if k != "error" {
			body[k] = v
		}
	}
	return body
}
