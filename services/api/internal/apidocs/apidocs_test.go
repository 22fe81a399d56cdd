package apidocs

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func init() { gin.SetMode(gin.TestMode) }

func newRouter(t *testing.T) *gin.Engine {
	t.Helper()
	r := gin.New()
	Mount(r)
	return r
}

func get(t *testing.T, r http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// The embedded copy must equal the repository's api-spec/openapi.yaml; run
// `go generate ./...` in services/api after editing the spec.
func TestSpecCopyUpToDate(t *testing.T) {
	src := filepath.Join("..", "..", "..", "..", "api-spec", "openapi.yaml")
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read the source of truth %s: %v", src, err)
	}
	if !bytes.Equal(want, specYAML) {
		t.Fatalf("services/api/internal/apidocs/openapi.yaml is stale: run `go generate ./internal/apidocs` in services/api")
	}
}

func TestSpecJSONServed(t *testing.T) {
	w := get(t, newRouter(t), SpecPath)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi = %v", doc["openapi"])
	}
	if paths, _ := doc["paths"].(map[string]any); len(paths) == 0 {
		t.Fatal("no paths")
	}
	// Conditional requests.
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(t, newRouter(t), SpecPath, "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match: status %d", w.Code)
	}
}

func TestSwaggerIndexServed(t *testing.T) {
	r := newRouter(t)
	w := get(t, r, UIPath)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	body := w.Body.String()
	if !strings.Contains(body, `id="swagger-ui"`) {
		t.Fatalf("not the swagger page: %.200s", body)
	}
	// Every asset the page refers to is served.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 4 {
		t.Fatalf("expected asset references, got %v", refs)
	}
	for _, m := range refs {
		ref := m[1]
		if !strings.HasPrefix(ref, "swagger-ui/") {
			t.Fatalf("asset %q is not relative to /swagger-ui/", ref)
		}
		if w := get(t, r, "/"+ref); w.Code != http.StatusOK {
			t.Fatalf("GET /%s: status %d", ref, w.Code)
		}
	}
	// The initializer loads the spec from /docs/openapi.json.
	init := get(t, r, "/swagger-ui/brokkr-init.js").Body.String()
	if !strings.Contains(init, `"docs/openapi.json"`) {
		t.Fatalf("initializer does not load the spec: %s", init)
	}
}

func TestSwaggerIndexRedirects(t *testing.T) {
	r := newRouter(t)
	for _, target := range []string{"/swagger-ui/", "/swagger-ui/index.html"} {
		w := get(t, r, target)
		if w.Code != http.StatusFound {
			t.Fatalf("%s: status %d", target, w.Code)
		}
		loc := w.Header().Get("Location")
		base, _ := http.NewRequest(http.MethodGet, "http://broker"+target, nil)
		resolved, err := base.URL.Parse(loc)
		if err != nil || resolved.Path != UIPath {
			t.Fatalf("%s: Location %q resolves to %v (%v)", target, loc, resolved, err)
		}
	}
}

func TestSwaggerAssetsServed(t *testing.T) {
	r := newRouter(t)
	for target, wantCT := range map[string]string{
		"/swagger-ui/swagger-ui.css":                  "text/css; charset=utf-8",
		"/swagger-ui/swagger-ui-bundle.js":            "text/javascript; charset=utf-8",
		"/swagger-ui/swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
		"/swagger-ui/favicon-32x32.png":               "image/png",
		"/swagger-ui/LICENSE":                         "text/plain; charset=utf-8",
	} {
		w := get(t, r, target)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", target, w.Code)
		}
		if ct := w.Header().Get("Content-Type"); ct != wantCT {
			t.Fatalf("%s: content type %q, want %q", target, ct, wantCT)
		}
		if w.Body.Len() == 0 {
			t.Fatalf("%s: empty body", target)
		}
		etag := w.Header().Get("ETag")
		if w := get(t, r, target, "If-None-Match", etag); w.Code != http.StatusNotModified {
			t.Fatalf("%s with If-None-Match: status %d", target, w.Code)
		}
	}
	w := get(t, r, "/swagger-ui/nope.js")
	if w.Code != http.StatusNotFound || !json.Valid(w.Body.Bytes()) {
		t.Fatalf("unknown asset: %d %s", w.Code, w.Body.String())
	}
}

func TestRoutes(t *testing.T) {
	routes, err := Routes()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	ops := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		if have[key] {
			t.Fatalf("duplicate route %s", key)
		}
		have[key] = true
		if rt.OperationID == "" || ops[rt.OperationID] {
			t.Fatalf("%s: missing or duplicate operationId %q", key, rt.OperationID)
		}
		ops[rt.OperationID] = true
		if strings.ContainsAny(rt.Path, "{}") {
			t.Fatalf("%s: not converted to gin syntax", key)
		}
	}
	for _, want := range []string{
		"GET /healthz", "GET /readyz", "GET /metrics", "GET /docs/openapi.json", "GET /swagger-ui",
		"POST /api/v1/auth/pak",
		"GET /api/v1/agents", "GET /api/v1/agents/", "GET /api/v1/agents/:id",
		"GET /api/v1/agents/:id/target-state",
		"DELETE /api/v1/agents/:id/targets/:stack_id",
		"DELETE /api/v1/stacks/:id/labels/:label",
		"GET /api/v1/admin/audit-logs", "POST /api/v1/admin/config/reload",
	} {
		if !have[want] {
			t.Errorf("missing %s", want)
		}
	}
	// The exact set is checked against the router by the api's
	// TestRouterMatchesSpec; here only that the spec is not truncated.
	if len(routes) < 51 {
		keys := make([]string, 0, len(have))
		for k := range have {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Errorf("%d routes, want at least 51:\n%s", len(routes), strings.Join(keys, "\n"))
	}

	// The spec's routes, plus the assets route, can all live in one gin
	// router (gin panics on conflicting wildcards).
	r := gin.New()
	noop := func(*gin.Context) {}
	for _, rt := range routes {
		if rt.Path == SpecPath || rt.Path == UIPath {
			continue
		}
		r.Handle(rt.Method, rt.Path, noop)
	}
	Mount(r)
}

func TestGinPath(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v1/agents/{id}/targets/{stack_id}": "/api/v1/agents/:id/targets/:stack_id",
		"/api/v1/agents/":                        "/api/v1/agents/",
		"/healthz":                               "/healthz",
	} {
		if got := GinPath(in); got != want {
			t.Errorf("GinPath(%q) = %q, want %q", in, got, want)
		}
	}
}
