package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
	"github.com/brokkr-go/brokkr/services/api/internal/console"
)

// seedFleet writes 10,000 agents (labels, heartbeats of every kind), 100
// stacks with 1,000 deployment objects each (100,000 objects), label
// associations giving each agent 6 stacks, a SUCCESS or FAILURE event and
// a health row for every agent × associated stack's latest object, and
// work orders targeting some agents, and three finished diagnostics
// requests with results per agent. Straight SQL: the benchmark measures
// reading, not the write path.
func seedFleet(b *testing.B, e *apitest.Env) (stackID, agentID string) {
	b.Helper()
	db := e.Store.DB()
	for _, q := range []string{
		`INSERT INTO agents (name, cluster_name, status, last_heartbeat)
		 SELECT 'agent-' || lpad(i::text, 5, '0'), 'cluster-' || (i % 50),
		        CASE WHEN i % 20 = 0 THEN 'INACTIVE' ELSE 'ACTIVE' END,
		        CASE WHEN i % 10 = 0 THEN NULL WHEN i % 7 = 0 THEN now() - interval '1 hour'
		             ELSE now() - (i % 60) * interval '1 second' END
		 FROM generate_series(1, 10000) i`,
		`INSERT INTO agent_labels (agent_id, label)
		 SELECT id, CASE WHEN substr(name, 7)::int % 2 = 0 THEN 'env:prod' ELSE 'env:staging' END FROM agents`,
		`INSERT INTO agent_labels (agent_id, label) SELECT id, 'zone:' || (substr(name, 7)::int % 5) FROM agents`,
		`INSERT INTO stacks (name) SELECT 'stack-' || lpad(i::text, 3, '0') FROM generate_series(1, 100) i`,
		// stacks 1-5 go to env:prod, 6-10 to env:staging, 11-15 to zone:0..4
		`INSERT INTO stack_labels (stack_id, label)
		 SELECT id, CASE WHEN n <= 5 THEN 'env:prod' WHEN n <= 10 THEN 'env:staging' ELSE 'zone:' || (n - 11) END
		 FROM (SELECT id, substr(name, 7)::int AS n FROM stacks) s WHERE n <= 15`,
		`INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum)
		 SELECT s.id, 'apiVersion: v1' || chr(10) || 'kind: ConfigMap' || chr(10) || 'metadata: {name: c' || g || '}' || chr(10),
		        md5(s.id::text || g)
		 FROM stacks s, generate_series(1, 1000) g`,
		`INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status, message)
		 SELECT a.id, d.id, 'DEPLOY', CASE WHEN substr(a.name, 7)::int % 13 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END,
		        CASE WHEN substr(a.name, 7)::int % 13 = 0 THEN 'quota exceeded' END
		 FROM agents a JOIN agent_labels al ON al.agent_id = a.id JOIN stack_labels sl ON sl.label = al.label
		 CROSS JOIN LATERAL (SELECT o.id FROM deployment_objects o WHERE o.stack_id = sl.stack_id
		                     ORDER BY o.sequence_id DESC LIMIT 1) d
		 WHERE substr(a.name, 7)::int % 10 <> 0`,
		`INSERT INTO deployment_health (agent_id, deployment_object_id, status, summary, checked_at)
		 SELECT agent_id, deployment_object_id, CASE WHEN status = 'SUCCESS' THEN 'healthy' ELSE 'failing' END, '{}', now()
		 FROM agent_events`,
		// three finished diagnostics requests with results per agent
		`INSERT INTO diagnostic_requests (agent_id, deployment_object_id, status, created_at, completed_at, expires_at)
		 SELECT a.id, (SELECT id FROM deployment_objects LIMIT 1), 'completed', now() - g * interval '1 minute', now(),
		        now() + interval '1 hour'
		 FROM agents a, generate_series(1, 3) g`,
		`INSERT INTO diagnostic_results (request_id, pod_statuses, events, log_tails, collected_at)
		 SELECT id, '[{"name":"p","phase":"Running"}]', '[]', '{"p":"ok"}', now() FROM diagnostic_requests`,
		`ANALYZE`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("%v\n%s", err, q)
		}
	}
	if err := db.Get(&stackID, `SELECT id FROM stacks WHERE name = 'stack-001'`); err != nil {
		b.Fatal(err)
	}
	if err := db.Get(&agentID, `SELECT id FROM agents WHERE name = 'agent-00013'`); err != nil {
		b.Fatal(err)
	}
	return stackID, agentID
}

// BenchmarkFleetPage measures the server time of console pages at 10,000
// agents and 100,000 deployment objects: the request goes through the real
// gin router, session lookup in Redis, the use cases, PostgreSQL and the
// template, into an httptest.ResponseRecorder (no network). The baseline is
// a bare gin handler returning a page of the same size, in the same run.
func BenchmarkFleetPage(b *testing.B) {
	e := apitest.New(b)
	stackID, agentID := seedFleet(b, e)
	cookie := loginCookie(b, e)
	handler := e.Server.Config.Handler

	page := func(path string) func(b *testing.B) {
		return func(b *testing.B) {
			var lat []time.Duration
			var size int
			for b.Loop() {
				req := httptest.NewRequest("GET", path, nil)
				req.Header.Set("Cookie", cookie)
				rec := httptest.NewRecorder()
				start := time.Now()
				handler.ServeHTTP(rec, req)
				lat = append(lat, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
				}
				size = rec.Body.Len()
			}
			report(b, lat)
			b.ReportMetric(float64(size), "bytes/page")
		}
	}
	b.Run("fleet-first-page", page("/ui/"))
	b.Run("fleet-sort-heartbeat-desc", page("/ui/?sort=heartbeat&order=desc"))
	b.Run("fleet-filter-label", page("/ui/?label=zone:3"))
	b.Run("fleet-filter-text", page("/ui/?q=agent-09"))
	b.Run("fleet-filter-failing", page("/ui/?state=failing"))
	b.Run("fleet-last-page", page("/ui/?offset=9950"))
	b.Run("stack-1000-objects-first-page", page("/ui/stacks/"+stackID))
	b.Run("agent-page", page("/ui/agents/"+agentID))
	b.Run("baseline-bare-gin", func(b *testing.B) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/ui/", nil)
		req.Header.Set("Cookie", cookie)
		handler.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		r := gin.New()
		r.GET("/x", func(c *gin.Context) { c.Data(200, "text/html; charset=utf-8", body) })
		var lat []time.Duration
		for b.Loop() {
			rec := httptest.NewRecorder()
			start := time.Now()
			r.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			lat = append(lat, time.Since(start))
		}
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// loginCookie signs in as admin over HTTP and returns the Cookie header.
func loginCookie(b *testing.B, e *apitest.Env) string {
	b.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.URL + "/ui/login")
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var loginCookie string
	for _, c := range resp.Cookies() {
		if c.Name == console.LoginCookieName {
			loginCookie = c.Name + "=" + c.Value
		}
	}
	m := csrfField.FindStringSubmatch(string(data))
	req, _ := http.NewRequest("POST", e.URL+"/ui/login", strings.NewReader(url.Values{"csrf": {m[1]}, "pak": {e.AdminPAK}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", loginCookie)
	resp, err = client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			return c.Name + "=" + c.Value
		}
	}
	b.Fatalf("no session cookie: %d", resp.StatusCode)
	return ""
}
