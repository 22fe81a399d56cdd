package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// view is what every page template receives.
type view struct {
	Title     string
	Nav       string // the active nav entry
	Admin     bool
	Signed    bool
	Principal identity.Principal
	CSRF      string
	Live      bool // the page has a live region
	Flash     string
	Now       time.Time
	Query     url.Values
	Path      string
	Data      any
}

func (c *Console) newView(g *gin.Context, title, nav string, data any) view {
	s, signed := g.Get(sessionKey)
	v := view{Title: title, Nav: nav, Data: data, Now: time.Now().UTC(), Query: g.Request.URL.Query(),
		Path: g.Request.URL.Path}
	if signed {
		sess := s.(Session)
		v.Signed, v.Principal, v.CSRF, v.Admin = true, sess.Principal(), sess.CSRF, sess.Role == identity.RoleAdmin
	}
	return v
}

// render writes page name; with PartialHeader only its "live" template.
func (c *Console) render(g *gin.Context, status int, name string, v view) {
	t, ok := c.pages[name]
	if !ok {
		c.renderError(g, http.StatusInternalServerError, "unknown page")
		return
	}
	entry := "layout"
	if g.GetHeader(PartialHeader) != "" && t.Lookup("live") != nil {
		entry = "live"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, entry, v); err != nil {
		c.d.Log.ErrorContext(g.Request.Context(), "console template failed", "page", name, "error", err)
		g.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	g.Data(status, "text/html; charset=utf-8", buf.Bytes())
	g.Abort()
}

type errorData struct {
	Status  int
	Message string
}

func (c *Console) renderError(g *gin.Context, status int, msg string) {
	c.render(g, status, "error", c.newView(g, http.StatusText(status), "", errorData{Status: status, Message: msg}))
}

// serveStatic serves the embedded CSS/JS with ETags (revalidated on use).
func serveStatic() gin.HandlerFunc {
	type file struct {
		data []byte
		etag string
		ct   string
	}
	files := map[string]file{}
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ct := "text/plain; charset=utf-8"
		switch path.Ext(p) {
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		files[strings.TrimPrefix(p, "static/")] = file{data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ct: ct}
		return nil
	})
	return func(g *gin.Context) {
		f, ok := files[strings.TrimPrefix(g.Param("filepath"), "/")]
		if !ok {
			g.AbortWithStatus(http.StatusNotFound)
			return
		}
		g.Header("Content-Type", f.ct)
		g.Header("ETag", f.etag)
		g.Header("Cache-Control", "no-cache")
		http.ServeContent(g.Writer, g.Request, "", time.Time{}, bytes.NewReader(f.data))
	}
}

var funcs = template.FuncMap{
	"age": func(now time.Time, t *time.Time) string {
		if t == nil {
			return "never"
		}
		return ago(now.Sub(*t))
	},
	"since": func(now, t time.Time) string { return ago(now.Sub(t)) },
	"ts": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		}
		return ""
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"short": func(id any) string {
		s := fmt.Sprint(id)
		switch v := id.(type) {
		case *uuid.UUID:
			if v == nil {
				return "—"
			}
			s = v.String()
		}
		if len(s) > 8 {
			return s[:8]
		}
		return s
	},
	"str": func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	},
	"int": func(p *int) string {
		if p == nil {
			return "—"
		}
		return strconv.Itoa(*p)
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b int) int { return a - b },
	"min":   func(a, b int) int { return min(a, b) },
	// qs returns the current query with key set to value (page links).
	"qs": func(q url.Values, kv ...any) string {
		out := url.Values{}
		for k, v := range q {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			k, v := fmt.Sprint(kv[i]), fmt.Sprint(kv[i+1])
			if v == "" {
				out.Del(k)
			} else {
				out.Set(k, v)
			}
		}
		return "?" + out.Encode()
	},
	"selected": func(a, b string) bool { return a == b },
	"pg":       func(p pager, q url.Values) map[string]any { return map[string]any{"P": p, "Q": q} },
}

// ago renders a duration as a short age ("12s", "5m", "3h", "2d").
func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
