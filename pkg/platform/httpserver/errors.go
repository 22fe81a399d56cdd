package httpserver

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

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
	// code is the kind's general stable code; a domain error may carry a
	// more precise one (domain.Error.Code, docs/error-codes.md).
	code string
	// retryAfter, when set, is sent as Retry-After: a client should try
	// again after that many seconds (a Throttled error's own retry_after
	// field wins over it).
	retryAfter int
}{
	// Tells clients (the agent's outbox) that this 409 is worth a retry.
	{domain.ErrInFlight, http.StatusConflict, "request_in_flight", 1},
	{domain.ErrKeyReused, http.StatusUnprocessableEntity, "idempotency_key_reused", 0},
	{domain.ErrInvalid, http.StatusBadRequest, "bad_request", 0},
	{domain.ErrUnauthenticated, http.StatusUnauthorized, "unauthorized", 0},
	{domain.ErrForbidden, http.StatusForbidden, "forbidden", 0},
	{domain.ErrNotFound, http.StatusNotFound, "not_found", 0},
	{domain.ErrConflict, http.StatusConflict, "conflict", 0},
	{domain.ErrUnprocessable, http.StatusUnprocessableEntity, "unprocessable_entity", 0},
	{domain.ErrThrottled, http.StatusTooManyRequests, "rate_limited", 60},
	{domain.ErrUnavailable, http.StatusServiceUnavailable, "service_unavailable", RetryAfterSeconds},
}

// StatusOf maps an error to its HTTP status through the table. Errors of no
// kind are 503 when a dependency could not be reached (the client should
// retry; it is not a bug) and 500 otherwise.
func StatusOf(err error) int {
	return lookup(err).status
}

// answer is what the table says about one error.
type answer struct {
	status, retryAfter int
	code               string
}

func lookup(err error) answer {
	for _, row := range table {
		if errors.Is(err, row.kind) {
			return answer{row.status, row.retryAfter, row.code}
		}
	}
	if DependencyDown(err) {
		return answer{http.StatusServiceUnavailable, RetryAfterSeconds, codeUnavailable}
	}
	return answer{http.StatusInternalServerError, 0, codeInternal}
}

// Public messages and codes of the failures whose cause must not be shown.
const (
	msgInternal     = "internal server error"
	msgUnavailable  = "service temporarily unavailable"
	codeInternal    = "internal_error"
	codeUnavailable = "service_unavailable"
)

// Fail ends the request with err's status and JSON body
// (docs/compatibility.md#json-errors): a domain error's code, message and
// fields; for anything else a generic message, its cause logged, never
// sent. A request whose client went away is recorded as 499 and nothing is
// written.
func Fail(c *gin.Context, err error) {
	if ClientGone(c, err) {
		slog.DebugContext(c.Request.Context(), "client closed request", "error", err,
			"method", c.Request.Method, "route", c.FullPath())
		AbortClientGone(c)
		return
	}
	a := lookup(err)
	msg, fields := msgInternal, map[string]any(nil)
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		msg, fields = de.Msg, de.Fields
		if de.Code != "" {
			a.code = de.Code
		}
	case a.status == http.StatusServiceUnavailable:
		msg = msgUnavailable
	}
	if a.status >= 500 {
		slog.ErrorContext(c.Request.Context(), "request failed", "status", a.status, "error", err,
			"method", c.Request.Method, "route", c.FullPath())
	}
	if s, ok := fields["retry_after"].(int); ok && a.status == http.StatusTooManyRequests {
		a.retryAfter = s
	}
	if a.retryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(a.retryAfter))
	}
	c.AbortWithStatusJSON(a.status, wireError(a.code, msg, fields))
}

// AbortError ends the request with an explicit status and message: for
// failures found before any use case runs (request decoding, routing,
// load shedding), which have no domain error to look up. The code is the
// status's general one.
func AbortError(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, wireError(codeOfStatus(status), msg, nil))
}

// codeOfStatus names the failures that have a status but no domain kind.
func codeOfStatus(status int) string {
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "payload_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusInternalServerError:
		return codeInternal
	}
	for _, row := range table {
		if row.status == status {
			return row.code
		}
	}
	return strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
}

// wireError is the JSON error every Brokkr service writes
// (docs/error-codes.md): 0.9.1's {"code", "message", "details"}, and the
// seed's {"error": message} with the domain error's fields at the top
// level, so clients of either version read it.
func wireError(code, msg string, fields map[string]any) gin.H {
	body := gin.H{"error": msg, "code": code, "message": msg}
	if len(fields) > 0 {
		body["details"] = fields
	}
	for k, v := range fields {
		if _, taken := body[k]; !taken {
			body[k] = v
		}
	}
	return body
}
