// Package e2e drives the README quick start and the multi-cluster tutorial
// with the brokkr command line alone, against the real binaries (auth, api,
// agent), real PostgreSQL and Redis, and the local kube-apiserver of
// tools/testenv. The only other client is client-go, to look into the
// cluster the way the tutorials use kubectl.
package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var bins = testsupport.Binaries{Prefix: "brokkr-cli-e2e-bin-", Packages: []string{
	"github.com/brokkr-go/brokkr/services/api/cmd/api",
	"github.com/brokkr-go/brokkr/services/auth/cmd/auth",
	"github.com/brokkr-go/brokkr/services/agent/cmd/agent",
	"github.com/brokkr-go/brokkr/services/templating/cmd/templating",
	"github.com/brokkr-go/brokkr/tools/brokkr",
}}

// binaries builds the commands once per test process.
func binaries(t testing.TB) string { return bins.Dir(t) }

// cleanEnv is the environment without any BROKKR_ setting of the caller.
func cleanEnv() []string {
	var out []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "BROKKR") && !strings.HasPrefix(e, "HOME=") {
			out = append(out, e)
		}
	}
	return out
}

// startProcess runs bin without the caller's BROKKR settings until the test ends.
func startProcess(t testing.TB, bin string, env []string, logPath string, args ...string) {
	t.Helper()
	testsupport.Start(t, testsupport.Command{
		Bin: bin, Args: args, Env: append(cleanEnv(), env...), Log: logPath, Name: filepath.Base(logPath),
	})
}

// world is one broker (templating, auth, api on a fresh database), the shared local
// kube-apiserver and a HOME for the CLI's config file.
type world struct {
	t          *testing.T
	bin        string
	url        string
	adminPAK   string
	home       string
	kubeconfig string
	env        *testenv.Env
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	bin := binaries(t)
	dbURL := pgtest.NewURL(t)
	redisURL := os.Getenv("BROKKR_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	dir := t.TempDir()
	addrs := testsupport.FreeAddrs(t, 3)
	authAddr, apiAddr, tplAddr := addrs[0], addrs[1], addrs[2]
	senv := []string{
		"BROKKR__DATABASE__URL=" + dbURL,
		"BROKKR__DATABASE__MAX_OPEN_CONNS=5",
		"BROKKR__REDIS__URL=" + redisURL,
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__AUTH__ADDR=" + authAddr,
		"BROKKR__AUTH__URL=http://" + authAddr,
		"BROKKR__HTTP__ADDR=" + apiAddr,
		"BROKKR__BROKER__ADMIN_PAK_FILE=" + filepath.Join(dir, "admin.pak"),
		"BROKKR__TEMPLATING__ADDR=" + tplAddr,
		"BROKKR__TEMPLATING__URL=http://" + tplAddr,
		"BROKKR_CONFIG_WATCHER_ENABLED=false",
	}
	startProcess(t, filepath.Join(bin, "templating"), senv, filepath.Join(dir, "templating.log"), "serve")
	testsupport.WaitReady(t, "http://"+tplAddr+"/readyz")
	startProcess(t, filepath.Join(bin, "auth"), senv, filepath.Join(dir, "auth.log"), "serve")
	testsupport.WaitReady(t, "http://"+authAddr+"/readyz")
	startProcess(t, filepath.Join(bin, "api"), senv, filepath.Join(dir, "api.log"), "serve")
	testsupport.WaitReady(t, "http://"+apiAddr+"/readyz")
	var pak []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(bytes.TrimSpace(pak)) == 0 {
		pak, _ = os.ReadFile(filepath.Join(dir, "admin.pak"))
		if time.Now().After(deadline) {
			t.Fatal("auth wrote no admin PAK")
		}
		time.Sleep(50 * time.Millisecond)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, bin: bin, url: "http://" + apiAddr, adminPAK: strings.TrimSpace(string(pak)), home: home}
}

// cluster starts (once per test process) the local kube-apiserver the
// agents apply to.
func (w *world) cluster() *testenv.Env {
	w.t.Helper()
	if w.env == nil {
		w.env = testenv.ForTest(w.t)
		w.kubeconfig = w.env.Kubeconfig
	}
	return w.env
}

type result struct {
	out, err string
	code     int
}

// brokkr runs the CLI with HOME set to the world's and extra environment.
func (w *world) brokkr(env []string, args ...string) result {
	w.t.Helper()
	cmd := exec.Command(filepath.Join(w.bin, "brokkr"), args...)
	cmd.Env = append(append(cleanEnv(), "HOME="+w.home), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("brokkr %v: %v", args, err)
	}
	r := result{out: out.String(), err: errb.String(), code: code}
	if strings.Contains(r.out+r.err, w.adminPAK) {
		w.t.Fatalf("brokkr %v printed the admin PAK", args)
	}
	return r
}

// ok runs the CLI (with the saved login) and fails unless it exits 0.
func (w *world) ok(args ...string) string {
	w.t.Helper()
	r := w.brokkr(nil, args...)
	if r.code != 0 {
		w.t.Fatalf("brokkr %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

var pakLine = regexp.MustCompile(`(?m)^Initial PAK: (brokkr_BR\S+)$`)

// registerAgent registers an agent with `brokkr create agent` and returns
// the PAK it printed.
func (w *world) registerAgent(name, cluster string) string {
	w.t.Helper()
	out := w.ok("create", "agent", name, "--cluster", cluster)
	m := pakLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "Agent created successfully:") {
		w.t.Fatalf("create agent output: %q", out)
	}
	return m[1]
}

// createAgent registers an agent and runs the agent binary with the PAK
// `brokkr create agent` printed, against the local kube-apiserver.
func (w *world) createAgent(name, cluster string) {
	w.t.Helper()
	w.cluster()
	pak := w.registerAgent(name, cluster)
	m := []string{"", pak}
	dir := w.t.TempDir()
	startProcess(w.t, filepath.Join(w.bin, "agent"), []string{
		"BROKKR__AGENT__BROKER_URL=" + w.url,
		"BROKKR__AGENT__PAK=" + m[1],
		"BROKKR__AGENT__AGENT_NAME=" + name,
		"BROKKR__AGENT__CLUSTER_NAME=" + cluster,
		"BROKKR__AGENT__KUBECONFIG_PATH=" + w.kubeconfig,
		"BROKKR__AGENT__HEALTH_PORT=" + strings.Split(testsupport.FreeAddr(w.t), ":")[1],
		"BROKKR__AGENT__OUTBOX_DIR=" + filepath.Join(dir, "outbox"),
		"BROKKR__AGENT__POLLING_INTERVAL=1",
		"BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS=5",
		"BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS=5",
		"BROKKR__AGENT__DRIFT_CHECK_INTERVAL=0",
		"BROKKR__AGENT__DIAGNOSTICS_POLL_INTERVAL=1",
		"BROKKR__LOG__FORMAT=json",
	}, filepath.Join(dir, name+".log"), "start")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func kubeGet(t *testing.T, w *world, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), w.cluster().KubectlPath(), append([]string{"--kubeconfig", w.kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
