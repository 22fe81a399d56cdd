package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/logging"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

type fixture struct {
	srv   *httptest.Server
	reg   *prometheus.Registry
	logs  *testsupport.SyncBuffer
	store *config.Store
	env   *envVar
}

// envVar lets a test change the environment a config.Store reloads from.
type envVar struct {
	mu sync.Mutex
	kv []string
}

func (e *envVar) set(kv ...string) { e.mu.Lock(); e.kv = kv; e.mu.Unlock() }
func (e *envVar) get() []string    { e.mu.Lock(); defer e.mu.Unlock(); return e.kv }

func newFixture(t *testing.T, checks ...Check) *fixture {
	t.Helper()
	env := &envVar{}
	opts := config.LoadOptions{Environ: env.get}
	initial, err := config.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	store := config.NewStore(initial, opts, nil)
	logs := &testsupport.SyncBuffer{}
	log, _ := logging.New("test", config.Log{Level: "debug", Format: "json"}, logs)
	reg := NewRegistry()

	e := New(Options{
		Service:      "test",
		Logger:       log,
		MaxBodyBytes: initial.HTTP.MaxBodyBytes,
		Registry:     reg,
		CORS:         store.CORS,
	})
	Mount(e, Ops{Ready: checks, ReadyTimeout: 200 * time.Millisecond, Metrics: reg, Logger: log})

	e.GET("/panic", func(c *gin.Context) { panic("boom: handler exploded") })
	e.POST("/raw", func(c *gin.Context) {
		b, err := io.ReadAll(c.Request.Body)
		if err != nil {
			status, msg := BodyStatus(err)
			AbortError(c, status, msg)
			return
		}
		c.JSON(http.StatusOK, gin.H{"bytes": len(b)})
	})
	api := e.Group("/api/v1", CORS(store.CORS), func(c *gin.Context) {
		if c.GetHeader("Authorization") == "" && strings.HasPrefix(c.Request.URL.Path, "/api/v1/secure") {
			AbortError(c, http.StatusUnauthorized, "unauthorized")
		}
	})
	api.GET("/agents/:id", func(c *gin.Context) {
		logging.RequestID(c) // the handler can read it through the gin context
		c.JSON(http.StatusOK, gin.H{"id": c.Param("id"), "request_id": logging.RequestID(c)})
	})
	api.GET("/secure", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	api.POST("/echo", func(c *gin.Context) {
		var req struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		if err := BindJSON(c, &req); err != nil {
			return
		}
		c.JSON(http.StatusOK, req)
	})

	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, reg: reg, logs: logs, store: store, env: env}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(t *testing.T, method, path string, body io.Reader, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{status: r.StatusCode, header: r.Header, body: string(b)}
}

func errorBody(t *testing.T, r resp) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q, body %q", ct, r.body)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return m["error"]
}

