package console

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

type loginData struct {
	LoginCSRF string
	Error     string
}

// loginPage shows the form with a fresh double-submit token (the login
// form has no session yet to hold a synchronizer token).
func (c *Console) loginPage(g *gin.Context) {
	c.showLogin(g, http.StatusOK, "")
}

func (c *Console) showLogin(g *gin.Context, status int, msg string) {
	tok, err := randomToken(24)
	if err != nil {
		c.fail(g, err)
		return
	}
	setCookie(g, LoginCookieName, tok, 600)
	c.render(g, status, "login", c.newView(g, "Sign in", "", loginData{LoginCSRF: tok, Error: msg}))
}

// login resolves the PAK through the same authenticator as the API (with
// its failure throttling and audit), refuses agents, and starts a session.
func (c *Console) login(g *gin.Context) {
	cookie, _ := g.Cookie(LoginCookieName)
	sent := g.PostForm("csrf")
	if cookie == "" || sent == "" || subtle.ConstantTimeCompare([]byte(cookie), []byte(sent)) != 1 {
		c.showLogin(g, http.StatusForbidden, "The sign-in form expired; try again.")
		return
	}
	secretPAK := strings.TrimSpace(g.PostForm("pak"))
	if secretPAK == "" {
		c.showLogin(g, http.StatusBadRequest, "Enter a PAK.")
		return
	}
	p, err := c.d.Auth.Authenticate(g.Request.Context(), secretPAK, authn.Client{IP: g.ClientIP(), UserAgent: g.Request.UserAgent()})
	if err != nil {
		status := httpserver.StatusOf(err)
		msg := "That PAK is not valid."
		switch {
		case errors.Is(err, domain.ErrThrottled):
			msg = "Too many failed attempts; wait a minute and try again."
			if d, ok := authn.RetryAfter(err); ok {
				g.Header("Retry-After", fmt.Sprint(authn.Seconds(d)))
			}
		case errors.Is(err, domain.ErrUnavailable):
			msg = "The auth service is unavailable; try again shortly."
			g.Header("Retry-After", "5")
		case status >= 500:
			c.d.Log.ErrorContext(g.Request.Context(), "console login failed", "error", err)
			msg = "Sign-in failed; the error has been logged."
		}
		c.showLogin(g, status, msg)
		return
	}
	if p.Role != identity.RoleAdmin && p.Role != identity.RoleGenerator {
		c.showLogin(g, http.StatusForbidden, "Agents cannot sign in to the console; use an admin or generator PAK.")
		return
	}
	_, long, err := pak.Parse(secretPAK)
	if err != nil { // verified above, so well-formed
		c.showLogin(g, http.StatusUnauthorized, "That PAK is not valid.")
		return
	}
	csrf, err := randomToken(32)
	if err != nil {
		c.fail(g, err)
		return
	}
	token, err := c.d.Sessions.Create(g.Request.Context(), Session{Role: p.Role, ID: p.ID, PAKHash: pak.Hash(long),
		CSRF: csrf, Created: time.Now().UTC()})
	if errors.Is(err, ErrRevoked) {
		c.showLogin(g, http.StatusUnauthorized, "That PAK is not valid.")
		return
	}
	if err != nil {
		c.d.Log.ErrorContext(g.Request.Context(), "console session store unavailable", "error", err)
		g.Header("Retry-After", "5")
		c.showLogin(g, http.StatusServiceUnavailable, "The session store is unavailable; try again shortly.")
		return
	}
	setCookie(g, LoginCookieName, "", -1)
	setCookie(g, CookieName, token, 0)
	home := Prefix + "/"
	if p.Role == identity.RoleGenerator {
		home = Prefix + "/stacks"
	}
	g.Redirect(http.StatusSeeOther, home)
}

// logout ends the session and clears the cookie.
func (c *Console) logout(g *gin.Context) {
	token, _ := g.Cookie(CookieName)
	if err := c.d.Sessions.Delete(g.Request.Context(), token); err != nil {
		c.d.Log.WarnContext(g.Request.Context(), "console logout: session not deleted", "error", err)
	}
	setCookie(g, CookieName, "", -1)
	g.Redirect(http.StatusSeeOther, Prefix+"/login")
}

// live is the server-sent event stream: one "change" event after each
// (coalesced) change notification and on every tick, comments as
// keep-alives, closed after Hub.MaxStream or when the server stops.
func (c *Console) live(g *gin.Context) {
	h := c.d.Live
	ch, revoked, cancel := h.subscribe(session(g).PAKHash)
	defer cancel()
	w := g.Writer
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 3000\n: connected\n\n")
	w.Flush()
	ctx := g.Request.Context()
	end := time.NewTimer(h.MaxStream)
	defer end.Stop()
	tick := time.NewTicker(h.Tick)
	defer tick.Stop()
	var last time.Time
	n := 0
	send := func() bool {
		if wait := h.Coalesce - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
		}
		last = time.Now()
		n++
		if _, err := fmt.Fprintf(w, "event: change\ndata: %d\n\n", n); err != nil {
			return false
		}
		w.Flush()
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.done():
			return
		case <-revoked:
			// The session's PAK was rotated or revoked (its session is
			// gone too): tell the page, which goes to the sign-in form,
			// and end the stream.
			_, _ = fmt.Fprint(w, "event: signedout\ndata: 1\n\n")
			w.Flush()
			return
		case <-end.C:
			return
		case <-ch:
			if !send() {
				return
			}
		case <-tick.C:
			if !send() {
				return
			}
		}
	}
}
