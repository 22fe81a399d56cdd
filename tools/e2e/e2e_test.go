// Package e2e runs the real binaries (auth, api) as processes against real
// PostgreSQL and Redis and follows the documentation's tutorials with plain
// HTTP, as curl would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "brokkr-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/brokkr-go/brokkr/services/api/cmd/api",
		"github.com/brokkr-go/brokkr/services/auth/cmd/auth", "github.com/brokkr-go/brokkr/services/templating/cmd/templating",
		"github.com/brokkr-go/brokkr/services/work-order-scheduler/cmd/work-order-scheduler",
		"github.com/brokkr-go/brokkr/services/webhook-dispatch/cmd/webhook-dispatch")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building binaries failed:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	if problems, lines := scanAllLogs(); len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: secrets in service logs (%d lines scanned):\n  %s\n", lines, strings.Join(problems, "\n  "))
		code = 1
	} else {
		fmt.Fprintf(os.Stderr, "e2e: scanned %d log lines of %d processes: no PAK, secret or Authorization header\n", lines, len(scanProcs))
	}
	os.Exit(code)
}

// proc is a running service process with captured output.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer // stderr: the log stream
	stdout bytes.Buffer // one-time output (the bootstrap admin PAK), never logs
	done   chan struct{}
	err    error
}

func (p *proc) Write(b []byte) (int, error) { p.mu.Lock(); defer p.mu.Unlock(); return p.out.Write(b) }

// output is what the process logged (stderr).
func (p *proc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// stdoutText is what the process printed on stdout.
func (p *proc) stdoutText() string { p.mu.Lock(); defer p.mu.Unlock(); return p.stdout.String() }

// stdoutWriter collects a proc's stdout apart from its log.
type stdoutWriter struct{ p *proc }

func (w stdoutWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stdout.Write(b)
}

// exitCode waits for the process and returns its exit code.
func (p *proc) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("process did not exit within %v; output:\n%s", within, p.output())
	}
	return p.cmd.ProcessState.ExitCode()
}

// stack is auth + api on fresh ports and a fresh database.
type stack struct {
	t             *testing.T
	env           []string
	apiURL        string
	authURL       string
	templatingURL string
	adminPAK      string
	auth          *proc
	api           *proc
	templating    *proc
}

func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name), args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = stdoutWriter{p}, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	trackProc(name, p)
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s%s", name, p.stdoutText(), p.output())
		}
	})
	return p
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWith(t, "BROKKR_CONFIG_WATCHER_ENABLED=false")
}

// newStackWith starts the stack with extra environment entries.
func newStackWith(t *testing.T, extra ...string) *stack {
	t.Helper()
	dbURL := pgtest.NewEmpty(t)
	ports := testsupport.FreePortsT(t, 3)
	apiPort, authPort, tplPort := ports[0], ports[1], ports[2]
	pakFile := filepath.Join(t.TempDir(), "admin.pak")
	env := append(os.Environ(),
		"BROKKR__DATABASE__URL="+dbURL,
		"BROKKR__DATABASE__MIGRATE_ON_START=true",
		"BROKKR__REDIS__URL="+redistest.URL(),
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=info",
		fmt.Sprintf("BROKKR__HTTP__ADDR=127.0.0.1:%d", apiPort),
		fmt.Sprintf("BROKKR__AUTH__ADDR=127.0.0.1:%d", authPort),
		fmt.Sprintf("BROKKR__AUTH__URL=http://127.0.0.1:%d", authPort),
		"BROKKR__BROKER__ADMIN_PAK_FILE="+pakFile,
		fmt.Sprintf("BROKKR__TEMPLATING__ADDR=127.0.0.1:%d", tplPort),
		fmt.Sprintf("BROKKR__TEMPLATING__URL=http://127.0.0.1:%d", tplPort),
	)
	env = append(env, extra...)
	s := &stack{t: t, env: env, apiURL: fmt.Sprintf("http://127.0.0.1:%d", apiPort), authURL: fmt.Sprintf("http://127.0.0.1:%d", authPort)}
	s.templatingURL = fmt.Sprintf("http://127.0.0.1:%d", tplPort)
	s.templating = start(t, env, "templating", "serve")
	waitReady(t, s.templatingURL, s.templating)
	s.auth = start(t, env, "auth", "serve")
	waitReady(t, s.authURL, s.auth)
	s.api = start(t, env, "api", "serve")
	waitReady(t, s.apiURL, s.api)
	pak, err := os.ReadFile(pakFile)
	if err != nil {
		t.Fatalf("admin PAK file: %v", err)
	}
	s.adminPAK = strings.TrimSpace(string(pak))
	forbidSecret(s.adminPAK)
	return s
}

// call sends a request with the Authorization header exactly as given
// (the tutorials use both "Bearer <pak>" and a bare PAK).
func (s *stack) call(method, path, authorization, body string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.apiURL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (s *stack) must(want int, method, path, authorization, body string) map[string]any {
	s.t.Helper()
	status, data := s.call(method, path, authorization, body)
	if status != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, data)
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m
}

func (s *stack) list(method, path, authorization string) []map[string]any {
	s.t.Helper()
	status, data := s.call(method, path, authorization, "")
	if status != 200 {
		s.t.Fatalf("%s %s: %d: %s", method, path, status, data)
	}
	var out []map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		s.t.Fatalf("%s %s: %v: %s", method, path, err, data)
	}
	return out
}

// waitReady waits for url's readiness endpoint, failing at once when p
// exits first.
func waitReady(t *testing.T, url string, p *proc) {
	t.Helper()
	err := testsupport.PollReady(context.Background(), url+"/readyz", 30*time.Second, p.done)
	if errors.Is(err, testsupport.ErrExited) {
		t.Fatalf("process exited early: %v\n%s", p.err, p.output())
	}
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, p.output())
	}
}