func TestRequestID(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		in     string
		echoed bool
	}{
		{"none → generated", "", false},
		{"sane → kept", "abc-123_x.y:z", true},
		{"spaces → replaced", "a b", false},
		{"injection → replaced", "x\" level=ERROR", false},
		{"too long → replaced", strings.Repeat("a", 129), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.in != "" {
				hdr = []string{RequestIDHeader, tt.in}
			}
			r := f.do(t, http.MethodGet, "/api/v1/agents/x", nil, hdr...)
			got := r.header.Get(RequestIDHeader)
			if tt.echoed {
				if got != tt.in {
					t.Fatalf("response id %q, want %q", got, tt.in)
				}
			} else if _, err := uuid.Parse(got); err != nil {
				t.Fatalf("response id %q is not a UUID", got)
			}
			if !strings.Contains(r.body, `"request_id":"`+got+`"`) {
				t.Fatalf("handler context lacks the id: %s", r.body)
			}
			if !strings.Contains(f.logs.String(), `"request_id":"`+got+`"`) {
				t.Fatalf("access log lacks the id %q", got)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	f := newFixture(t)
	f.do(t, http.MethodGet, "/api/v1/agents/7", nil, RequestIDHeader, "log-test-1")
	var line map[string]any
	for l := range strings.SplitSeq(f.logs.String(), "\n") {
		if strings.Contains(l, "log-test-1") && strings.Contains(l, `"msg":"http request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := map[string]any{
		"method": "GET", "path": "/api/v1/agents/7", "route": "/api/v1/agents/:id",
		"status": float64(200), "request_id": "log-test-1", "service": "test",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (line %v)", k, line[k], v, line)
		}
	}
	if _, ok := line["latency_ms"].(float64); !ok {
		t.Errorf("latency_ms missing: %v", line)
	}
	if n := strings.Count(f.logs.String(), `"request_id"`); n != 1 {
		t.Errorf("request_id appears %d times in %s", n, f.logs.String())
	}
}

func TestRecoveryKeepsServing(t *testing.T) {
	f := newFixture(t)
	// One client, so the follow-up request reuses the connection if it
	// survived; either way the server must answer it.
	r := f.do(t, http.MethodGet, "/panic", nil)
	if r.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", r.status)
	}
	if msg := errorBody(t, r); msg != "internal server error" {
		t.Fatalf("error %q", msg)
	}
	if strings.Contains(r.body, "boom") {
		t.Fatal("panic value leaked to the client")
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "boom: handler exploded") || !strings.Contains(logs, "goroutine") {
		t.Fatalf("panic and stack not logged: %s", logs)
	}
	for range 3 {
		if r := f.do(t, http.MethodGet, "/healthz", nil); r.status != http.StatusOK || r.body != "OK" {
			t.Fatalf("after panic: %d %q", r.status, r.body)
		}
	}
	if !strings.Contains(scrape(t, f), `brokkr_http_requests_total{endpoint="/panic",method="GET",status="500"} 1`) {
		t.Fatal("the panicking request was not counted as a 500")
	}
}

// chunked hides the length so the request is sent chunked and only the
// MaxBytesReader can stop it.
type chunked struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	f := newFixture(t)
	big := `{"name":"` + strings.Repeat("x", 3<<20) + `"}`
	tests := []struct {
		name   string
		path   string
		body   func() io.Reader
		status int
	}{
		{"3 MiB with Content-Length", "/api/v1/echo", func() io.Reader { return strings.NewReader(big) }, 413},
		{"3 MiB chunked via BindJSON", "/api/v1/echo", func() io.Reader { return chunked{strings.NewReader(big)} }, 413},
		{"3 MiB chunked via raw read", "/raw", func() io.Reader { return chunked{strings.NewReader(big)} }, 413},
		{"small body", "/api/v1/echo", func() io.Reader { return strings.NewReader(`{"name":"a","count":2}`) }, 200},
		{"just under the limit", "/raw", func() io.Reader { return chunked{strings.NewReader(strings.Repeat("y", 2<<20))} }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, http.MethodPost, tt.path, tt.body(), "Content-Type", "application/json")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if tt.status == 413 {
				if msg := errorBody(t, r); msg != "request body too large" {
					t.Fatalf("error %q", msg)
				}
			}
		})
	}
	if r := f.do(t, http.MethodGet, "/healthz", nil); r.status != 200 {
		t.Fatalf("server unhealthy after oversize bodies: %d", r.status)
	}
}

func TestBindJSONErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		body    string
		ct      string
		status  int
		wantMsg string
	}{
		{"ok", `{"name":"a","count":1}`, "application/json", 200, ""},
		{"ok without content type", `{"name":"a"}`, "", 200, ""},
		{"ok with charset", `{"name":"a"}`, "application/json; charset=utf-8", 200, ""},
		{"syntax", `{"name":`, "application/json", 400, "invalid JSON"},
		{"garbage", `{"name" "a"}`, "application/json", 400, "invalid JSON at byte"},
		{"empty", ``, "application/json", 400, "request body must be a JSON value"},
		{"trailing", `{"name":"a"} {"x":1}`, "application/json", 400, "trailing data"},
		{"wrong type", `{"count":"three"}`, "application/json", 422, `field "count" must be an integer`},
		{"not an object", `[1,2]`, "application/json", 422, "body must be an object"},
		{"content type", `{"name":"a"}`, "text/plain", 415, "Content-Type must be application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.ct != "" {
				hdr = []string{"Content-Type", tt.ct}
			}
			r := f.do(t, http.MethodPost, "/api/v1/echo", strings.NewReader(tt.body), hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if tt.wantMsg != "" {
				if msg := errorBody(t, r); !strings.Contains(msg, tt.wantMsg) {
					t.Fatalf("error %q lacks %q", msg, tt.wantMsg)
				}
			}
		})
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		method, path string
		status       int
		msg, allow   string
	}{
		{http.MethodGet, "/nope", 404, "not found", ""},
		{http.MethodGet, "/api/v1/agents/x/", 404, "not found", ""},
		{http.MethodDelete, "/api/v1/agents/x", 405, "method not allowed", "GET"},
		{http.MethodPost, "/healthz", 405, "method not allowed", "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := f.do(t, tt.method, tt.path, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d", r.status, tt.status)
			}
			if msg := errorBody(t, r); msg != tt.msg {
				t.Fatalf("error %q, want %q", msg, tt.msg)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Fatalf("Allow %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestOps(t *testing.T) {
	var redisDown bool
	var mu sync.Mutex
	f := newFixture(t,
		Check{Name: "database", Probe: func(context.Context) error { return nil }},
		Check{Name: "redis", Probe: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if redisDown {
				return errors.New("dial tcp 10.0.0.9:6379: connection refused")
			}
			return nil
		}},
	)
	r := f.do(t, http.MethodGet, "/healthz", nil)
	if r.status != 200 || r.body != "OK" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("healthz: %d %q %q", r.status, r.body, r.header.Get("Content-Type"))
	}
	r = f.do(t, http.MethodGet, "/readyz", nil)
	if r.status != 200 || r.body != "Ready" {
		t.Fatalf("readyz: %d %q", r.status, r.body)
	}
	mu.Lock()
	redisDown = true
	mu.Unlock()
	r = f.do(t, http.MethodGet, "/readyz", nil)
	if r.status != 503 || r.body != "redis unavailable" || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("readyz with redis down: %d %q", r.status, r.body)
	}
	if strings.Contains(r.body, "10.0.0.9") {
		t.Fatal("probe error leaked to the caller")
	}
	if !strings.Contains(f.logs.String(), "connection refused") {
		t.Fatal("probe error not logged")
	}
}

func TestReadyzTimeout(t *testing.T) {
	f := newFixture(t, Check{Name: "database", Probe: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	start := time.Now()
	r := f.do(t, http.MethodGet, "/readyz", nil)
	if r.status != 503 || r.body != "database unavailable" {
		t.Fatalf("hanging probe: %d %q", r.status, r.body)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("readyz did not honour its timeout")
	}
}

func scrape(t *testing.T, f *fixture) string {
	t.Helper()
	r := f.do(t, http.MethodGet, "/metrics", nil, "Accept", "application/openmetrics-text; version=1.0.0")
	if r.status != 200 {
		t.Fatalf("metrics status %d", r.status)
	}
	if ct := r.header.Get("Content-Type"); ct != MetricsContentType {
		t.Fatalf("metrics Content-Type %q, want %q", ct, MetricsContentType)
	}
	return r.body
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	id := uuid.NewString()
	f.do(t, http.MethodGet, "/api/v1/agents/"+id, nil)
	f.do(t, http.MethodGet, "/api/v1/agents/"+uuid.NewString(), nil)
	f.do(t, http.MethodGet, "/api/v1/agents/12345", nil)
	f.do(t, http.MethodGet, "/api/v1/secure", nil)                   // 401 from "auth"
	f.do(t, http.MethodGet, "/wp-admin/"+uuid.NewString()+"/x", nil) // 404, no route
	f.do(t, http.MethodGet, "/healthz", nil)
	scrape(t, f)
	body := scrape(t, f)

	for _, want := range []string{
		`brokkr_http_requests_total{endpoint="/api/v1/agents/:id",method="GET",status="200"} 3`,
		`brokkr_http_requests_total{endpoint="/api/v1/secure",method="GET",status="401"} 1`,
		`brokkr_http_requests_total{endpoint="unmatched",method="GET",status="404"} 1`,
		`brokkr_http_requests_total{endpoint="/healthz",method="GET",status="200"} 1`,
		`brokkr_http_request_duration_seconds_bucket{endpoint="/api/v1/agents/:id",method="GET",le="0.001"}`,
		`brokkr_http_request_duration_seconds_bucket{endpoint="/api/v1/agents/:id",method="GET",le="10"} 3`,
		`brokkr_http_request_duration_seconds_count{endpoint="/api/v1/agents/:id",method="GET"} 3`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, bad := range []string{`endpoint="/metrics"`, id, "wp-admin"} {
		if strings.Contains(body, bad) {
			t.Errorf("metrics contain %s", bad)
		}
	}
}

func TestRegisterHTTPMetricsTwiceReuses(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := RegisterHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RegisterHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Requests != b.Requests || a.Duration != b.Duration {
		t.Fatal("second registration did not reuse the collectors")
	}
}

func TestCORS(t *testing.T) {
	f := newFixture(t)
	const ui = "http://localhost:3001"
	preflight := func(path, origin string) resp {
		return f.do(t, http.MethodOptions, path, nil,
			"Origin", origin,
			"Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization,content-type")
	}

	t.Run("API preflight, allowed origin, before auth", func(t *testing.T) {
		r := preflight("/api/v1/secure", ui)
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		want := map[string]string{
			"Access-Control-Allow-Origin":  ui,
			"Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
			"Access-Control-Allow-Headers": "Authorization, Content-Type",
			"Access-Control-Max-Age":       "3600",
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
	})
	t.Run("API preflight, foreign origin", func(t *testing.T) {
		r := preflight("/api/v1/agents/x", "https://evil.example")
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("status %d, ACAO %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("preflight outside the API is permissive", func(t *testing.T) {
		r := preflight("/anything/at/all", "https://evil.example")
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != "*" ||
			r.header.Get("Access-Control-Allow-Methods") != "POST" ||
			r.header.Get("Access-Control-Allow-Headers") != "authorization,content-type" {
			t.Fatalf("status %d, headers %v", r.status, r.header)
		}
	})
	t.Run("actual 401 carries CORS headers", func(t *testing.T) {
		r := f.do(t, http.MethodGet, "/api/v1/secure", nil, "Origin", ui)
		if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != ui {
			t.Fatalf("status %d, ACAO %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
		if errorBody(t, r) != "unauthorized" {
			t.Fatal("auth body")
		}
	})
	t.Run("hot reload of origins and max age", func(t *testing.T) {
		f.env.set("BROKKR__CORS__ALLOWED_ORIGINS=https://new.example", "BROKKR__CORS__MAX_AGE_SECONDS=60")
		if _, err := f.store.Reload(); err != nil {
			t.Fatal(err)
		}
		r := preflight("/api/v1/agents/x", "https://new.example")
		if r.header.Get("Access-Control-Allow-Origin") != "https://new.example" || r.header.Get("Access-Control-Max-Age") != "60" {
			t.Fatalf("after reload: %v", r.header)
		}
		if r := preflight("/api/v1/agents/x", ui); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("old origin still allowed after reload")
		}
		f.env.set("BROKKR__CORS__ALLOWED_ORIGINS=https://a.example,*")
		if _, err := f.store.Reload(); err != nil {
			t.Fatal(err)
		}
		r = f.do(t, http.MethodGet, "/api/v1/agents/x", nil, "Origin", "https://whoever.example")
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("wildcard: ACAO %q", r.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

func TestIncomingTraceReachesLogs(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	f := newFixture(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := f.do(t, http.MethodGet, "/api/v1/agents/x", nil,
		"traceparent", "00-"+traceID+"-00f067aa0ba902b7-01", RequestIDHeader, "trace-test")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	for l := range strings.SplitSeq(f.logs.String(), "\n") {
		if strings.Contains(l, "trace-test") && strings.Contains(l, `"trace_id":"`+traceID+`"`) {
			return
		}
	}
	t.Fatalf("access log lacks trace_id %s: %s", traceID, f.logs.String())
}

// TestNoTracingSkipsSpans: with NoTracing an incoming trace context is not
// continued (no span middleware ran); without it, it is.
func TestNoTracingSkipsSpans(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, noTracing := range []bool{false, true} {
		e := New(Options{Service: "test", NoTracing: noTracing})
		var got string
		e.GET("/x", func(c *gin.Context) {
			got = trace.SpanContextFromContext(c.Request.Context()).TraceID().String()
			c.Status(http.StatusNoContent)
		})
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
		e.ServeHTTP(httptest.NewRecorder(), req)
		if continued := got == traceID; continued == noTracing {
			t.Fatalf("NoTracing=%v: trace id in the handler %q", noTracing, got)
		}
	}
}
