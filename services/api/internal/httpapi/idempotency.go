package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Header names of docs/idempotency.md.
const (
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

// idempotentRoutes are the writes that honour Idempotency-Key: every create
// and every report an agent retries from its outbox. Elsewhere the header
// is ignored (the request behaves as without it).
var idempotentRoutes = map[string]bool{
	"POST /api/v1/agents":                                      true,
	"POST /api/v1/agents/:id/events":                           true,
	"POST /api/v1/agents/:id/labels":                           true,
	"POST /api/v1/agents/:id/annotations":                      true,
	"POST /api/v1/agents/:id/targets":                          true,
	"PATCH /api/v1/agents/:id/health-status":                   true,
	"POST /api/v1/generators":                                  true,
	"POST /api/v1/stacks":                                      true,
	"POST /api/v1/stacks/:id/labels":                           true,
	"POST /api/v1/stacks/:id/annotations":                      true,
	"POST /api/v1/stacks/:id/deployment-objects":               true,
	"POST /api/v1/stacks/:id/deployment-objects/from-template": true,
	"POST /api/v1/stacks/:id/rollback":                         true,
	"POST /api/v1/deployment-objects/:id/diagnostics":          true,
	"POST /api/v1/diagnostics/:id/result":                      true,
	"POST /api/v1/templates":                                   true,
	"POST /api/v1/templates/:id/labels":                        true,
	"POST /api/v1/templates/:id/annotations":                   true,
	"POST /api/v1/work-orders":                                 true,
	"POST /api/v1/work-orders/:id/complete":                    true,
	"POST /api/v1/work-order-schedules":                        true,
	"POST /api/v1/webhooks":                                    true,
	"POST /api/v1/webhook-deliveries/:id/result":               true,
}

// IdempotentRoutes lists the routes that honour Idempotency-Key, as
// "METHOD /path" with gin's parameter syntax (tests and docs check them).
func IdempotentRoutes() []string {
	out := make([]string, 0, len(idempotentRoutes))
	for r := range idempotentRoutes {
		out = append(out, r)
	}
	return out
}

// idempotent runs a request that carries Idempotency-Key on one of
// idempotentRoutes through the idempotency use case: the rest of the chain
// (guards, handler, use cases) runs inside one transaction that also
// stores the response, which is buffered and sent only after the commit. It
// must run after authenticate: keys are scoped per identity.
func idempotent(svc *idempotency.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		key, present := c.Request.Header[headerIdempotencyKey]
		if !present || !idempotentRoutes[c.Request.Method+" "+c.FullPath()] {
			c.Next()
			return
		}
		if len(key) != 1 {
			httpserver.Fail(c, domain.Invalid("send one Idempotency-Key header"))
			return
		}
		var body []byte
		if c.Request.Body != nil {
			var err error
			if body, err = io.ReadAll(c.Request.Body); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					httpserver.AbortError(c, http.StatusRequestEntityTooLarge, "request body too large")
					return
				}
				httpserver.Fail(c, domain.Invalid("could not read request body"))
				return
			}
			c.Request.Body = io.NopCloser(bytes.NewReader(body))
		}
		req := idempotency.Request{Scope: idempotency.ScopeOf(principal(c)), Key: key[0],
			Method: c.Request.Method, Path: c.Request.URL.RequestURI(), Body: body}
		orig, origReq := c.Writer, c.Request
		buf := &bufferedWriter{ResponseWriter: orig, header: http.Header{}, status: http.StatusOK}
		out, err := svc.Do(c.Request.Context(), req, func(ctx context.Context) idempotency.Response {
			c.Writer, c.Request = buf, origReq.WithContext(ctx)
			defer func() { c.Writer, c.Request = orig, origReq }()
			c.Next()
			return idempotency.Response{Status: buf.status, ContentType: buf.header.Get("Content-Type"), Body: buf.body.Bytes()}
		})
		c.Writer, c.Request = orig, origReq
		if err != nil {
			httpserver.Fail(c, err)
			return
		}
		if out.Replayed {
			c.Header(headerReplayed, "true")
			if out.ContentType != "" {
				c.Header("Content-Type", out.ContentType)
			}
			c.Status(out.Status)
			_, _ = c.Writer.Write(out.Body)
			c.Abort()
			return
		}
		h := c.Writer.Header()
		for k, vs := range buf.header {
			h[k] = vs
		}
		c.Status(out.Status)
		_, _ = c.Writer.Write(out.Body)
	}
}

// bufferedWriter holds a handler's response until its transaction commits.
type bufferedWriter struct {
	gin.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (w *bufferedWriter) Header() http.Header { return w.header }

func (w *bufferedWriter) WriteHeader(code int) {
	if code > 0 && !w.wrote {
		w.status = code
	}
}

func (w *bufferedWriter) WriteHeaderNow() { w.wrote = true }

func (w *bufferedWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.body.Write(b)
}

func (w *bufferedWriter) WriteString(s string) (int, error) {
	w.wrote = true
	return w.body.WriteString(s)
}

func (w *bufferedWriter) Status() int { return w.status }

func (w *bufferedWriter) Size() int {
	if !w.wrote {
		return -1
	}
	return w.body.Len()
}

func (w *bufferedWriter) Written() bool { return w.wrote }

// Flush is a no-op: nothing leaves before the commit.
func (w *bufferedWriter) Flush() {}
