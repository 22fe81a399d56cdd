package httpserver

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// ShedOptions configure Shed.
type ShedOptions struct {
	// MaxInFlight requests are worked on at once; ≤0 disables shedding.
	MaxInFlight int
	// QueueWait is how long a request beyond MaxInFlight may wait for a
	// slot before it is shed.
	QueueWait time.Duration
	// Registry receives brokkr_http_shed_total; nil records nothing.
	Registry prometheus.Registerer
	// Exempt requests bypass the limit: cheap reads (the api's target
	// state, answered from memory) must not queue behind slow writes.
	Exempt func(r *http.Request) bool
}

// Shed bounds the requests a process works on at once. A request that finds
// no slot within QueueWait is answered 503 with Retry-After (load, never a
// 500), before any database work, so an overloaded replica degrades into
// clients backing off instead of a growing queue on the connection pool.
// Held long-polls (a ?wait= query) are not counted: they cost a goroutine,
// not work, and their reads are bounded by the target-state index.
func Shed(opts ShedOptions) gin.HandlerFunc {
	if opts.MaxInFlight <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	var shed prometheus.Counter = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "brokkr_http_shed_total",
		Help: "Requests answered 503 because the process was saturated",
	})
	if opts.Registry != nil {
		if c, err := RegisterOrReuse(opts.Registry, shed); err == nil {
			shed = c
		}
	}
	slots := make(chan struct{}, opts.MaxInFlight)
	return func(c *gin.Context) {
		if c.Query("wait") != "" || (opts.Exempt != nil && opts.Exempt(c.Request)) {
			c.Next()
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			t := time.NewTimer(opts.QueueWait)
			select {
			case slots <- struct{}{}:
				t.Stop()
			case <-t.C:
				shed.Inc()
				c.Header("Retry-After", RetryAfter())
				AbortError(c, http.StatusServiceUnavailable, "server is overloaded, retry later")
				return
			case <-c.Request.Context().Done():
				t.Stop()
				c.Abort()
				return
			}
		}
		defer func() { <-slots }()
		c.Next()
	}
}

// RetryAfter is the Retry-After value of a shed request: 1–3 seconds, spread
// so shed clients do not come back in one wave.
func RetryAfter() string { return strconv.Itoa(1 + rand.IntN(3)) }
