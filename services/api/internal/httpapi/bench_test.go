package httpapi_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

const (
	benchAgents          = 1000
	benchStacksPerAgent  = 5
	benchDocumentPayload = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench\n  namespace: default\ndata:\n  key: value\n"
)

type benchAgent struct {
	id, pak, etag string
}

// seedTargetState creates agents that each target their own stacks, each
// stack with one deployment object, in bulk SQL (setup is not measured).
func seedTargetState(b *testing.B, e *apitest.Env) []benchAgent {
	b.Helper()
	ctx := context.Background()
	db := e.Store.DB()
	agents := make([]benchAgent, benchAgents)
	tx := db.MustBegin()
	for i := range agents {
		p, hash, err := pak.Generate(pak.Config{Prefix: "brokkr", ShortTokenPrefix: "BR", ShortTokenLength: 8, LongTokenLength: 24}, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		var id string
		if err := tx.GetContext(ctx, &id, `INSERT INTO agents (name, cluster_name, pak_hash) VALUES ($1, 'bench', $2) RETURNING id`,
			fmt.Sprintf("agent-%d", i), hash); err != nil {
			b.Fatal(err)
		}
		for s := 0; s < benchStacksPerAgent; s++ {
			var sid string
			if err := tx.GetContext(ctx, &sid, `INSERT INTO stacks (name) VALUES ($1) RETURNING id`, fmt.Sprintf("s-%d-%d", i, s)); err != nil {
				b.Fatal(err)
			}
			tx.MustExecContext(ctx, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, id, sid)
			tx.MustExecContext(ctx, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum) VALUES ($1, $2, $3)`,
				sid, benchDocumentPayload, stack.Checksum(benchDocumentPayload))
		}
		agents[i] = benchAgent{id: id, pak: p}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	tx2 := db.MustBegin()
	tx2.MustExecContext(ctx, `ANALYZE`)
	_ = tx2.Commit()
	for i := range agents {
		r := e.Must(200, "GET", "/api/v1/agents/"+agents[i].id+"/target-state", agents[i].pak, nil)
		agents[i].etag = r.Header.Get("ETag")
	}
	return agents
}

// latencies collects per-request durations to report p50/p99.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) report(b *testing.B) {
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	if len(l.d) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func runRequests(b *testing.B, client *http.Client, build func(i int) *http.Request, want int) {
	var (
		next atomic.Int64
		lat  latencies
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := build(int(next.Add(1)))
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat.add(time.Since(start))
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
	b.StopTimer()
	lat.report(b)
}

// BenchmarkTargetState measures GET /agents/{id}/target-state for 1,000
// agents × 5 stacks through the real router, auth cache, PostgreSQL and
// Redis, beside a bare gin handler on the same machine in the same run.
func BenchmarkTargetState(b *testing.B) {
	e := apitest.New(b)
	agents := seedTargetState(b, e)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(a benchAgent, etag bool) *http.Request {
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/agents/"+a.id+"/target-state", nil)
		req.Header.Set("Authorization", "Bearer "+a.pak)
		if etag {
			req.Header.Set("If-None-Match", a.etag)
		}
		return req
	}
	b.Run("etag-hit-304", func(b *testing.B) {
		runRequests(b, client, func(i int) *http.Request { return get(agents[i%len(agents)], true) }, http.StatusNotModified)
	})
	b.Run("etag-miss-200", func(b *testing.B) {
		runRequests(b, client, func(i int) *http.Request { return get(agents[i%len(agents)], false) }, http.StatusOK)
	})
	b.Run("baseline-bare-gin", func(b *testing.B) {
		body := make([]byte, 0, 4096)
		for i := 0; i < benchStacksPerAgent; i++ {
			body = fmt.Appendf(body, `{"yaml_content":%q}`, benchDocumentPayload)
		}
		r := gin.New()
		r.GET("/x", func(c *gin.Context) { c.Data(200, "application/json", body) })
		srv := httptest.NewServer(r)
		defer srv.Close()
		runRequests(b, client, func(int) *http.Request { req, _ := http.NewRequest("GET", srv.URL+"/x", nil); return req }, http.StatusOK)
	})
}
