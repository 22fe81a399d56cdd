// Package httpapi is the api service's driving adapter: gin handlers that
// decode requests, call the use cases and encode the original's JSON shapes.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// statusOf maps a domain error kind to its HTTP status. This is the one
// place where that mapping lives.
func statusOf(err error) int {
	switch {
	case errors.Is(err, domain.ErrInFlight):
		return http.StatusConflict
	case errors.Is(err, domain.ErrKeyReused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, domain.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, domain.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, domain.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, domain.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, domain.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, domain.ErrUnprocessable):
		return http.StatusUnprocessableEntity
	case errors.Is(err, domain.ErrThrottled):
		return http.StatusTooManyRequests
	case httpserver.DependencyDown(err):
		// domain.ErrUnavailable, or PostgreSQL/Redis/a service unreachable:
		// the client should retry, it is not a bug.
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StatusOf is statusOf for the api's other driving adapters (the console),
// so the mapping stays in this one place.
func StatusOf(err error) int { return statusOf(err) }

// fail writes err as {"error": msg, ...fields} with its status. Unknown
// errors become a generic 500 whose cause is logged, never shown.
func fail(c *gin.Context, err error) {
	if httpserver.ClientGone(c, err) {
		// The client hung up (or its deadline passed) mid-request: nobody
		// reads the answer and nothing is wrong on our side.
		slog.DebugContext(c.Request.Context(), "client closed request", "error", err,
			"method", c.Request.Method, "route", c.FullPath())
		httpserver.AbortClientGone(c)
		return
	}
	status := statusOf(err)
	body := gin.H{}
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		body["error"] = de.Msg
		for k, v := range de.Fields {
			body[k] = v
		}
	case status == http.StatusServiceUnavailable:
		body["error"] = "service temporarily unavailable"
	default:
		body["error"] = "internal server error"
	}
	if status >= 500 {
		slog.ErrorContext(c.Request.Context(), "request failed", "status", status, "error", err,
			"method", c.Request.Method, "route", c.FullPath())
	}
	switch status {
	case http.StatusTooManyRequests:
		c.Header("Retry-After", "60")
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", strconv.Itoa(httpserver.RetryAfterSeconds))
	}
	if errors.Is(err, domain.ErrInFlight) {
		// Tells clients (the agent's outbox) that this 409 is worth a retry.
		c.Header("Retry-After", "1")
	}
	c.AbortWithStatusJSON(status, body)
}

// failStatus writes a JSON error with an explicit status (request decoding).
func failStatus(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}
