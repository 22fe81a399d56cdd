package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var shared struct {
	once    sync.Once
	mu      sync.Mutex
	env     *Env
	err     error
	startup time.Duration
	failed  bool
}

// sharedRoot holds the run directories of ForTest control planes, one per
// test process, named <pid>-<random>.
func sharedRoot() string { return filepath.Join(os.TempDir(), "brokkr-testenv-shared") }

// ForTest returns the control plane shared by every test of this test
// process, starting it on first use (~4 s). It builds nothing: when the
// binaries are missing the test fails with instructions to run
// tools/testenv/build.sh.
//
// The control plane is stopped by Main (use it from TestMain), and in any case
// the kernel kills its processes when the test process exits; a later
// ForTest removes run directories left behind by dead test processes.
func ForTest(t testing.TB) *Env {
	t.Helper()
	shared.once.Do(func() {
		bin := DefaultBinDir()
		if err := CheckBinaries(bin, DefaultStagesDir(bin)); err != nil {
			shared.err = err
			return
		}
		reapStale()
		if err := os.MkdirAll(sharedRoot(), 0o755); err != nil {
			shared.err = err
			return
		}
		dir, err := os.MkdirTemp(sharedRoot(), strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			shared.err = err
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			shared.err = err
			return
		}
		began := time.Now()
		env, err := Start(context.Background(), Options{Dir: dir})
		if err != nil {
			_ = os.RemoveAll(dir)
			shared.err = fmt.Errorf("testenv: starting the shared control plane: %w", err)
			return
		}
		env.RemoveDir = true
		_ = env.save()
		shared.mu.Lock()
		shared.env, shared.startup = env, time.Since(began)
		shared.mu.Unlock()
		t.Logf("testenv: control plane %s started in %s (dir %s)", env.APIServerURL, shared.startup.Round(time.Millisecond), dir)
	})
	if shared.err != nil {
		t.Fatalf("%v", shared.err)
	}
	shared.mu.Lock()
	env := shared.env
	shared.mu.Unlock()
	if env == nil {
		t.Fatalf("testenv: the shared control plane was already stopped (StopShared)")
	}
	t.Cleanup(func() {
		if t.Failed() {
			shared.mu.Lock()
			shared.failed = true
			shared.mu.Unlock()
			t.Logf("testenv: component logs in %s", filepath.Join(env.Dir, "logs"))
		}
	})
	return env
}

// StopShared stops the control plane started by ForTest, if any. When a test
// using it failed the run directory (logs) is kept and its path printed.
func StopShared() error {
	shared.mu.Lock()
	env, failed := shared.env, shared.failed
	shared.env = nil
	shared.mu.Unlock()
	if env == nil {
		return nil
	}
	if failed {
		env.RemoveDir = false
		fmt.Fprintf(os.Stderr, "testenv: a test failed; logs kept in %s\n", filepath.Join(env.Dir, "logs"))
	}
	return env.Stop()
}

// Main runs the tests and then stops the shared control plane:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// reapStale stops and removes shared run directories whose test process is
// gone (killed before Main could clean up).
func reapStale() {
	entries, err := os.ReadDir(sharedRoot())
	if err != nil {
		return
	}
	for _, de := range entries {
		dir := filepath.Join(sharedRoot(), de.Name())
		data, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || Alive(pid, "") {
			continue
		}
		if env, err := Load(dir); err == nil {
			if env.Stop() != nil {
				continue
			}
		}
		_ = os.RemoveAll(dir)
	}
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace with a unique name derived from the test
// name, waits for its default ServiceAccount when the controller manager
// runs, and deletes it when the test ends.
func NewNamespace(t testing.TB, env *Env) string {
	t.Helper()
	cs, err := env.Clientset()
	if err != nil {
		t.Fatalf("testenv: clientset: %v", err)
	}
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	if base == "" {
		base = "test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: base + "-",
		Labels:       map[string]string{"testenv.brokkr-go.io/test": base},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testenv: create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("testenv: delete namespace %s: %v", ns.Name, err)
		}
	})
	if env.Has(ControllerManager) {
		for {
			_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				break
			}
			if !apierrors.IsNotFound(err) || ctx.Err() != nil {
				t.Fatalf("testenv: waiting for the default ServiceAccount in %s: %v", ns.Name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return ns.Name
}
