// Package console is the api's fleet console: server-rendered HTML pages
// under /ui/ (same origin as /api/v1, so no CORS), shipped inside the
// binary with embed. It is a driving adapter like httpapi: every page calls
// the same use cases with the same principal, so a generator sees exactly
// what the API shows it and nothing more.
//
// Sign-in takes a PAK in a POST form; the api resolves it through the auth
// service and keeps a server-side session in Redis, named by a random
// HttpOnly, SameSite=Strict cookie (Secure under TLS). The PAK is never
// stored, logged, put in a URL or handed to script. Every state-changing
// form carries the session's synchronizer CSRF token. Pages are served with
// a Content-Security-Policy that allows only this origin's script and style
// files, so no inline script or style runs.
//
// Live updates: static/console.js opens one server-sent event stream
// (/ui/live) that fires after the api's change notifications (Hub), then
// refetches the page's live region.
package console

import (
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Paths and names.
const (
	Prefix = "/ui"
	// CookieName names the session cookie; LoginCookieName the login form's
	// double-submit CSRF cookie.
	CookieName      = "brokkr_console"
	LoginCookieName = "brokkr_console_login"
	// PartialHeader asks for the page's live region only.
	PartialHeader = "X-Console-Partial"
	// CSP is the Content-Security-Policy of every console response: only
	// this origin's files, no inline script or style, no framing.
	CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are the use cases and adapters the console uses.
type Deps struct {
	Auth        authn.Authenticator
	Sessions    Sessions
	Live        *Hub
	Agents      *agents.Service
	AgentLabels *agents.Labels
	Overview    *overview.Service
	Stacks      *stacks.Service
	StackLabels *stacks.Labels
	Templates   *templates.Service
	WorkOrders  *workorders.Service
	Webhooks    *webhooks.Service
	AuditLog    *auditlog.Service
	Diagnostics *diagnostics.Service
	Log         *slog.Logger
	// StaleAfter is when a heartbeat counts as stale.
	StaleAfter time.Duration
}

// Console serves the pages.
type Console struct {
	d     Deps
	pages map[string]*template.Template
}

// New parses the embedded templates (a broken template fails start-up,
// not a request).
func New(d Deps) (*Console, error) {
	if d.StaleAfter <= 0 {
		d.StaleAfter = overview.DefaultStaleAfter
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	c := &Console{d: d, pages: map[string]*template.Template{}}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[base] = t
	}
	return c, nil
}

// principalKey holds the session in the gin context.
const sessionKey = "brokkr.console.session"

// Mount registers every /ui route on r (the root router: the console
// authenticates with its own cookie, not the Authorization header).
func (c *Console) Mount(r gin.IRouter) {
	r.GET(Prefix, func(g *gin.Context) { g.Redirect(http.StatusFound, Prefix+"/") })
	ui := r.Group(Prefix, securityHeaders)
	ui.GET("/static/*filepath", serveStatic())
	ui.GET("/login", c.loginPage)
	ui.POST("/login", c.login)

	in := ui.Group("", c.requireSession)
	in.POST("/logout", c.logout)
	in.GET("/", c.fleet)
	in.GET("/live", c.live)
	in.GET("/agents/:id", c.agent)
	in.POST("/agents/:id/rotate-pak", c.rotateAgentPAK)
	in.POST("/agents/:id/diagnostics", c.requestDiagnostics)
	in.GET("/stacks", c.stacks())
	in.GET("/stacks/:id", c.stack)
	in.GET("/stacks/:id/diff", c.diff)
	in.GET("/objects/:id", c.object)
	in.GET("/templates", c.templates())
	in.GET("/work-orders", c.workOrders)
	in.POST("/work-orders/:id/cancel", c.cancelWorkOrder)
	in.GET("/webhooks", c.webhooks)
	in.GET("/webhooks/:id", c.webhook)
	in.POST("/webhooks/:id/deliveries/:delivery_id/retry", c.retryDelivery)
	in.GET("/audit", c.audit)
}

// securityHeaders are set on every console response.
func securityHeaders(g *gin.Context) {
	h := g.Writer.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(g.Request.URL.Path, Prefix+"/static/") {
		h.Set("Cache-Control", "no-store")
	}
}

// secure reports whether cookies must be Secure (the request came over TLS).
func secure(g *gin.Context) bool { return g.Request.TLS != nil }

func setCookie(g *gin.Context, name, value string, maxAge int) {
	http.SetCookie(g.Writer, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: secure(g), SameSite: http.SameSiteStrictMode})
}

// requireSession resolves the session cookie; without one, a page request
// goes to the login page and anything else is a 401. A POST must carry the
// session's CSRF token (form field csrf or header X-CSRF-Token).
func (c *Console) requireSession(g *gin.Context) {
	token, _ := g.Cookie(CookieName)
	s, err := c.d.Sessions.Get(g.Request.Context(), token)
	if err != nil {
		if !errors.Is(err, ErrNoSession) {
			c.d.Log.ErrorContext(g.Request.Context(), "console session store unavailable", "error", err)
			g.Header("Retry-After", "5")
			c.renderError(g, http.StatusServiceUnavailable, "The session store is unavailable; try again shortly.")
			return
		}
		if g.Request.Method == http.MethodGet && g.GetHeader(PartialHeader) == "" && !strings.HasSuffix(g.Request.URL.Path, "/live") {
			g.Redirect(http.StatusSeeOther, Prefix+"/login")
			g.Abort()
			return
		}
		c.renderError(g, http.StatusUnauthorized, "Your session has ended; sign in again.")
		return
	}
	if g.Request.Method != http.MethodGet {
		sent := g.PostForm("csrf")
		if sent == "" {
			sent = g.GetHeader("X-CSRF-Token")
		}
		if sent == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(s.CSRF)) != 1 {
			c.renderError(g, http.StatusForbidden, "The form's CSRF token is missing or wrong; reload the page and try again.")
			return
		}
	}
	g.Set(sessionKey, s)
	g.Request = g.Request.WithContext(journal.WithClient(g.Request.Context(),
		journal.Client{IP: g.ClientIP(), UserAgent: g.Request.UserAgent()}))
	g.Next()
}

func session(g *gin.Context) Session {
	v, _ := g.Get(sessionKey)
	s, _ := v.(Session)
	return s
}

func principal(g *gin.Context) identity.Principal { return session(g).Principal() }

// fail renders a use case error as an HTML error page with its status;
// the message is the domain error's (never an internal cause).
func (c *Console) fail(g *gin.Context, err error) {
	status := httpserver.StatusOf(err)
	msg := "Something went wrong; the error has been logged."
	var de *domain.Error
	if errors.As(err, &de) && status < 500 {
		msg = de.Msg
	} else if errors.As(err, &de) && status == http.StatusServiceUnavailable {
		msg = de.Msg
	}
	if status >= 500 {
		c.d.Log.ErrorContext(g.Request.Context(), "console request failed", "status", status, "error", err,
			"route", g.FullPath())
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		g.Header("Retry-After", "5")
	}
	c.renderError(g, status, msg)
}
