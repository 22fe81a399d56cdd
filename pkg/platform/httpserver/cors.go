package httpserver

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// preflight answers every OPTIONS request itself, before routing and before
// any auth middleware: a browser's preflight carries no credentials and
// must not get a 401 or 405. Under the API prefix it applies the live CORS
// policy; elsewhere (ops routes, docs) anything is allowed, as in the
// original. For other requests outside the API it adds the permissive
// Access-Control-Allow-Origin.
func preflight(prefix string, policy func() config.CORS) gin.HandlerFunc {
	return func(c *gin.Context) {
		path := c.Request.URL.Path
		inAPI := path == prefix || strings.HasPrefix(path, prefix+"/")
		if c.Request.Method != http.MethodOptions {
			if !inAPI && c.GetHeader("Origin") != "" {
				c.Header("Access-Control-Allow-Origin", "*")
			}
			c.Next()
			return
		}
		if inAPI && policy != nil {
			applyCORS(c, policy(), true)
		} else {
			permissive(c)
		}
		c.AbortWithStatus(http.StatusOK)
	}
}

// CORS applies the live policy to actual (non-preflight) requests. Put it
// first on the /api/v1 group, before auth, so that error responses (401,
// 403) also carry the headers and the browser lets the client read them.
// policy is called per request, so a hot reload of allowed_origins or
// max_age_seconds applies to the next request.
func CORS(policy func() config.CORS) gin.HandlerFunc {
	return func(c *gin.Context) {
		applyCORS(c, policy(), false)
		c.Next()
	}
}

func applyCORS(c *gin.Context, p config.CORS, isPreflight bool) {
	origin := c.GetHeader("Origin")
	if origin == "" {
		return
	}
	h := c.Writer.Header()
	anyOrigin := slices.Contains(p.AllowedOrigins, "*")
	if !anyOrigin {
		// Caches must key on Origin, since the answer differs per origin.
		h.Add("Vary", "Origin")
	}
	allowed := anyOrigin || slices.ContainsFunc(p.AllowedOrigins, func(o string) bool {
		return strings.EqualFold(strings.TrimSuffix(o, "/"), origin)
	})
	if !allowed {
		// No CORS headers: the browser blocks the response.
		return
	}
	if anyOrigin {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	if !isPreflight {
		h.Set("Access-Control-Expose-Headers", RequestIDHeader)
		return
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", strings.Join(p.AllowedMethods, ", "))
	h.Set("Access-Control-Allow-Headers", strings.Join(p.AllowedHeaders, ", "))
	if p.MaxAgeSeconds > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(p.MaxAgeSeconds))
	}
}

func permissive(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	methods := c.GetHeader("Access-Control-Request-Method")
	if methods == "" {
		methods = "GET, POST, PUT, DELETE, PATCH, OPTIONS"
	}
	h.Set("Access-Control-Allow-Methods", methods)
	if hdrs := c.GetHeader("Access-Control-Request-Headers"); hdrs != "" {
		h.Set("Access-Control-Allow-Headers", hdrs)
	}
}
