package config

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const baseTOML = `
[log]
level = "info"

[broker]
webhook_delivery_batch_size = 50

[cors]
allowed_origins = ["http://localhost:3001"]
max_age_seconds = 3600

[http]
addr = "0.0.0.0:3000"
`

func TestStoreReloadAppliesOnlyHotKeys(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, baseTOML)
	opts := LoadOptions{File: file, Environ: environ()}
	initial, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	st := NewStore(initial, opts, slog.New(slog.NewTextHandler(&logs, nil)))

	var seen []Settings
	st.Subscribe(func(s Settings) { seen = append(seen, s) })

	// No change: reload reports nothing but still notifies.
	changes, err := st.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Fatalf("unchanged file: got changes %+v", changes)
	}

	writeFile(t, dir, `
[log]
level = "error"

[broker]
webhook_delivery_batch_size = 5
audit_log_retention_days = 30

[cors]
allowed_origins = ["https://a.example", "https://b.example"]
max_age_seconds = 60

[http]
addr = "0.0.0.0:4000"
`)
	changes, err = st.Reload()
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Key: "log.level", OldValue: "info", NewValue: "error"},
		{Key: "broker.webhook_delivery_batch_size", OldValue: "50", NewValue: "5"},
		{Key: "cors.allowed_origins", OldValue: `["http://localhost:3001"]`, NewValue: `["https://a.example", "https://b.example"]`},
		{Key: "cors.max_age_seconds", OldValue: "3600", NewValue: "60"},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("changes:\n got %+v\nwant %+v", changes, want)
	}
	cur := st.Current()
	eq(t, "hot log.level", cur.Log.Level, "error")
	eq(t, "hot batch", cur.Broker.WebhookDeliveryBatchSize, 5)
	eq(t, "hot CORS via accessor", st.CORS().MaxAgeSeconds, 60)
	eq(t, "cold http.addr kept", cur.HTTP.Addr, "0.0.0.0:3000")
	eq(t, "cold audit retention kept", cur.Broker.AuditLogRetentionDays, 90)
	if !strings.Contains(logs.String(), "broker.audit_log_retention_days") || !strings.Contains(logs.String(), "http.addr") {
		t.Errorf("restart-needed keys not logged: %s", logs.String())
	}
	if len(seen) != 2 || seen[1].Log.Level != "error" {
		t.Fatalf("subscribers saw %d reloads, last %+v", len(seen), seen)
	}

	// A broken file keeps the current settings and reports the key.
	writeFile(t, dir, "[log]\nlevel = \"shouty\"\n")
	if _, err := st.Reload(); err == nil || !strings.Contains(err.Error(), "log.level (BROKKR__LOG__LEVEL)") {
		t.Fatalf("want a log.level error, got %v", err)
	}
	eq(t, "after failed reload", st.Current().Log.Level, "error")
	if len(seen) != 2 {
		t.Errorf("subscribers ran after a failed reload")
	}
}

func TestStoreReloadSeesEnvironmentChanges(t *testing.T) {
	var mu sync.Mutex
	env := []string{"BROKKR__CORS__ALLOWED_ORIGINS=http://a"}
	opts := LoadOptions{Environ: func() []string { mu.Lock(); defer mu.Unlock(); return env }}
	initial, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStore(initial, opts, nil)
	mu.Lock()
	env = []string{"BROKKR__CORS__ALLOWED_ORIGINS=http://a,*", "BROKKR__BROKER__DIAGNOSTIC_MAX_AGE_HOURS=3"}
	mu.Unlock()
	changes, err := st.Reload()
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Key: "broker.diagnostic_max_age_hours", OldValue: "1", NewValue: "3"},
		{Key: "cors.allowed_origins", OldValue: `["http://a"]`, NewValue: `["http://a", "*"]`},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Fatalf("changes:\n got %+v\nwant %+v", changes, want)
	}
}

func TestStoreWatchCoalescesBurstIntoOneReload(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, baseTOML)
	opts := LoadOptions{File: file, Environ: environ()}
	initial, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStore(initial, opts, nil)
	var reloads atomic.Int32
	levels := make(chan string, 10)
	st.Subscribe(func(s Settings) {
		reloads.Add(1)
		levels <- s.Log.Level
	})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	const debounce = 300 * time.Millisecond
	go func() { done <- st.Watch(ctx, debounce) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the watch register

	// An unrelated file in the same directory is ignored.
	if err := os.WriteFile(filepath.Join(dir, "other.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A burst of writes, the last one wins, inside one debounce window.
	for _, lv := range []string{"warn", "debug", "error"} {
		writeFile(t, dir, strings.Replace(baseTOML, `level = "info"`, `level = "`+lv+`"`, 1))
		time.Sleep(20 * time.Millisecond)
	}

	select {
	case lv := <-levels:
		if lv != "error" {
			t.Fatalf("reloaded level %q, want the last write's \"error\"", lv)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s")
	}
	time.Sleep(2 * debounce) // a second reload would arrive in this window
	if n := reloads.Load(); n != 1 {
		t.Fatalf("burst caused %d reloads, want 1", n)
	}
	eq(t, "live level", st.Current().Log.Level, "error")

	// An atomic replace (write elsewhere, rename over) is seen too.
	tmp := filepath.Join(dir, ".brokkr.toml.tmp")
	if err := os.WriteFile(tmp, []byte(strings.Replace(baseTOML, `level = "info"`, `level = "warn"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	select {
	case lv := <-levels:
		eq(t, "after rename", lv, "warn")
	case <-time.After(5 * time.Second):
		t.Fatal("no reload after rename within 5s")
	}
}

func TestStoreWatchWithoutFileReturns(t *testing.T) {
	for _, opts := range []LoadOptions{
		{Environ: environ()},
		{File: filepath.Join(t.TempDir(), "missing.toml"), Environ: environ()},
	} {
		st := NewStore(Defaults(), opts, nil)
		done := make(chan error, 1)
		go func() { done <- st.Watch(context.Background(), time.Millisecond) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Watch blocked without a file")
		}
	}
}
