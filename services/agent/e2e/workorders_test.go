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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/workorders"
	"github.com/brokkr-go/brokkr/services/agent/internal/workorders/wotest"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

// woAgent is a registered agent that can be started and stopped again with
// the same identity and outbox folder (a restart).
type woAgent struct {
	b         brokerEnv
	kcfg      *rest.Config
	name      string
	id        uuid.UUID
	pak       string
	outboxDir string
}

func registerWorkOrderAgent(t *testing.T, b brokerEnv, kcfg *rest.Config, name string) *woAgent {
	t.Helper()
	var created struct {
		Agent struct {
			ID uuid.UUID `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	b.call(t, http.MethodPost, "/agents", map[string]string{"name": name, "cluster_name": "e2e-cluster"}, &created)
	return &woAgent{b: b, kcfg: kcfg, name: name, id: created.Agent.ID, pak: created.InitialPAK, outboxDir: t.TempDir()}
}

// start runs the agent with only the work-order hook; the returned
// function drains it (and runs at test end unless called before).
func (w *woAgent) start(t *testing.T) (stop func()) {
	t.Helper()
	set := agent.Settings{Agent: config.Defaults().Agent}
	set.BrokerURL, set.PAK = w.b.url, secret.String(w.pak)
	set.AgentName, set.ClusterName = w.name, "e2e-cluster"
	set.PollingInterval, set.MaxRetries = 1, 5
	set.OutboxDir = w.outboxDir
	set.TargetStateWaitSeconds = 5
	set.DriftCheckInterval = 0
	set.ShutdownGraceSeconds = 5
	bc, err := broker.New(set.BrokerURL, set.PAK, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hooks := []agent.Hook{workorders.Hook(workorders.Options{
		PollInterval: 300 * time.Millisecond, Concurrency: 1, Timeout: 2 * time.Minute,
		CheckInterval: 200 * time.Millisecond, ProgressInterval: time.Second,
	})}
	reg := httpserver.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	a := agent.New(set, log, bc, func() (*kube.Client, error) { return kube.New(w.kcfg, kube.Options{}) },
		agent.NewMetrics(reg), reg, hooks)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// tryCall is call without failing on a status ≥ 300.
func (b brokerEnv) tryCall(t *testing.T, method, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, b.url+"/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+b.adminPAK)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 && out != nil {
		if err := json.NewDecoder(bytes.NewReader(data)).Decode(out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

type apiWorkOrder struct {
	ID         uuid.UUID  `json:"id"`
	Status     string     `json:"status"`
	ClaimedBy  *uuid.UUID `json:"claimed_by"`
	RetryCount int        `json:"retry_count"`
	Progress   *struct {
		Message   *string   `json:"message"`
		UpdatedAt time.Time `json:"updated_at"`
	} `json:"progress"`
}

func (w apiWorkOrder) progress() string {
	if w.Progress == nil || w.Progress.Message == nil {
		return ""
	}
	return *w.Progress.Message
}

type apiLogEntry struct {
	ID               uuid.UUID  `json:"id"`
	Success          bool       `json:"success"`
	RetriesAttempted int        `json:"retries_attempted"`
	ResultMessage    *string    `json:"result_message"`
	ClaimedBy        *uuid.UUID `json:"claimed_by"`
}

func (l apiLogEntry) message() string {
	if l.ResultMessage == nil {
		return "<null>"
	}
	return *l.ResultMessage
}

func createWorkOrder(t *testing.T, b brokerEnv, agentID uuid.UUID, typ, yaml string) uuid.UUID {
	t.Helper()
	var w apiWorkOrder
	b.call(t, http.MethodPost, "/work-orders", map[string]any{
		"work_type": typ, "yaml_content": yaml, "max_retries": 3, "backoff_seconds": 60,
		"targeting": map[string]any{"agent_ids": []uuid.UUID{agentID}},
	}, &w)
	return w.ID
}

// waitLog waits until the order is in the log and returns the entry.
func waitLog(t *testing.T, b brokerEnv, id uuid.UUID) apiLogEntry {
	t.Helper()
	var l apiLogEntry
	eventually(t, 60*time.Second, func() string {
		if code := b.tryCall(t, http.MethodGet, "/work-order-log/"+id.String(), &l); code != http.StatusOK {
			var w apiWorkOrder
			b.tryCall(t, http.MethodGet, "/work-orders/"+id.String(), &w)
			return fmt.Sprintf("work order %s not in the log (%d); it is %s, progress %q", id, code, w.Status, w.progress())
		}
		return ""
	})
	return l
}

// waitProgress waits until the order is CLAIMED by agentID with a progress
// message containing want.
func waitProgress(t *testing.T, b brokerEnv, id, agentID uuid.UUID, want string) apiWorkOrder {
	t.Helper()
	var w apiWorkOrder
	eventually(t, 60*time.Second, func() string {
		w = apiWorkOrder{}
		b.tryCall(t, http.MethodGet, "/work-orders/"+id.String(), &w)
		if w.Status != "CLAIMED" || w.ClaimedBy == nil || *w.ClaimedBy != agentID || !strings.Contains(w.progress(), want) {
			return fmt.Sprintf("work order %s: status %s, claimed by %v, progress %q; want CLAIMED by %s with %q", id, w.Status, w.ClaimedBy, w.progress(), agentID, want)
		}
		return ""
	})
	return w
}

const e2eJob = `apiVersion: batch/v1
kind: Job
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  managedBy: ` + wotest.ManagedBy + `
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: ["true"]}]
`

// TestWorkOrdersCustom: through the real api, an agent with the documented
// RBAC claims a custom Job order, reports progress while the Job runs,
// holds a second order back (concurrency 1), and completes the first when
// the test sets the Job's Complete condition; the second order's Job fails
// and it lands in the log as a non-retryable failure.
func TestWorkOrdersCustom(t *testing.T) {
	b := startBroker(t)
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ag := registerWorkOrderAgent(t, b, agentUserConfig(t, env), "wo-custom-agent")
	ag.start(t)

	okID := createWorkOrder(t, b, ag.id, "custom", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: migrate-settings, namespace: %s}\ndata: {to: v2}\n---\n"+e2eJob, ns, "migrate"))
	first := waitProgress(t, b, okID, ag.id, "waiting for Job "+ns+"/migrate")
	failID := createWorkOrder(t, b, ag.id, "custom", fmt.Sprintf(e2eJob, ns, "doomed"))

	// Progress keeps coming while the Job runs, and the second order
	// stays PENDING: one order at a time.
	eventually(t, 30*time.Second, func() string {
		var w apiWorkOrder
		b.tryCall(t, http.MethodGet, "/work-orders/"+okID.String(), &w)
		if w.Progress == nil || !w.Progress.UpdatedAt.After(first.Progress.UpdatedAt) {
			return "no new progress report on the running order"
		}
		return ""
	})
	var second apiWorkOrder
	b.call(t, http.MethodGet, "/work-orders/"+failID.String(), nil, &second)
	if second.Status != "PENDING" {
		t.Fatalf("the second order is %s while the first runs; concurrency 1 must hold it back", second.Status)
	}
	job, err := cs.BatchV1().Jobs(ns).Get(context.Background(), "migrate", metav1.GetOptions{})
	if err != nil || job.Labels[workorders.LabelWorkOrderID] != okID.String() {
		t.Fatalf("the Job is not labelled with its work order: %v %v", err, job.Labels)
	}

	wotest.FinishJob(t, cs, ns, "migrate", true, "CompletionsReached", "Reached expected number of succeeded pods")
	l := waitLog(t, b, okID)
	if !l.Success || l.message() != "applied 2 object(s); 1 Job(s) complete" || l.ClaimedBy == nil || *l.ClaimedBy != ag.id {
		t.Fatalf("log entry of the Job order = %+v (%s)", l, l.message())
	}

	eventually(t, 60*time.Second, func() string {
		if _, err := cs.BatchV1().Jobs(ns).Get(context.Background(), "doomed", metav1.GetOptions{}); err != nil {
			return "the second order's Job was not applied: " + err.Error()
		}
		return ""
	})
	wotest.FinishJob(t, cs, ns, "doomed", false, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	l = waitLog(t, b, failID)
	want := "Job " + ns + "/doomed failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
	if l.Success || l.message() != want || l.RetriesAttempted != 0 {
		t.Fatalf("log entry of the failed Job = success %v, retries %d, %q; want a non-retryable failure %q", l.Success, l.RetriesAttempted, l.message(), want)
	}

	// An admin cancels a running order: the next progress report gets 404,
	// the agent abandons it and frees its only slot for the next order.
	cancelled := createWorkOrder(t, b, ag.id, "custom", fmt.Sprintf(e2eJob, ns, "cancelled"))
	waitProgress(t, b, cancelled, ag.id, "waiting for Job "+ns+"/cancelled")
	b.call(t, http.MethodDelete, "/work-orders/"+cancelled.String(), nil, nil)
	next := createWorkOrder(t, b, ag.id, "custom", fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-cancel, namespace: %s}\n", ns))
	if l := waitLog(t, b, next); !l.Success {
		t.Fatalf("the order after a cancellation = %+v (%s)", l, l.message())
	}
	if code := b.tryCall(t, http.MethodGet, "/work-order-log/"+cancelled.String(), nil); code != http.StatusNotFound {
		t.Errorf("the cancelled order reached the log (%d)", code)
	}
}

const e2eBuild = `apiVersion: v1
kind: Secret
metadata: {name: registry-creds, namespace: %[1]s}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{}}'}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: builder, namespace: %[1]s}
---
apiVersion: shipwright.io/v1beta1
kind: Build
metadata: {name: app, namespace: %[1]s}
spec:
  source:
    type: Git
    git: {url: https://github.com/shipwright-io/sample-go}
  strategy: {name: buildah, kind: ClusterBuildStrategy}
  output: {image: registry.example/app:latest, pushSecret: registry-creds}
`

// TestWorkOrdersBuild: a build order on a cluster without Shipwright fails
// for good with a clear message; with the Shipwright CRDs installed (copied
// from the module by testdata/fetch-shipwright-crds.sh), the agent creates
// the BuildRun, is restarted mid-build, adopts the BuildRun and reports its
// digest when the test marks it succeeded.
func TestWorkOrdersBuild(t *testing.T) {
	b := startBroker(t)
	env := testenv.ForTest(t)
	ns := testenv.NewNamespace(t, env)
	admin, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	ag := registerWorkOrderAgent(t, b, agentUserConfig(t, env), "wo-build-agent")
	stop := ag.start(t)

	// The shared control plane gets the CRDs below; nothing else in this
	// package installs them.
	if _, err := dyn.Resource(wotest.BuildRuns).List(context.Background(), metav1.ListOptions{Limit: 1}); err == nil {
		t.Fatal("Shipwright CRDs are already installed; the without-Shipwright case cannot run")
	}
	noCRDs := createWorkOrder(t, b, ag.id, "build", fmt.Sprintf(e2eBuild, ns))
	l := waitLog(t, b, noCRDs)
	if l.Success || l.RetriesAttempted != 0 || !strings.Contains(l.message(), "Shipwright Build is not installed in this cluster") {
		t.Fatalf("build order without Shipwright = success %v, retries %d, %q; want a clear non-retryable failure", l.Success, l.RetriesAttempted, l.message())
	}

	wotest.InstallShipwright(t, admin, "../testdata/shipwright")
	id := createWorkOrder(t, b, ag.id, "build", fmt.Sprintf(e2eBuild, ns))
	name := workorders.BuildRunName("app", id, 0)
	waitProgress(t, b, id, ag.id, "BuildRun "+ns+"/"+name+" created")

	// Restart mid-build: the claim stays recorded next to the outbox.
	stop()
	state := filepath.Join(ag.outboxDir, ag.id.String(), "work-orders", id.String()+".json")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("the order in flight is not recorded for the next start: %v", err)
	}
	var w apiWorkOrder
	b.call(t, http.MethodGet, "/work-orders/"+id.String(), nil, &w)
	if w.Status != "CLAIMED" {
		t.Fatalf("after the drain the order is %s, want still CLAIMED", w.Status)
	}
	ag.start(t)
	waitProgress(t, b, id, ag.id, "BuildRun "+ns+"/"+name+" adopted")

	digest := "sha256:" + strings.Repeat("5e", 32)
	wotest.FinishBuildRun(t, dyn, ns, name, true, digest, "Succeeded", "All Steps have completed executing")
	l = waitLog(t, b, id)
	if !l.Success || l.message() != digest || l.RetriesAttempted != 0 {
		t.Fatalf("build log entry = success %v, retries %d, %q; want success with the digest", l.Success, l.RetriesAttempted, l.message())
	}
	runs, err := dyn.Resource(wotest.BuildRuns).Namespace(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: workorders.LabelWorkOrderID + "=" + id.String()})
	if err != nil || len(runs.Items) != 1 {
		t.Fatalf("BuildRuns of the order: %v, %d; want exactly the adopted one", err, len(runs.Items))
	}
	eventually(t, 10*time.Second, func() string {
		if _, err := os.Stat(state); !os.IsNotExist(err) {
			return "the finished order is still recorded as in flight"
		}
		return ""
	})
}
