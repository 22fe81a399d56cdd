package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type harness struct {
	t       *testing.T
	b       *fakeBroker
	set     Settings
	newKube KubeFactory
	cs      *kubernetes.Clientset
}

func newHarness(t *testing.T, withCluster bool) *harness {
	h := &harness{t: t, b: newFakeBroker(t)}
	h.set = Settings{
		Agent: config.Defaults().Agent,
	}
	h.set.BrokerURL = h.b.srv.URL
	h.set.PAK = secret.String(h.b.pak)
	h.set.AgentName, h.set.ClusterName = "test-agent", "test-cluster"
	h.set.PollingInterval = 1
	h.set.MaxRetries = 2
	h.set.OutboxDir = t.TempDir()
	h.set.TargetStateWaitSeconds = 2
	h.set.ShutdownGraceSeconds = 5
	h.set.DriftCheckInterval = 0
	h.set.DiagnosticsEnabled = false
	h.set.RetryBackoff = kube.Backoff{Initial: 200 * time.Millisecond, Max: 400 * time.Millisecond, Deadline: -1}
	h.newKube = func() (*kube.Client, error) { return nil, fmt.Errorf("no cluster in this test") }
	if withCluster {
		env := testenv.ForTest(t)
		cfg, err := env.RESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		h.newKube = func() (*kube.Client, error) { return kube.New(cfg, kube.Options{}) }
		if h.cs, err = env.Clientset(); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type running struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan error
	url    string
}

func (h *harness) start() *running {
	h.t.Helper()
	reg := httpserver.NewRegistry()
	a := New(h.set, testLogger(h.t), mustBroker(h.t, h.set), h.newKube, NewMetrics(reg), reg, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	a.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1), url: "http://" + ln.Addr().String()}
	go func() { r.done <- a.Run(ctx) }()
	h.t.Cleanup(func() { r.stop(h.t) })
	return r
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30 s")
	}
	return nil
}

