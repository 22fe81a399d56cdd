package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

func environ(kv ...string) func() []string {
	return func() []string {
		return append([]string{"BROKKR__LOG__LEVEL=warn", "BROKKR_CONFIG_WATCHER_ENABLED=false"}, kv...)
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  func() []string
		want int
	}{
		{"help", []string{"help"}, environ(), lifecycle.ExitOK},
		{"extra argument", []string{"serve", "now"}, environ(), lifecycle.ExitConfig},
		{"bad config", nil, environ("BROKKR__SCHEDULER__MAINTENANCE_INTERVAL_SECONDS=0"), lifecycle.ExitConfig},
		{"database down", nil, environ("BROKKR__DATABASE__URL=postgres://nobody@127.0.0.1:1/none",
			"BROKKR__SCHEDULER__ADDR="+testsupport.FreeAddr(t)), lifecycle.ExitUnavailable},
	}
	if !testing.Short() {
		cases = append(cases, struct {
			name string
			args []string
			env  func() []string
			want int
		}{"redis down", nil, environ("BROKKR__DATABASE__URL="+pgtest.NewURL(t), "BROKKR__REDIS__URL=redis://127.0.0.1:1/0",
			"BROKKR__SCHEDULER__ADDR="+testsupport.FreeAddr(t)), lifecycle.ExitUnavailable})
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if got := run(context.Background(), c.args, c.env, &out, &errb); got != c.want {
			t.Errorf("%s: exit %d, want %d; stderr %q stdout %q", c.name, got, c.want, errb.String(), out.String())
		}
	}
	var out, errb bytes.Buffer
	run(context.Background(), nil, environ("BROKKR__SCHEDULER__MAINTENANCE_INTERVAL_SECONDS=0"), &out, &errb)
	if !strings.Contains(errb.String(), "BROKKR__SCHEDULER__MAINTENANCE_INTERVAL_SECONDS") {
		t.Errorf("config error does not name the key: %q", errb.String())
	}
}

// TestServe: the ops routes answer, the periodic tasks run (visible in
// /metrics), and a clean stop exits 0.
func TestServe(t *testing.T) {
	url := pgtest.NewURL(t)
	redistest.New(t)
	addr := testsupport.FreeAddr(t)
	env := environ("BROKKR__DATABASE__URL="+url, "BROKKR__REDIS__URL="+redistest.URL(), "BROKKR__SCHEDULER__ADDR="+addr,
		"BROKKR__DATABASE__MAX_OPEN_CONNS=4", "BROKKR__LOG__FORMAT=json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testsupport.SyncBuffer
	exit := testsupport.Go(func() int { return run(ctx, []string{"serve"}, env, &out, &errb) })

	base := "http://" + addr
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if err := testsupport.PollReady(ctx, base+"/readyz", 30*time.Second, exit.Done()); errors.Is(err, testsupport.ErrExited) {
		t.Fatalf("exited %d early: %s %s", exit.Code(), errb.String(), out.String())
	} else if err != nil {
		t.Fatalf("never ready: %v\n%s", err, out.String())
	}
	if code, body := get("/healthz"); code != 200 || body != "OK" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	// The start-up run of the maintenance task shows in the metrics.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := get("/metrics")
		if strings.Contains(body, `brokkr_scheduler_tasks_total{outcome="ok",task="workorder:maintenance"}`) &&
			strings.Contains(body, `brokkr_scheduler_tasks_total{outcome="ok",task="workorder:schedule_tick"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task metrics:\n%s\nlogs:\n%s", body, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if code := exit.Wait(t, 30*time.Second); code != lifecycle.ExitOK {
		t.Fatalf("exit %d after a clean stop: %s", code, out.String())
	}
}
