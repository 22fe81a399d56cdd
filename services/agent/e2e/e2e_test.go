// Package e2e runs the agent against the real broker (the api and auth
// binaries, PostgreSQL, Redis) and the local kube-apiserver: the Brokkr
// docs' quick start as a Go test.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var build struct {
	once sync.Once
	dir  string
	err  error
}

// binaries builds api and auth once per test process (the Go build cache
// makes this a relink).
func binaries(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "brokkr-e2e-bin-")
		if build.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", build.dir+"/",
			"github.com/brokkr-go/brokkr/services/api/cmd/api", "github.com/brokkr-go/brokkr/services/auth/cmd/auth")
		out, err := cmd.CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("building api and auth: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startProcess(t testing.TB, bin string, env []string, logPath string, args ...string) {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("%s log:\n%s", filepath.Base(bin), tail(string(data), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type brokerEnv struct {
	url      string
	adminPAK string
	dbURL    string
	redisURL string
	logDir   string // auth.log, api.log
}

// startBroker runs auth and api against a fresh database; extraEnv adds
// settings (BROKKR__…=value) for both.
func startBroker(t testing.TB, extraEnv ...string) brokerEnv {
	t.Helper()
	dbURL := pgtest.NewURL(t)
	redisURL := os.Getenv("BROKKR_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	bin := binaries(t)
	dir := t.TempDir()
	authAddr, apiAddr := freePort(t), freePort(t)
	env := []string{
		"BROKKR__DATABASE__URL=" + dbURL,
		"BROKKR__REDIS__URL=" + redisURL,
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=info",
		"BROKKR__AUTH__ADDR=" + authAddr,
		"BROKKR__AUTH__URL=http://" + authAddr,
		"BROKKR__HTTP__ADDR=" + apiAddr,
		"BROKKR__BROKER__ADMIN_PAK_FILE=" + filepath.Join(dir, "admin.pak"),
	}
	env = append(env, extraEnv...)
	startProcess(t, filepath.Join(bin, "auth"), env, filepath.Join(dir, "auth.log"), "serve")
	waitReady(t, "http://"+authAddr+"/readyz")
	startProcess(t, filepath.Join(bin, "api"), env, filepath.Join(dir, "api.log"), "serve")
	waitReady(t, "http://"+apiAddr+"/readyz")
	var pak []byte
	deadline := time.Now().Add(10 * time.Second)
	for len(bytes.TrimSpace(pak)) == 0 {
		pak, _ = os.ReadFile(filepath.Join(dir, "admin.pak"))
		if time.Now().After(deadline) {
			t.Fatal("auth wrote no admin PAK")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return brokerEnv{url: "http://" + apiAddr, adminPAK: strings.TrimSpace(string(pak)), dbURL: dbURL,
		redisURL: redisURL, logDir: dir}
}

func (b brokerEnv) call(t testing.TB, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, b.url+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+b.adminPAK)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

const quickStart = `apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: %[1]s
data:
  message: %[2]q
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`

func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	env := testenv.ForTest(t)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}

	// Register the agent, create a stack, target it.
	var created struct {
		Agent struct {
			ID uuid.UUID `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	b.call(t, http.MethodPost, "/agents", map[string]string{"name": "e2e-agent", "cluster_name": "e2e-cluster"}, &created)
	var st struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "quick-start-" + uuid.NewString()[:6]}, &st)
	b.call(t, http.MethodPost, "/agents/"+created.Agent.ID.String()+"/targets", map[string]any{"stack_id": st.ID}, nil)
	ns := "quick-start-" + uuid.NewString()[:8]
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	// Run the agent with its own PAK.
	set := agent.Settings{Agent: config.Defaults().Agent}
	set.BrokerURL, set.PAK = b.url, secret.String(created.InitialPAK)
	set.AgentName, set.ClusterName = "e2e-agent", "e2e-cluster"
	set.PollingInterval, set.MaxRetries = 1, 5
	set.OutboxDir = t.TempDir()
	set.TargetStateWaitSeconds = 5
	set.DriftCheckInterval = 0
	set.ShutdownGraceSeconds = 5
	bc, err := broker.New(set.BrokerURL, set.PAK, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := httpserver.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	a := agent.New(set, log, bc, func() (*kube.Client, error) { return kube.New(cfg, kube.Options{}) },
		agent.NewMetrics(reg), reg, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	a.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})

	events := func() []map[string]any {
		var out []map[string]any
		b.call(t, http.MethodGet, "/agents/"+created.Agent.ID.String()+"/events", nil, &out)
		return out
	}
	waitSuccess := func(doID string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			for _, e := range events() {
				if e["deployment_object_id"] == doID {
					if e["status"] == "SUCCESS" {
						return
					}
					t.Fatalf("event for %s: %v", doID, e)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no SUCCESS event for %s; events %v", doID, events())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	deploy := func(yaml string) string {
		t.Helper()
		var do struct {
			ID uuid.UUID `json:"id"`
		}
		b.call(t, http.MethodPost, "/stacks/"+st.ID.String()+"/deployment-objects", map[string]any{"yaml_content": yaml}, &do)
		return do.ID.String()
	}

	// Deploy.
	do1 := deploy(fmt.Sprintf(quickStart, ns, "hello", 1))
	waitSuccess(do1)
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "app-config", metav1.GetOptions{})
	if err != nil || cm.Data["message"] != "hello" {
		t.Fatalf("ConfigMap: %v %v", cm, err)
	}
	d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"k8s.brokkr.io/stack": st.ID.String(), "brokkr.io/deployment-object-id": do1,
		"brokkr.io/owner-id": created.Agent.ID.String(),
	} {
		if d.Annotations[k] != want {
			t.Errorf("Deployment annotation %s = %q, want %q", k, d.Annotations[k], want)
		}
	}
	if d.Labels["k8s.brokkr.io/stack"] != st.ID.String() || d.Annotations["k8s.brokkr.io/deployment-checksum"] == "" {
		t.Errorf("tracking metadata: labels %v annotations %v", d.Labels, d.Annotations)
	}

	// Update.
	do2 := deploy(fmt.Sprintf(quickStart, ns, "updated", 2))
	waitSuccess(do2)
	d, err = cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 2 {
		t.Fatalf("replicas: %v %v", d.Spec.Replicas, err)
	}
	cm, _ = cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "app-config", metav1.GetOptions{})
	if cm.Data["message"] != "updated" {
		t.Fatalf("ConfigMap message %q", cm.Data["message"])
	}

	// Delete the stack: its deletion marker removes everything.
	b.call(t, http.MethodDelete, "/stacks/"+st.ID.String(), nil, nil)
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, errD := cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		n, errN := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(errD) && (apierrors.IsNotFound(errN) || (errN == nil && n.DeletionTimestamp != nil)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stack deletion left objects (deployment err %v, namespace err %v)", errD, errN)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// One SUCCESS per deployment object (two versions and the marker).
	deadline = time.Now().Add(30 * time.Second)
	for {
		succ := map[string]int{}
		for _, e := range events() {
			if e["status"] == "SUCCESS" && e["event_type"] == "DEPLOY" {
				succ[e["deployment_object_id"].(string)]++
			}
		}
		if len(succ) == 3 {
			for id, n := range succ {
				if n != 1 {
					t.Fatalf("%d SUCCESS events for %s", n, id)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SUCCESS events %v, want 3 objects", succ)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
