package testsupport

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("ports %v: %d is zero or repeated", ports, p)
		}
		seen[p] = true
	}
	l, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatalf("FreeAddr is not bindable: %v", err)
	}
	_ = l.Close()
}

func TestSyncBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 1000 {
		t.Fatalf("wrote 1000 bytes, buffer holds %d", got)
	}
}

func TestPollReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := PollReady(ctx, srv.URL, 5*time.Second, nil); err != nil {
		t.Fatalf("ready after two 503s: %v", err)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3 (polls until the first 200)", calls.Load())
	}

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer never.Close()
	err := PollReady(ctx, never.URL, 300*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("never ready: err = %v, want a timeout naming status 503", err)
	}

	gone := make(chan struct{})
	close(gone)
	if err := PollReady(ctx, never.URL, time.Minute, gone); !errors.Is(err, ErrExited) {
		t.Fatalf("exited process: err = %v, want ErrExited", err)
	}
}

func TestStartLogsAndStopsTheProcessWhenTheTestEnds(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "sleeper.log")
	var pid int
	t.Run("run", func(t *testing.T) {
		cmd := Start(t, Command{Bin: "/bin/sh", Args: []string{"-c", "echo started; exec sleep 60"}, Env: os.Environ(), Log: log})
		pid = cmd.Process.Pid
		Eventually(t, 5*time.Second, "the log line", func() bool {
			data, _ := os.ReadFile(log)
			return strings.Contains(string(data), "started")
		})
	})
	// The subtest's cleanup has run: the process is reaped, so signalling it fails.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d after the test ended: kill -0 = %v, want ESRCH", pid, err)
	}
}

func TestBinariesBuildsOnceAndReportsFailure(t *testing.T) {
	src := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/hello\n\ngo 1.22\n")
	write("main.go", "package main\n\nfunc main() { println(\"hello\") }\n")
	t.Setenv("GOWORK", "off")
	t.Chdir(src)
	b := Binaries{Prefix: "testsupport-bin-", Packages: []string{"example.com/hello"}}
	dir := b.Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "hello")); err != nil {
		t.Fatalf("built binary missing: %v", err)
	}
	if again := b.Dir(t); again != dir {
		t.Fatalf("second call built again into %s (first %s)", again, dir)
	}

	b.Remove()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Remove left %s: %v", dir, err)
	}

	broken := Binaries{Prefix: "testsupport-bin-", Packages: []string{"example.com/hello/missing"}}
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		broken.Dir(ft)
	}()
	if !ft.failed {
		t.Fatal("a failed build did not fail the test")
	}
}

// fakeT records Fatal instead of ending the real test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Fatal(args ...any) { f.failed = true; panic("fatal") }

func TestEventually(t *testing.T) {
	n := 0
	start := time.Now()
	Eventually(t, 5*time.Second, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("three polls took %v; the first pauses are short", d)
	}
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		Eventually(ft, 50*time.Millisecond, "never", func() bool { return false })
	}()
	if !ft.failed {
		t.Fatal("a condition that never holds did not fail the test")
	}
}

func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic("fatal") }

func TestGoReportsTheExitCode(t *testing.T) {
	release := make(chan struct{})
	e := Go(func() int { <-release; return 69 })
	select {
	case <-e.Done():
		t.Fatal("done before run returned")
	default:
	}
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		e.Wait(ft, 20*time.Millisecond)
	}()
	if !ft.failed {
		t.Fatal("Wait did not fail while run was still going")
	}
	close(release)
	if code := e.Wait(t, 5*time.Second); code != 69 || e.Code() != 69 {
		t.Fatalf("exit code %d, want 69", code)
	}
	if err := PollReady(context.Background(), "http://127.0.0.1:1/readyz", time.Minute, e.Done()); !errors.Is(err, ErrExited) {
		t.Fatalf("PollReady after exit: %v", err)
	}
}
