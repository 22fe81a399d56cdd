package loadgen

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:3000", true},
		{"http://127.8.9.10:1", true},
		{"http://[::1]:3000", true},
		{"http://localhost:3000", true},
		{"http://10.0.0.1:3000", false},
		{"http://example.com", false},
		{"ftp://127.0.0.1", false},
	} {
		if err := CheckLoopback([]string{tc.url}); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%t", tc.url, err, tc.ok)
		}
	}
}

// TestFleetShortRun is the short simulator run of `make test`: 200 agents
// long-polling two api replica processes (real auth, PostgreSQL, Redis)
// for 20 s with deployments, acks, health reports, label churn on an
// unrelated stack and agent restarts. It asserts what must hold at any
// load: no response ≥ 500 and every agent received every change. Timing is
// reported, never asserted (docs/benchmarks.md has the measurements).
func TestFleetShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/brokkr-go/brokkr/services/api/cmd/api",
		"github.com/brokkr-go/brokkr/services/auth/cmd/auth")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cl, err := Spawn(ctx, SpawnConfig{BinDir: bin, Replicas: 2, AdminDBURL: envOr("BROKKR_TEST_PG_URL",
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), RedisURL: envOr("BROKKR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
		// Small pools: the test server is shared.
		Env: []string{"BROKKR__DATABASE__MAX_OPEN_CONNS=6"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			for _, p := range cl.Procs {
				out := p.Output()
				if len(out) > 20000 {
					out = out[len(out)-20000:]
				}
				t.Logf("%s output (tail):\n%s", p.Name, out)
			}
		}
		cl.Close()
	}()
	var log strings.Builder
	r, err := New(Config{URLs: cl.APIURLs, AdminPAK: cl.AdminPAK, Agents: 200, Wait: 30 * time.Second,
		Duration: 20 * time.Second, ChangeEvery: 4 * time.Second, LabelChurn: 2, Restarts: 2, Heartbeat: 5 * time.Second,
		Ack: true, AckDelay: 300 * time.Millisecond, Clients: 16, PIDs: cl.PIDs(), DBURL: cl.DBURL, DBName: cl.DBName, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Log(out.String())
	if n5xx, _ := rep.Server5xx(); n5xx > 0 {
		t.Errorf("%d responses ≥ 500", n5xx)
	}
	if len(rep.Changes) < 2 {
		t.Fatalf("only %d changes were made", len(rep.Changes))
	}
	if m := rep.Missing(); m > 0 {
		t.Errorf("%d (change, agent) deliveries missing", m)
	}
	tsr := rep.Fleet["target-state?wait"]
	if tsr.Count() == 0 || rep.Fleet["events"].Count() == 0 || rep.Fleet["heartbeat"].Count() == 0 || rep.Fleet["health-status"].Count() == 0 {
		t.Errorf("the fleet did not speak every route: %v", rep.Fleet)
	}
	for route, rt := range rep.Fleet {
		if _, _, transport := rt.Errors5xx(); transport > 0 {
			t.Errorf("%s: %d transport errors", route, transport)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestWakeQuantilesFromBuckets(t *testing.T) {
	m := map[string]float64{
		wakeHistogram + `_bucket{le="0.01"}`: 10,
		wakeHistogram + `_bucket{le="0.1"}`:  60,
		wakeHistogram + `_bucket{le="0.5"}`:  95,
		wakeHistogram + `_bucket{le="1"}`:    100,
		wakeHistogram + `_bucket{le="+Inf"}`: 100,
		wakeHistogram + `_count`:             100,
	}
	q := wakeQuantiles(m)
	want := []time.Duration{100, 100 * time.Millisecond, 500 * time.Millisecond, time.Second}
	if len(q) != 4 || q[0] != want[0] || q[1] != want[1] || q[2] != want[2] || q[3] != want[3] {
		t.Fatalf("quantiles %v, want %v", q, want)
	}
	if wakeQuantiles(map[string]float64{}) != nil {
		t.Fatal("no histogram must give nil")
	}
}
