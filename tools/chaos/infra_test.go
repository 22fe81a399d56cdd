package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// The infrastructure of the suite: the service binaries, a private
// PostgreSQL cluster and a private Redis (the machine's shared ones must
// never be restarted), and the processes themselves.

var bins = testsupport.Binaries{Prefix: "brokkr-chaos-bin-", Packages: []string{
	"github.com/brokkr-go/brokkr/services/api/cmd/api",
	"github.com/brokkr-go/brokkr/services/auth/cmd/auth",
	"github.com/brokkr-go/brokkr/services/templating/cmd/templating",
	"github.com/brokkr-go/brokkr/services/work-order-scheduler/cmd/work-order-scheduler",
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/cmd/webhook-dispatch",
	"github.com/brokkr-go/brokkr/services/agent/cmd/agent",
}}

// binaries builds the commands once per test process.
func binaries(t testing.TB) string { return bins.Dir(t) }

// proc is one long-running process that the suite kills and restarts. Its
// output of every incarnation goes to one log file.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	// stdoutPath, when set, receives stdout apart from the log (stderr):
	// the services' stdout carries one-time output such as the bootstrap
	// admin PAK, never log records.
	stdoutPath string
	readyURL   string              // GET answers 200 when ready; empty: use ready
	ready      func() error        // readiness probe when there is no URL
	cred       *syscall.Credential // run as another OS user (PostgreSQL as postgres)
	dir        string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is still running", p.name)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== chaos: start #%d of %s at %s =====\n", p.starts+1, p.name, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	var outf *os.File
	if p.stdoutPath != "" {
		if outf, err = os.OpenFile(p.stdoutPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err != nil {
			logf.Close()
			return err
		}
		cmd.Stdout = outf
	}
	closeFiles := func() {
		logf.Close()
		if outf != nil {
			outf.Close()
		}
	}
	// The kernel kills what is left should the test process die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		closeFiles()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); closeFiles(); close(done) }()
	p.cmd, p.done = cmd, done
	p.starts++
	return nil
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// signal sends sig and waits up to within for the process to exit.
func (p *proc) signal(sig syscall.Signal, within time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(within):
		return fmt.Errorf("%s did not exit within %v of %v", p.name, within, sig)
	}
}

// kill is the fault: SIGKILL, no chance to drain.
func (p *proc) kill() error { return p.signal(syscall.SIGKILL, 30*time.Second) }

// stop ends the process for good at the end of the test.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	if err := p.signal(syscall.SIGTERM, 15*time.Second); err != nil {
		_ = p.kill()
	}
}

// probe answers nil when the process is ready.
func (p *proc) probe(client *http.Client) error {
	if !p.running() {
		return fmt.Errorf("%s is not running", p.name)
	}
	if p.ready != nil {
		return p.ready()
	}
	resp, err := client.Get(p.readyURL)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: readyz %d", p.name, resp.StatusCode)
	}
	return nil
}

// waitReady polls the probe until it passes and returns how long that took.
func (p *proc) waitReady(client *http.Client, within time.Duration) (time.Duration, error) {
	began := time.Now()
	var last error
	for time.Since(began) < within {
		if !p.running() {
			return time.Since(began), fmt.Errorf("%s exited:\n%s", p.name, tailFile(p.logPath, 30))
		}
		if last = p.probe(client); last == nil {
			return time.Since(began), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(began), fmt.Errorf("%s not ready within %v: %v\n%s", p.name, within, last, tailFile(p.logPath, 30))
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// ------------------------------------------------------------ PostgreSQL ---

// pgBinDir finds initdb and postgres (PostgreSQL 15 on this machine).
func pgBinDir() (string, error) {
	if d := os.Getenv("BROKKR_PG_BINDIR"); d != "" {
		return d, nil
	}
	cands, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(cands) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(cands[i], "initdb")); err == nil {
			return cands[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, postgres) found; set BROKKR_PG_BINDIR")
}

// postgresCred is the OS user that runs the private cluster: postgres when
// the suite runs as root (PostgreSQL refuses to run as root).
func postgresCred() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the OS user postgres for the private cluster: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// newPostgres initialises a private cluster in a temporary directory and
// returns its (not yet started) postmaster process. fsync is off (this
// machine never crashes in the test, only the server does) but
// synchronous_commit stays on: a commit the server acknowledged is in the
// WAL, which survives a server crash, as in production.
func newPostgres(t *testing.T, port int) (*proc, string) {
	t.Helper()
	bindir, err := pgBinDir()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := postgresCred()
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.MkdirTemp("", "brokkr-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(data, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = base
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf(`
# brokkr chaos suite: loopback only, TCP only
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = ''
fsync = off
full_page_writes = off
synchronous_commit = on
max_connections = 200
`, port)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(conf)
	f.Close()
	url := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	p := &proc{
		name:    "postgresql",
		bin:     filepath.Join(bindir, "postgres"),
		args:    []string{"-D", data},
		env:     []string{"LANG=C", "PATH=" + os.Getenv("PATH")},
		logPath: filepath.Join(base, "postgresql.log"),
		cred:    cred,
		dir:     base,
		ready: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer c.Close(ctx)
			return c.Ping(ctx)
		},
	}
	return p, url
}

// ----------------------------------------------------------------- Redis ---

// newRedis returns a private, memory-only Redis: a restart is a restart
// empty.
func newRedis(t *testing.T, port int, dir string) *proc {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found on PATH (apt-get install redis-server)")
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	return &proc{
		name: "redis",
		bin:  bin,
		args: []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
			"--dir", dir, "--protected-mode", "no"},
		logPath: filepath.Join(dir, "redis.log"),
		dir:     dir,
		ready: func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("PING\r\n")); err != nil {
				return err
			}
			buf := make([]byte, 16)
			n, err := c.Read(buf)
			if err != nil {
				return err
			}
			if !strings.Contains(string(buf[:n]), "PONG") {
				return fmt.Errorf("redis answered %q", buf[:n])
			}
			return nil
		},
	}
}
