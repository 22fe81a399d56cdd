// Package httpapi is the auth service's internal HTTP API, called by api
// through authclient: PAK verification and PAK issue. It is never exposed
// through the ingress.
package httpapi

import (
	"errors"
	"net/http"

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
		return
	case errors.Is(err, domain.ErrUnauthenticated):
		h.count("unauthenticated")
	case errors.Is(err, domain.ErrThrottled):
		h.count("throttled")
	default:
		h.count("error")
	}
	httpserver.Fail(c, err)
}

func (h Handlers) issue(c *gin.Context) {
	p, hash, err := h.Issuer.Issue(c.Request.Context())
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, authclient.IssueResponse{PAK: p.Reveal(), Hash: hash})
}
