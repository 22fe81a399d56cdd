// Package httpapi is the auth service's internal HTTP API, called by api
// through authclient: PAK verification and PAK issue. It is never exposed
// through the ingress.
package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/authclient"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Handlers holds what the routes need.
type Handlers struct {
	Verifier authn.Authenticator
	Issuer   authn.PAKIssuer
	Log      *slog.Logger
	// Verifications counts outcomes by result; nil records nothing.
	Verifications *prometheus.CounterVec
}

// NewVerificationMetric registers brokkr_auth_verifications_total{result}
// (admin, agent, generator, unauthenticated, throttled, error) on reg.
func NewVerificationMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "brokkr_auth_verifications_total",
		Help: "PAK verifications by outcome",
	}, []string{"result"})
	return httpserver.RegisterOrReuse(reg, c)
}

// Register mounts POST /internal/v1/verify and POST /internal/v1/paks.
func Register(r gin.IRoutes, h Handlers) {
	if h.Log == nil {
		h.Log = slog.Default()
	}
	r.POST(authclient.VerifyPath, h.verify)
	r.POST(authclient.IssuePath, h.issue)
}

func (h Handlers) count(result string) {
	if h.Verifications != nil {
		h.Verifications.WithLabelValues(result).Inc()
	}
}

func (h Handlers) verify(c *gin.Context) {
	var req authclient.VerifyRequest
	if err := httpserver.BindJSON(c, &req); err != nil {
		return
	}
	// The request's context, not c: database/sql watches it from its own
	// goroutine, and gin mutates c when the handler returns.
	p, err := h.Verifier.Authenticate(c.Request.Context(), req.Token, authn.Client{IP: req.ClientIP, UserAgent: req.UserAgent})
	switch {
	case err == nil:
		h.count(string(p.Role))
		c.JSON(http.StatusOK, authclient.NewVerifyResponse(p))
	case errors.Is(err, domain.ErrUnauthenticated):
		h.count("unauthenticated")
		httpserver.AbortError(c, http.StatusUnauthorized, authn.MsgInvalidPAK)
	case errors.Is(err, domain.ErrThrottled):
		h.count("throttled")
		d, _ := authn.RetryAfter(err)
		c.Header("Retry-After", strconv.Itoa(authn.Seconds(d)))
		httpserver.AbortError(c, http.StatusTooManyRequests, authn.MsgThrottled)
	default:
		h.count("error")
		h.fail(c, err)
	}
}

func (h Handlers) issue(c *gin.Context) {
	p, hash, err := h.Issuer.Issue(c.Request.Context())
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, authclient.IssueResponse{PAK: p.Reveal(), Hash: hash})
}

// fail answers 503 for a dependency outage and 500 otherwise; the cause is
// logged, never sent.
func (h Handlers) fail(c *gin.Context, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	if errors.Is(err, domain.ErrUnavailable) {
		status, msg = http.StatusServiceUnavailable, "dependency unavailable"
	}
	h.Log.ErrorContext(c.Request.Context(), "auth request failed", "path", c.FullPath(), "status", status, "error", err)
	httpserver.AbortError(c, status, msg)
}
