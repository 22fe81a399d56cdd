package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

func environ(kv ...string) func() []string {
	return func() []string {
		return append([]string{"BROKKR__LOG__LEVEL=info", "BROKKR__LOG__FORMAT=json", "BROKKR_CONFIG_WATCHER_ENABLED=false"}, kv...)
	}
}

func TestExitCodes(t *testing.T) {
	type tc struct {
		name string
		args []string
		env  func() []string
		want int
	}
	cases := []tc{
		{"help", []string{"--help"}, environ(), lifecycle.ExitOK},
		{"extra argument", []string{"serve", "now"}, environ(), lifecycle.ExitConfig},
		{"bad config", nil, environ("BROKKR__WEBHOOK_DISPATCH__CONCURRENCY=0"), lifecycle.ExitConfig},
		{"bad key", nil, environ("BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY=abc"), lifecycle.ExitConfig},
		{"database down", nil, environ("BROKKR__DATABASE__URL=postgres://nobody@127.0.0.1:1/none",
			"BROKKR__WEBHOOK_DISPATCH__ADDR="+testsupport.FreeAddr(t)), lifecycle.ExitUnavailable},
	}
	if !testing.Short() {
		cases = append(cases, tc{"redis down", nil, environ("BROKKR__DATABASE__URL="+pgtest.NewURL(t),
			"BROKKR__REDIS__URL=redis://127.0.0.1:1/0", "BROKKR__WEBHOOK_DISPATCH__ADDR="+testsupport.FreeAddr(t)), lifecycle.ExitUnavailable})
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if got := run(context.Background(), c.args, c.env, &out, &errb); got != c.want {
			t.Errorf("%s: exit %d, want %d; stderr %q stdout %q", c.name, got, c.want, errb.String(), out.String())
		}
	}
	var out, errb bytes.Buffer
	run(context.Background(), nil, environ("BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY=not-a-key-"+strings.Repeat("z", 20)), &out, &errb)
	if !strings.Contains(errb.String(), "BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY") || strings.Contains(errb.String(), "not-a-key") {
		t.Errorf("config error must name the key and not repeat its value: %q", errb.String())
	}
}

// TestServeAndDrain runs the service until its context ends: ops endpoints
// answer, and without a configured key it warns loudly and still starts.
func TestServeAndDrain(t *testing.T) {
	redistest.New(t)
	addr := testsupport.FreeAddr(t)
	file := filepath.Join(t.TempDir(), "brokkr.toml")
	if err := os.WriteFile(file, []byte("[broker]\nwebhook_cleanup_retention_days = 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := environ("BROKKR__DATABASE__URL="+pgtest.NewURL(t), "BROKKR__REDIS__URL="+redistest.URL(),
		"BROKKR__WEBHOOK_DISPATCH__ADDR="+addr, "BROKKR__DATABASE__SCHEMA=", "BROKKR_CONFIG_FILE="+file)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testsupport.SyncBuffer{}
	exit := testsupport.Go(func() int { return run(ctx, nil, env, io.Discard, out) })
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if err := testsupport.PollReady(ctx, "http://"+addr+"/readyz", 20*time.Second, exit.Done()); err != nil {
		t.Fatalf("not ready: %v; output:\n%s", err, out.String())
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "brokkr_webhook_queue_depth") {
		t.Fatalf("/metrics: %d", code)
	}
	if !strings.Contains(out.String(), "WEBHOOK_ENCRYPTION_KEY is not set") {
		t.Errorf("no loud warning about the missing key:\n%s", out.String())
	}
	// SIGHUP reloads the hot settings.
	if err := os.WriteFile(file, []byte("[broker]\nwebhook_cleanup_retention_days = 30\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), `"key":"broker.webhook_cleanup_retention_days"`); {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload; output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := exit.Wait(t, 30*time.Second); code != lifecycle.ExitOK {
		t.Fatalf("exit %d after the context ended; output:\n%s", code, out.String())
	}
}

// The service configured for Redis Sentinel through the environment the
// Helm chart sets: ready on the primary the sentinels name, and ready again
// after that primary is SIGKILLed and a replica promoted, without a restart.
func TestServeOnRedisSentinel(t *testing.T) {
	set := redistest.StartSentinel(t)
	addr := testsupport.FreeAddr(t)
	env := environ("BROKKR__DATABASE__URL="+pgtest.NewURL(t), "BROKKR__REDIS__URL=redis://unused:6379/0",
		"BROKKR__REDIS__SENTINEL_MASTER="+redistest.SentinelMaster,
		"BROKKR__REDIS__SENTINEL_ADDRS="+strings.Join(set.SentinelAddrs(), ","),
		"BROKKR__WEBHOOK_DISPATCH__ADDR="+addr, "BROKKR__DATABASE__SCHEMA=")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testsupport.SyncBuffer{}
	exit := testsupport.Go(func() int { return run(ctx, nil, env, io.Discard, out) })
	ready := func(what string) {
		t.Helper()
		redistest.Eventually(t, 30*time.Second, what, func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/readyz %d: %s", resp.StatusCode, b)
			}
			return nil
		})
	}
	ready("ready on the sentinels' primary")
	// The ephemeral webhook key (no broker.webhook_encryption_key set) was
	// written through the sentinels' primary.
	if n, err := set.Primary.Client(t).Exists(context.Background(), "brokkr:public:webhook-ephemeral-key").Result(); err != nil || n != 1 {
		t.Errorf("ephemeral key on the primary: %d, %v", n, err)
	}
	set.Primary.Kill()
	redistest.Eventually(t, 30*time.Second, "replica promoted", func(ctx context.Context) error {
		a, err := set.MasterAddr(ctx)
		if err == nil && a != set.Replica.Addr {
			err = fmt.Errorf("primary still %s", a)
		}
		return err
	})
	ready("ready again after the failover")
	cancel()
	if code := exit.Wait(t, 30*time.Second); code != lifecycle.ExitOK {
		t.Fatalf("exit %d; output:\n%s", code, out.String())
	}
}
