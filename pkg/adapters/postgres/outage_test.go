package postgres_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// privatePG is a PostgreSQL cluster of its own (never the shared one), so
// the test can crash it.
type privatePG struct {
	t       *testing.T
	bin     string
	dir     string
	port    int
	cred    *syscall.Credential
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
	}
	// Not t.TempDir: its parent is private to root, and the server runs
	// as postgres.
	dir, err := os.MkdirTemp("", "brokkr-pg-outage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &privatePG{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(p.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	initdb := exec.Command(filepath.Join(p.bin, "initdb"), "-D", filepath.Join(p.dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.logPath = filepath.Join(p.dir, "pg.log")
	p.start()
	t.Cleanup(func() { p.stop(syscall.SIGQUIT) })
	return p
}

func (p *privatePG) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

func (p *privatePG) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.dir, "data"), "-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+p.dir, "-c", "fsync=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.cmd, p.done = cmd, done
}

// stop sends sig (SIGQUIT: immediate shutdown, a crash) and waits.
func (p *privatePG) stop(sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// TestOutageErrorsAreDependencyDown crashes a private PostgreSQL under the
// pool the services use and checks that every error a query meets — in
// flight when the server dies, while it is down, while it recovers, and on
// a pooled connection that died with it — is classified as "dependency
// down" (503 with Retry-After at the HTTP edge), never as a bug (500).
func TestOutageErrorsAreDependencyDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	pg := startPrivatePG(t)
	ctx := context.Background()
	sdb, err := func() (*sqlx.DB, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			d, err := postgres.Open(ctx, postgres.Options{URL: pg.url(), MaxOpenConns: 8})
			if err == nil {
				if err = d.PingContext(ctx); err == nil {
					return d, nil
				}
				d.Close()
			}
			if time.Now().After(deadline) {
				return nil, err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if err != nil {
		t.Fatalf("private PostgreSQL never answered: %v", err)
	}
	defer sdb.Close()
	// Fill the pool with idle connections that will die with the server.
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = sdb.ExecContext(ctx, `SELECT pg_sleep(0.05)`) }()
	}
	wg.Wait()

	var (
		mu   sync.Mutex
		errs = map[string]error{}
	)
	record := func(phase string, err error) {
		if err == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		errs[phase+": "+err.Error()] = err
	}
	// In flight: statements and a transaction running when the server dies.
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := sdb.ExecContext(ctx, `SELECT pg_sleep(10)`)
			record("in flight", err)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := sdb.BeginTx(ctx, nil)
			if err != nil {
				record("in flight begin", err)
				return
			}
			_, err = tx.ExecContext(ctx, `SELECT pg_sleep(0.2 * $1::int)`, i+1)
			record("in flight tx", err)
			time.Sleep(time.Second)
			record("in flight commit", tx.Commit())
		}()
	}
	time.Sleep(300 * time.Millisecond)
	pg.stop(syscall.SIGQUIT)
	wg.Wait()
	// Down.
	for range 3 {
		_, err := sdb.ExecContext(ctx, `SELECT 1`)
		record("down", err)
	}
	// Recovering and back: query until it answers; every error on the way
	// (refused, starting up, stale pooled connections) counts.
	pg.start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := sdb.ExecContext(qctx, `SELECT 1`)
		cancel()
		if err == nil {
			break
		}
		record("recovering", err)
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL did not come back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(errs) == 0 {
		t.Fatal("the outage produced no error at all: the test proves nothing")
	}
	for what, err := range errs {
		if !httpserver.DependencyDown(err) {
			t.Errorf("not classified as dependency down (would be 500): %s (%T)", what, err)
		} else {
			t.Logf("503: %s", what)
		}
	}
}
