package httpserver

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

func TestShedAnswers503WithRetryAfterWhenSaturated(t *testing.T) {
	t.Parallel()
	gin.SetMode(gin.ReleaseMode)
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	e := gin.New()
	e.Use(Shed(ShedOptions{MaxInFlight: 1, QueueWait: 50 * time.Millisecond, Registry: prometheus.NewRegistry(),
		Exempt: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/cheap") }}))
	e.GET("/slow", func(c *gin.Context) { entered <- struct{}{}; <-release; c.Status(200) })
	e.GET("/cheap", func(c *gin.Context) { c.Status(200) })
	e.GET("/poll", func(c *gin.Context) { c.Status(200) })
	srv := httptest.NewServer(e)
	defer srv.Close()

	done := make(chan int, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-entered // the only slot is taken

	resp, err := http.Get(srv.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || ra < 1 || ra > 3 {
		t.Fatalf("saturated: %d Retry-After %q, want 503 with 1–3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, path := range []string{"/cheap", "/poll?wait=1s"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s while saturated: %d, want 200 (not limited)", path, resp.StatusCode)
		}
	}
	close(release)
	if got := <-done; got != 200 {
		t.Fatalf("the request holding the slot: %d", got)
	}
}
