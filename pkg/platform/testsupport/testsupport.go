// Package testsupport is the harness the process-level suites share: free
// loopback ports, a goroutine-safe output buffer, waiting for a condition or
// a readiness endpoint, and starting a binary that is stopped when the test
// ends. It lives in the pkg module because every other module already
// requires it (services, tools, tools/brokkr), so no suite adds a module edge
// to use it. It depends on the standard library only.
package testsupport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago. The listeners are held until all n are chosen so the ports differ.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ports, err := FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// FreePortsT returns n distinct loopback TCP ports that were free a moment
// ago. Ports for processes started together must come from one call: ports
// picked one at a time may repeat, because each is released before the
// next is picked, and two services would then race for one port.
func FreePortsT(t testing.TB, n int) []int {
	t.Helper()
	ports, err := FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// FreeAddrs is FreePortsT as "127.0.0.1:port" addresses.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i, p := range FreePortsT(t, n) {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out
}

// FreeAddr is FreePort as a "127.0.0.1:port" address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}

// SyncBuffer is a bytes.Buffer that a process (or a logger) may write
// from one goroutine while the test reads it from another.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually polls cond until it holds or within passes, then fails t.
// The pause between polls starts at 10ms (in-process conditions hold
// quickly) and doubles up to 250ms (a condition that spawns a CLI or asks a
// cluster should not do it dozens of times a second).
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, 250*time.Millisecond)
	}
}

// ErrExited is PollReady's answer when the process it waits for is gone.
var ErrExited = errors.New("process exited before it was ready")

// PollReady GETs url every 100ms until it answers 200. It gives up when
// within passes or ctx ends, and returns ErrExited as soon as exited (the
// process's done channel; nil when not known) is closed.
func PollReady(ctx context.Context, url string, within time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(within)
	var last error
	for {
		select {
		case <-exited:
			return ErrExited
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready within %v: %w", url, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitReady fails t unless url answers 200 within 30 seconds.
func WaitReady(t testing.TB, url string) {
	t.Helper()
	if err := PollReady(context.Background(), url, 30*time.Second, nil); err != nil {
		t.Fatal(err)
	}
}

// Binaries builds Go commands into one temporary directory, once per test
// process however many tests ask (a relink with a warm build cache).
type Binaries struct {
	Prefix   string   // of the temporary directory's name
	Packages []string // import paths of the commands

	once sync.Once
	dir  string
	err  error
}

// Dir builds the commands on the first call and returns their directory;
// it fails t when the build failed.
func (b *Binaries) Dir(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.Prefix)
		if err != nil {
			b.err = err
			return
		}
		cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, b.Packages...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %v: %w\n%s", b.Packages, err, out)
			return
		}
		b.dir = dir
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// Remove deletes what Dir built; a TestMain calls it after m.Run.
func (b *Binaries) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// Command is a binary to run for the length of a test.
type Command struct {
	Bin  string   // path of the executable
	Args []string // its arguments
	Env  []string // its whole environment
	Log  string   // file that receives stdout and stderr
	Name string   // how failures name it; the log's path when empty
}

// stopGrace is how long a stopped process may take to exit on SIGINT
// before it is killed.
const stopGrace = 15 * time.Second

// logTail is how much of the log a failed test prints.
const logTail = 4000

// Start runs c and stops it when the test ends: SIGINT, then SIGKILL after
// stopGrace. When the test failed, the end of the log goes to t.Log.
func Start(t testing.TB, c Command) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(c.Log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.Bin, c.Args...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatal(err)
	}
	name := c.Name
	if name == "" {
		name = c.Log
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopGrace):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(c.Log)
			if len(data) > logTail {
				data = data[len(data)-logTail:]
			}
			t.Logf("%s log:\n%s", name, data)
		}
	})
	return cmd
}

// Exit is a command's run function started in the test process (its main
// without os.Exit), and the code it returns.
type Exit struct {
	done chan struct{}
	code int
}

// Go starts run in a goroutine.
func Go(run func() int) *Exit {
	e := &Exit{done: make(chan struct{})}
	go func() { e.code = run(); close(e.done) }()
	return e
}

// Done is closed once run has returned; PollReady takes it to stop
// waiting for a server that exited.
func (e *Exit) Done() <-chan struct{} { return e.done }

// Code is run's exit code; it is valid once Done is closed.
func (e *Exit) Code() int { <-e.done; return e.code }

// Wait returns the exit code, failing t unless run returns within d.
func (e *Exit) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-e.done:
		return e.code
	case <-time.After(d):
		t.Fatalf("did not exit within %v", d)
		return 0
	}
}