func mustBroker(t *testing.T, s Settings) *broker.Client {
	c, err := broker.New(s.BrokerURL, s.PAK, broker.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runToExit(t *testing.T, h *harness) error {
	t.Helper()
	reg := httpserver.NewRegistry()
	a := New(h.set, testLogger(t), mustBroker(t, h.set), h.newKube, NewMetrics(reg), reg, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	a.Listener = ln
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return a.Run(ctx)
}

func TestStartupExitCodes(t *testing.T) {
	t.Run("broker never ready: 69", func(t *testing.T) {
		h := newHarness(t, false)
		h.b.setDown(true)
		if code := lifecycle.CodeFor(runToExit(t, h)); code != lifecycle.ExitUnavailable {
			t.Fatalf("exit code %d, want 69", code)
		}
	})
	t.Run("PAK rejected: 77", func(t *testing.T) {
		h := newHarness(t, false)
		h.set.PAK = "brokkr_BRwrong123_abcdefghijklmnopqrstuvwx"
		if code := lifecycle.CodeFor(runToExit(t, h)); code != lifecycle.ExitNoPermission {
			t.Fatalf("exit code %d, want 77", code)
		}
	})
	t.Run("unknown agent: 64", func(t *testing.T) {
		h := newHarness(t, false)
		h.set.AgentName = "nobody"
		if code := lifecycle.CodeFor(runToExit(t, h)); code != lifecycle.ExitConfig {
			t.Fatalf("exit code %d, want 64", code)
		}
	})
	t.Run("empty PAK: 64", func(t *testing.T) {
		h := newHarness(t, false)
		h.set.PAK = ""
		if code := lifecycle.CodeFor(runToExit(t, h)); code != lifecycle.ExitConfig {
			t.Fatalf("exit code %d, want 64", code)
		}
	})
}

func TestHealthServerStartsBeforeTheBroker(t *testing.T) {
	h := newHarness(t, false)
	h.b.setDown(true)
	h.set.MaxRetries = 100
	r := h.start()
	eventually(t, "waiting_for_broker", 5*time.Second, func() bool { return r.a.State() == StateWaitingForBroker })
	body, code := get(t, r.url+"/healthz")
	if code != 200 || body != "OK" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if _, code := get(t, r.url+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while starting", code)
	}
	body, _ = get(t, r.url+"/health")
	var rep HealthReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.State != StateWaitingForBroker {
		t.Fatalf("/health = %s (%v)", body, err)
	}
	// A signal while waiting stops cleanly.
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if r.a.State() != StateStopped {
		t.Fatalf("state %s", r.a.State())
	}
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func getWithType(t *testing.T, url string) (string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.Header.Get("Content-Type")
}

func cmYAML(ns, name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  key: %q\n", name, ns, value)
}

func nsYAML(ns string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n", ns)
}

func (h *harness) cmValue(ns, name string) (string, bool) {
	cm, err := h.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", false
	}
	return cm.Data["key"], true
}

func (h *harness) waitEvent(id uuid.UUID, status string) broker.Event {
	h.t.Helper()
	var got broker.Event
	eventually(h.t, "a "+status+" event for "+id.String(), 60*time.Second, func() bool {
		for _, e := range h.b.eventsFor(id) {
			if e.Status == status {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

func TestAgentReconcilesReportsAndDrains(t *testing.T) {
	h := newHarness(t, true)
	ns := "agent-e2e-" + uuid.NewString()[:8]
	t.Cleanup(func() {
		_ = h.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	r := h.start()
	eventually(t, "ready", 30*time.Second, r.a.Ready)
	if r.a.State() != StateRunning {
		t.Fatalf("state %s", r.a.State())
	}
	if _, code := get(t, r.url+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
	body, ct := getWithType(t, r.url+"/metrics")
	if ct != "text/plain; version=0.0.4" || !strings.Contains(body, "brokkr_agent_poll_requests_total") {
		t.Fatalf("/metrics content type %q:\n%.500s", ct, body)
	}

	// Deploy: namespace + ConfigMap → one SUCCESS.
	stackA := uuid.New()
	do1 := h.b.deploy(stackA, nsYAML(ns)+cmYAML(ns, "app", "v1"), false)
	h.waitEvent(do1.ID, domainagent.EventSuccess)
	if v, ok := h.cmValue(ns, "app"); !ok || v != "v1" {
		t.Fatalf("ConfigMap = %q %v", v, ok)
	}

	// A bad update: one FAILURE, not repeated on the retries that follow;
	// the earlier state stays.
	do2 := h.b.deploy(stackA, nsYAML(ns)+cmYAML(ns, "app", "v2")+"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: "+ns+"\n", false)
	h.waitEvent(do2.ID, domainagent.EventFailure)
	time.Sleep(1500 * time.Millisecond) // several retries at 200–400 ms
	if n := len(h.b.eventsFor(do2.ID)); n != 1 {
		t.Fatalf("%d events for the failing object, want 1: %+v", n, h.b.eventsFor(do2.ID))
	}
	if v, _ := h.cmValue(ns, "app"); v != "v1" {
		t.Fatalf("failed update changed the ConfigMap to %q", v)
	}

	// A fix supersedes it.
	do3 := h.b.deploy(stackA, nsYAML(ns)+cmYAML(ns, "app", "v3"), false)
	h.waitEvent(do3.ID, domainagent.EventSuccess)
	if v, _ := h.cmValue(ns, "app"); v != "v3" {
		t.Fatalf("ConfigMap = %q", v)
	}

	// Broker outage for events: outcomes are spooled, then delivered in
	// order, once each.
	h.b.setEventsDown(true)
	stackB, stackC := uuid.New(), uuid.New()
	doB := h.b.deploy(stackB, cmYAML(ns, "b", "x"), false)
	eventually(t, "the first spooled event", 30*time.Second, func() bool { n, _, _ := r.a.Outbox().Stats(); return n >= 1 })
	doC := h.b.deploy(stackC, cmYAML(ns, "c", "x"), false)
	eventually(t, "two spooled events", 30*time.Second, func() bool { n, _, _ := r.a.Outbox().Stats(); return n >= 2 })
	var rep HealthReport
	hb, _ := get(t, r.url+"/health")
	if err := json.Unmarshal([]byte(hb), &rep); err != nil || rep.Outbox.Pending < 2 || !rep.Outbox.Durable {
		t.Fatalf("/health during the outage: %s", hb)
	}
	h.b.setEventsDown(false)
	h.waitEvent(doC.ID, domainagent.EventSuccess)
	var order []uuid.UUID
	for _, e := range h.b.allEvents() {
		if e.DeploymentObjectID == doB.ID || e.DeploymentObjectID == doC.ID {
			order = append(order, e.DeploymentObjectID)
		}
	}
	if len(order) != 2 || order[0] != doB.ID || order[1] != doC.ID {
		t.Fatalf("replayed events %v, want [%s %s]", order, doB.ID, doC.ID)
	}

	// Stop; delete the stack while the agent is down; the marker is
	// processed after the restart.
	if err := r.stop(t); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if r.a.State() != StateStopped {
		t.Fatalf("state after drain %s", r.a.State())
	}
	marker := h.b.deploy(stackA, "", true)
	r2 := h.start()
	h.waitEvent(marker.ID, domainagent.EventSuccess)
	if _, ok := h.cmValue(ns, "app"); ok {
		cm, _ := h.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "app", metav1.GetOptions{})
		if cm.DeletionTimestamp == nil {
			t.Fatal("the deletion marker left the ConfigMap")
		}
	}
	n, err := h.cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err == nil && n.DeletionTimestamp == nil {
		t.Fatal("the deletion marker left the namespace")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	// Objects applied before the restart are tracked again, so the health
	// monitor reports them without a new deployment.
	eventually(t, "the applied set seeded from the broker", 10*time.Second, func() bool {
		ids := map[uuid.UUID]bool{}
		for _, do := range r2.a.Manager().Applied() {
			ids[do.ID] = true
		}
		return len(ids) == 2 && ids[doB.ID] && ids[doC.ID]
	})
	// Nothing was reported twice across the restart.
	seen := map[string]int{}
	for _, e := range h.b.allEvents() {
		seen[e.DeploymentObjectID.String()+e.Status]++
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("event %s reported %d times", k, c)
		}
	}
	_ = r2
}

func TestDriftIsReportedAndCorrected(t *testing.T) {
	h := newHarness(t, true)
	h.set.DriftEvery = 500 * time.Millisecond
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	r := h.start()
	eventually(t, "ready", 30*time.Second, r.a.Ready)
	do := h.b.deploy(uuid.New(), cmYAML(ns, "watched", "desired"), false)
	h.waitEvent(do.ID, domainagent.EventSuccess)

	cm, err := h.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "watched", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["key"] = "edited by hand"
	if _, err := h.cs.CoreV1().ConfigMaps(ns).Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var drift broker.Event
	eventually(t, "a DRIFT event", 30*time.Second, func() bool {
		for _, e := range h.b.eventsFor(do.ID) {
			if e.EventType == domainagent.EventTypeDrift {
				drift = e
				return true
			}
		}
		return false
	})
	if drift.Status != domainagent.EventSuccess || drift.Message == nil || !strings.Contains(*drift.Message, "drift corrected: ConfigMap "+ns+"/watched") {
		t.Fatalf("drift event %+v %v", drift, *drift.Message)
	}
	eventually(t, "the value restored", 10*time.Second, func() bool { v, _ := h.cmValue(ns, "watched"); return v == "desired" })
}

func TestInactiveAgentOnlyHeartbeats(t *testing.T) {
	h := newHarness(t, true)
	h.b.setStatus("INACTIVE")
	r := h.start()
	eventually(t, "inactive", 30*time.Second, func() bool { return r.a.State() == StateInactive })
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	stackID := uuid.New()
	h.b.mu.Lock()
	h.b.agent.Status = "INACTIVE"
	h.b.mu.Unlock()
	do := h.b.deploy(stackID, cmYAML(ns, "later", "x"), false)
	time.Sleep(1500 * time.Millisecond)
	if len(h.b.eventsFor(do.ID)) != 0 {
		t.Fatal("an inactive agent reconciled")
	}
	h.b.setStatus("ACTIVE")
	eventually(t, "running", 10*time.Second, func() bool { return r.a.State() == StateRunning })
	h.waitEvent(do.ID, domainagent.EventSuccess)
}
