package httpserver

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// rawGet sends a request line as given (no client-side escaping), so a
// path such as /%ff%fe reaches the server exactly as a hostile client sends
// it, and reports a dropped connection as an error.
func rawGet(t *testing.T, base, target string) (int, string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	b, err := io.ReadAll(conn)
	if err != nil || len(b) == 0 {
		return 0, "", fmt.Errorf("connection dropped: %v (%d bytes)", err, len(b))
	}
	var status int
	if _, err := fmt.Sscanf(string(b), "HTTP/1.1 %d", &status); err != nil {
		return 0, string(b), err
	}
	return status, string(b), nil
}

// Issue item 4: invalid UTF-8 in a path panicked in the metrics middleware
// and dropped the connection; unknown paths each made a new series.
func TestInvalidUTF8PathIsJSON400AndBoundedSeries(t *testing.T) {
	f := newFixture(t)
	for _, target := range []string{"/api/v1/agents/%ff%fe", "/%c0%af", "/api/v1/agents/%00", "/x?q=%ff", "/x?q=a%00b"} {
		status, body, err := rawGet(t, f.srv.URL, target)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		if status != http.StatusBadRequest || !strings.Contains(body, `"error":"invalid`) || !strings.Contains(body, `"code":"bad_request"`) {
			t.Errorf("%s: status %d body %q, want a JSON 400", target, status, body)
		}
	}
	for i := 0; i < 50; i++ {
		f.do(t, http.MethodGet, fmt.Sprintf("/scan-%d/x", i), nil)
	}
	f.do(t, "FOO", "/api/v1/agents/1", nil)
	metrics := scrape(t, f)
	if strings.Contains(metrics, "scan-") {
		t.Error("unmatched paths became label values")
	}
	if !strings.Contains(metrics, `brokkr_http_requests_total{endpoint="unmatched",method="GET",status="404"} 50`) {
		t.Error("the 50 unmatched requests do not share one series")
	}
	if !strings.Contains(metrics, `endpoint="unmatched",method="GET",status="400"} 3`) ||
		!strings.Contains(metrics, `endpoint="/api/v1/agents/:id",method="GET",status="400"} 2`) {
		t.Errorf("the bad-URL requests are not counted as 400s:\n%s", grep(metrics, "brokkr_http_requests_total"))
	}
	if strings.Contains(metrics, `method="FOO"`) {
		t.Error("an arbitrary method became a label value")
	}
	if strings.Contains(f.logs.String(), "panic") {
		t.Error("a bad URL caused a panic")
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A panic in a middleware outside the inner recovery (as the metrics one
// was) still answers a JSON 500 instead of dropping the connection.
func TestPanicOutsideInnerRecoveryIsJSON500(t *testing.T) {
	e := New(Options{Service: "test"})
	e.Use(func(c *gin.Context) { panic("middleware exploded") })
	e.GET("/x", func(c *gin.Context) { c.Status(http.StatusOK) })
	// The outer recovery New installs first: a middleware that panics
	// after the handler answered (as the metrics one did) must neither
	// drop the connection nor change the answer.
	e2 := gin.New()
	e2.Use(recovery(slog.New(slog.DiscardHandler)), func(c *gin.Context) { c.Next(); panic("after") })
	e2.GET("/x", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	for name, h := range map[string]http.Handler{"handler chain": e, "metrics": e2} {
		srv := httptest.NewServer(h)
		status, body, err := rawGet(t, srv.URL, "/x")
		srv.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "handler chain" && (status != 500 || !strings.Contains(body, `{"code":"internal_error","error":"internal server error","message":"internal server error"}`)) {
			t.Errorf("%s: status %d body %q", name, status, body)
		}
		if name == "metrics" && status != http.StatusOK {
			// The handler had answered already; the panic afterwards must
			// neither drop the connection nor change the answer.
			t.Errorf("%s: status %d", name, status)
		}
	}
}

func TestCheckJSONText(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{"a":"b"}`, nil},
		{`{"a":"\\u0000"}`, nil}, // an escaped backslash, then the text u0000
		{`{"a":"x\u0000"}`, ErrNUL},
		{`{"\u0000":1}`, ErrNUL},
		{`["\"\u0000"]`, ErrNUL},
		{"{\"a\":\"\xff\"}", ErrInvalidUTF8},
		{`{"a":"\ud800"}`, nil}, // a lone surrogate decodes to U+FFFD
	}
	for _, tt := range tests {
		if got := CheckJSONText([]byte(tt.in)); !errors.Is(got, tt.want) {
			t.Errorf("CheckJSONText(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBindJSONRefusesNULAndInvalidUTF8(t *testing.T) {
	f := newFixture(t)
	for _, body := range []string{`{"name":"a\u0000b"}`, "{\"name\":\"\xfe\"}"} {
		r := f.do(t, http.MethodPost, "/api/v1/echo", strings.NewReader(body), "Content-Type", "application/json")
		if r.status != http.StatusBadRequest {
			t.Errorf("%q: status %d %s", body, r.status, r.body)
		}
		errorBody(t, r)
	}
	r := f.do(t, http.MethodPost, "/api/v1/echo", strings.NewReader(`{"name":"ok","count":99999999999999999999}`), "Content-Type", "application/json")
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("integer overflow: status %d %s", r.status, r.body)
	}
}

// Issue item 2: forwarded headers are believed only from configured proxies.
func TestTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		proxies []string
		want    string
	}{
		{"none trusted (default)", nil, "127.0.0.1"},
		{"loopback proxy trusted", []string{" 127.0.0.1/32 "}, "203.0.113.9"},
		{"other proxy trusted", []string{"10.1.2.3"}, "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := New(Options{Service: "test", TrustedProxies: tt.proxies})
			e.GET("/ip", func(c *gin.Context) { c.String(http.StatusOK, c.ClientIP()) })
			srv := httptest.NewServer(e)
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ip", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Real-IP", "198.51.100.7")
			r, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if string(b) != tt.want {
				t.Errorf("client IP %q, want %q", b, tt.want)
			}
		})
	}
}

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pg " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

func TestDependencyDown(t *testing.T) {
	down := []error{
		domain.Unavailable("auth down", nil),
		fmt.Errorf("query: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}),
		fmt.Errorf("x: %w", driver.ErrBadConn),
		fmt.Errorf("acquire: %w", context.DeadlineExceeded),
		sqlStateErr("08006"), sqlStateErr("57P01"), sqlStateErr("53300"),
	}
	for _, err := range down {
		if !DependencyDown(err) {
			t.Errorf("DependencyDown(%v) = false", err)
		}
	}
	for _, err := range []error{nil, errors.New("bug"), sqlStateErr("23505"), domain.Invalid("x")} {
		if DependencyDown(err) {
			t.Errorf("DependencyDown(%v) = true", err)
		}
	}
}

// Issue item 9: a client that disconnects is a 499 at debug, not a 500.
func TestClientGoneIs499AtDebug(t *testing.T) {
	logs := &testsupport.SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := NewRegistry()
	e := New(Options{Service: "test", Logger: log, Registry: reg})
	started := make(chan struct{})
	done := make(chan struct{})
	e.GET("/slow", func(c *gin.Context) {
		close(started)
		<-c.Request.Context().Done()
		err := fmt.Errorf("query: %w", c.Request.Context().Err())
		if ClientGone(c, err) {
			AbortClientGone(c)
		} else {
			AbortError(c, 500, "internal server error")
		}
		close(done)
	})
	e.GET("/down", func(c *gin.Context) { AbortUnavailable(c, "database unavailable") })
	srv := httptest.NewServer(e)
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	go func() { <-started; cancel() }()
	if _, err := srv.Client().Do(req); err == nil {
		t.Fatal("request was not cancelled")
	}
	<-done
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), `"status":499`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `"level":"DEBUG","msg":"http request"`) || !strings.Contains(logs.String(), `"status":499`) {
		t.Errorf("cancelled request not logged as 499 at debug: %s", logs.String())
	}
	if strings.Contains(logs.String(), `"status":500`) {
		t.Error("cancelled request logged as 500")
	}

	r, err := http.Get(srv.URL + "/down")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 503 || r.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"error":"database unavailable"`) {
		t.Errorf("AbortUnavailable: %d %q %q", r.StatusCode, r.Header.Get("Retry-After"), b)
	}
}

// FuzzCheckJSONText: whatever passes the check decodes to strings without
// NUL and is valid UTF-8, i.e. PostgreSQL can store it.
func FuzzCheckJSONText(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"\u0000"}`, `["\\u0000"]`, "\"\xff\"", `{"k\u0000":1}`, `"\\\\\u0000"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) || CheckJSONText(b) != nil {
			return
		}
		// UseNumber: a number too large for float64 is valid JSON and not this
		// check's business (binding answers it with 422, BodyStatus).
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if strings.ContainsRune(x, 0) {
					t.Fatalf("NUL passed the check: %q", b)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			case map[string]any:
				for k, e := range x {
					walk(k)
					walk(e)
				}
			}
		}
		walk(v)
		if !utf8.Valid(b) {
			t.Fatalf("invalid UTF-8 passed: %q", b)
		}
	})
}
