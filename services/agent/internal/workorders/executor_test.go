package workorders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/services/agent/internal/workorders/wotest"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	cfg  *rest.Config
	kube *kube.Client
	cs   *kubernetes.Clientset
	exec *Executor
	ns   string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.ForTest(t)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.New(cfg, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cfg: cfg, kube: kc, cs: cs, ns: testenv.NewNamespace(t, env),
		exec: NewExecutor(kc, ExecutorOptions{AgentID: uuid.New(), CheckInterval: 100 * time.Millisecond})}
}

func order(typ, yaml string) workorder.WorkOrder {
	return workorder.WorkOrder{ID: uuid.New(), WorkType: typ, YAMLContent: yaml, Status: workorder.StatusClaimed,
		ClaimTimeoutSeconds: 3600}
}

// run executes o in the background; the result arrives on the channel.
type outcome struct {
	msg string
	err error
}

type progressLog struct {
	mu   sync.Mutex
	msgs []string
}

func (p *progressLog) add(m string) { p.mu.Lock(); p.msgs = append(p.msgs, m); p.mu.Unlock() }
func (p *progressLog) all() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.msgs, "\n")
}

func (f *fixture) start(t *testing.T, o workorder.WorkOrder, timeout time.Duration) (<-chan outcome, *progressLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	pl := &progressLog{}
	ch := make(chan outcome, 1)
	go func() {
		msg, err := f.exec.Execute(ctx, Task{Order: o, Timeout: timeout, Progress: pl.add})
		ch <- outcome{msg, err}
	}()
	return ch, pl
}

func wait(t *testing.T, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(90 * time.Second):
		t.Fatal("the work order did not finish")
		return outcome{}
	}
}

// eventually polls fn until it returns "" or d passes.
func eventually(t *testing.T, d time.Duration, fn func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := fn()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func failure(t *testing.T, err error) *Failure {
	t.Helper()
	if err == nil {
		t.Fatal("expected a failure, got success")
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("expected a *Failure, got %T: %v", err, err)
	}
	return f
}

const jobYAML = `apiVersion: batch/v1
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

func TestCustomJobCompletes(t *testing.T) {
	f := newFixture(t)
	yaml := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: %[1]s, labels: {app: migrate}}
data: {mode: fast}
---
`+jobYAML, f.ns, "migrate")
	o := order(workorder.TypeCustom, yaml)
	ch, pl := f.start(t, o, time.Minute)

	var job metav1.Object
	eventually(t, 30*time.Second, func() string {
		j, err := f.cs.BatchV1().Jobs(f.ns).Get(context.Background(), "migrate", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		job = j
		return ""
	})
	if got := job.GetLabels()[LabelWorkOrderID]; got != o.ID.String() {
		t.Errorf("Job label %s = %q, want the work order id", LabelWorkOrderID, got)
	}
	if mf := job.GetManagedFields(); len(mf) == 0 || mf[0].Manager != FieldManager {
		t.Errorf("Job field manager = %+v, want %s", mf, FieldManager)
	}
	cm, err := f.cs.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "settings", metav1.GetOptions{})
	if err != nil || cm.Labels["app"] != "migrate" || cm.Labels[LabelWorkOrderID] != o.ID.String() {
		t.Fatalf("ConfigMap not applied with its labels: %v %v", err, cm.Labels)
	}
	// Applied, but the Job is not done: the order must still be running.
	eventually(t, 10*time.Second, func() string {
		if !strings.Contains(pl.all(), "waiting for Job "+f.ns+"/migrate") {
			return "no progress report names the Job: " + pl.all()
		}
		return ""
	})
	select {
	case out := <-ch:
		t.Fatalf("finished before the Job completed: %+v", out)
	default:
	}

	wotest.FinishJob(t, f.cs, f.ns, "migrate", true, "CompletionsReached", "Reached expected number of succeeded pods")
	out := wait(t, ch)
	if out.err != nil {
		t.Fatalf("custom order failed: %v", out.err)
	}
	if out.msg != "applied 2 object(s); 1 Job(s) complete" {
		t.Errorf("message = %q", out.msg)
	}
}

func TestCustomJobFails(t *testing.T) {
	f := newFixture(t)
	o := order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, "doomed"))
	ch, _ := f.start(t, o, time.Minute)
	eventually(t, 30*time.Second, func() string {
		_, err := f.cs.BatchV1().Jobs(f.ns).Get(context.Background(), "doomed", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		return ""
	})
	wotest.FinishJob(t, f.cs, f.ns, "doomed", false, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
	fl := failure(t, wait(t, ch).err)
	if fl.Reason != ReasonJobFailed || fl.Retryable() {
		t.Errorf("failure = %s (retryable %v), want %s, not retryable", fl.Reason, fl.Retryable(), ReasonJobFailed)
	}
	want := "Job " + f.ns + "/doomed failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
	if fl.Message != want {
		t.Errorf("message = %q, want %q", fl.Message, want)
	}

	// The same order again (a restart) re-reads its own Job.
	ch, _ = f.start(t, o, time.Minute)
	if fl := failure(t, wait(t, ch).err); fl.Reason != ReasonJobFailed {
		t.Errorf("re-running the order = %s: %s, want its Job's failure again", fl.Reason, fl.Message)
	}
	// Another order naming the same Job must not report that Job's outcome.
	other := order(workorder.TypeCustom, o.YAMLContent)
	ch, _ = f.start(t, other, time.Minute)
	fl = failure(t, wait(t, ch).err)
	if fl.Reason != ReasonConflict || fl.Retryable() || !strings.Contains(fl.Message, "belongs to work order "+o.ID.String()) {
		t.Errorf("another order with the same Job = %s (retryable %v): %s", fl.Reason, fl.Retryable(), fl.Message)
	}
}

func TestCustomTimeoutIsRetryable(t *testing.T) {
	f := newFixture(t)
	ch, _ := f.start(t, order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, "slow")), 2*time.Second)
	fl := failure(t, wait(t, ch).err)
	if fl.Reason != ReasonTimeout || !fl.Retryable() {
		t.Fatalf("failure = %s (%q), want a retryable timeout", fl.Reason, fl.Message)
	}
	if !strings.Contains(fl.Message, "Job "+f.ns+"/slow") {
		t.Errorf("the timeout does not name what it waited for: %q", fl.Message)
	}
}

func TestCustomDeploymentWaitsForKstatusCurrent(t *testing.T) {
	f := newFixture(t)
	yaml := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
`, f.ns)
	ch, pl := f.start(t, order(workorder.TypeCustom, yaml), time.Minute)
	out := wait(t, ch)
	if out.err != nil {
		t.Fatalf("deployment order failed: %v (progress: %s)", out.err, pl.all())
	}
	// The controller manager and kwok made it available; kstatus agrees.
	d, err := f.cs.AppsV1().Deployments(f.ns).Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || d.Status.AvailableReplicas != 1 {
		t.Fatalf("the order succeeded before the Deployment was available: %v %+v", err, d.Status)
	}
}

func TestCustomPermanentFailures(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		typ    string
		yaml   string
		reason Reason
		text   string
	}{
		{"missing kind", workorder.TypeCustom, "apiVersion: v1\nmetadata: {name: x}\n", ReasonInvalid, "document 1: missing kind"},
		{"no objects", workorder.TypeCustom, "---\n# nothing\n", ReasonInvalid, "no Kubernetes objects"},
		{"unknown type", "teleport", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", ReasonUnknownType, "Unknown work type: teleport"},
		{"missing CRD", workorder.TypeCustom, fmt.Sprintf("apiVersion: nowhere.brokkr.io/v1\nkind: Gadget\nmetadata: {name: g, namespace: %s}\n", f.ns),
			ReasonMissingKind, "Gadget"},
		{"rejected by the API", workorder.TypeCustom, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: %[1]s}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: %[1]s}\nspec: {ports: [{port: 99999}]}\n", f.ns),
			ReasonRejected, "Service " + f.ns + "/bad (document 2)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch, _ := f.start(t, order(c.typ, c.yaml), 30*time.Second)
			fl := failure(t, wait(t, ch).err)
			if fl.Reason != c.reason || fl.Retryable() {
				t.Errorf("failure = %s (retryable %v): %s; want %s, not retryable", fl.Reason, fl.Retryable(), fl.Message, c.reason)
			}
			if !strings.Contains(fl.Message, c.text) {
				t.Errorf("message %q does not contain %q", fl.Message, c.text)
			}
		})
	}
	// The dry-run stopped the whole order: the valid ConfigMap was not applied.
	if _, err := f.cs.CoreV1().ConfigMaps(f.ns).Get(context.Background(), "ok", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("an order with an invalid object applied part of itself: %v", err)
	}
}

const buildYAML = `apiVersion: v1
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
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  source:
    type: Git
    git: {url: https://github.com/shipwright-io/sample-go}
  strategy: {name: buildah, kind: ClusterBuildStrategy}
  output: {image: registry.example/app:latest, pushSecret: registry-creds}
`

// TestBuild runs in order: without the Shipwright CRDs first, then with
// them (the control plane is shared by the package's tests).
func TestBuild(t *testing.T) {
	f := newFixture(t)
	dyn := f.kube.Dynamic

	t.Run("without Shipwright", func(t *testing.T) {
		ch, _ := f.start(t, order(workorder.TypeBuild, fmt.Sprintf(buildYAML, f.ns, "app")), 30*time.Second)
		fl := failure(t, wait(t, ch).err)
		if fl.Reason != ReasonShipwrightMissing || fl.Retryable() {
			t.Fatalf("failure = %s (retryable %v), want %s, not retryable", fl.Reason, fl.Retryable(), ReasonShipwrightMissing)
		}
		if !strings.Contains(fl.Message, "Shipwright Build is not installed in this cluster") {
			t.Errorf("message = %q", fl.Message)
		}
		// Nothing was applied.
		if _, err := f.cs.CoreV1().Secrets(f.ns).Get(context.Background(), "registry-creds", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the Secret was applied although the order cannot run: %v", err)
		}
	})

	wotest.InstallShipwright(t, f.cfg, "../../testdata/shipwright")

	t.Run("creates the BuildRun and reports the digest; a restart adopts it", func(t *testing.T) {
		o := order(workorder.TypeBuild, fmt.Sprintf(buildYAML, f.ns, "app"))
		o.RetryCount = 2
		name := BuildRunName("app", o.ID, 2)
		ch, pl := f.start(t, o, time.Minute)
		var br *unstructured.Unstructured
		eventually(t, 30*time.Second, func() string {
			var err error
			br, err = dyn.Resource(wotest.BuildRuns).Namespace(f.ns).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			return ""
		})
		if got, _, _ := unstructured.NestedString(br.Object, "spec", "build", "name"); got != "app" {
			t.Errorf("BuildRun spec.build.name = %q", got)
		}
		if l := br.GetLabels(); l[LabelWorkOrderID] != o.ID.String() || l[LabelBuild] != "app" {
			t.Errorf("BuildRun labels = %v", l)
		}
		for _, get := range []func() error{
			func() error {
				_, err := f.cs.CoreV1().Secrets(f.ns).Get(context.Background(), "registry-creds", metav1.GetOptions{})
				return err
			},
			func() error {
				_, err := f.cs.CoreV1().ServiceAccounts(f.ns).Get(context.Background(), "builder", metav1.GetOptions{})
				return err
			},
		} {
			if err := get(); err != nil {
				t.Errorf("a supporting document of the build order was not applied: %v", err)
			}
		}
		eventually(t, 10*time.Second, func() string {
			if !strings.Contains(pl.all(), "BuildRun "+f.ns+"/"+name+" created") {
				return "no progress report for the BuildRun: " + pl.all()
			}
			return ""
		})

		// A second execution of the same attempt (what a restarted agent
		// runs) adopts the BuildRun instead of failing on AlreadyExists.
		ch2, pl2 := f.start(t, o, time.Minute)
		eventually(t, 30*time.Second, func() string {
			if !strings.Contains(pl2.all(), "BuildRun "+f.ns+"/"+name+" adopted") {
				return "the second execution did not adopt the BuildRun: " + pl2.all()
			}
			return ""
		})

		digest := "sha256:" + strings.Repeat("ab", 32)
		wotest.FinishBuildRun(t, dyn, f.ns, name, true, digest, "Succeeded", "All Steps have completed executing")
		for _, c := range []<-chan outcome{ch, ch2} {
			out := wait(t, c)
			if out.err != nil || out.msg != digest {
				t.Errorf("outcome = %q, %v; want the digest", out.msg, out.err)
			}
		}
		list, err := dyn.Resource(wotest.BuildRuns).Namespace(f.ns).List(context.Background(),
			metav1.ListOptions{LabelSelector: LabelWorkOrderID + "=" + o.ID.String()})
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("BuildRuns of the order: %v, %d; want exactly one", err, len(list.Items))
		}
	})

	t.Run("a failed BuildRun is a non-retryable failure", func(t *testing.T) {
		o := order(workorder.TypeBuild, fmt.Sprintf(buildYAML, f.ns, "broken"))
		name := BuildRunName("broken", o.ID, 0)
		ch, _ := f.start(t, o, time.Minute)
		eventually(t, 30*time.Second, func() string {
			_, err := dyn.Resource(wotest.BuildRuns).Namespace(f.ns).Get(context.Background(), name, metav1.GetOptions{})
			if err != nil {
				return err.Error()
			}
			return ""
		})
		wotest.FinishBuildRun(t, dyn, f.ns, name, false, "", "BuildRunTimeout", "step-build exceeded its deadline")
		fl := failure(t, wait(t, ch).err)
		if fl.Reason != ReasonBuildRunFailed || fl.Retryable() {
			t.Errorf("failure = %s (retryable %v)", fl.Reason, fl.Retryable())
		}
		if want := "BuildRun " + f.ns + "/" + name + " failed: BuildRunTimeout: step-build exceeded its deadline"; fl.Message != want {
			t.Errorf("message = %q, want %q", fl.Message, want)
		}
	})

	t.Run("a WorkOrder buildRef names an existing Build; a foreign BuildRun is not adopted", func(t *testing.T) {
		o := order(workorder.TypeBuild, fmt.Sprintf("apiVersion: brokkr.io/v1\nkind: WorkOrder\nmetadata: {name: wo, namespace: %s}\nspec:\n  buildRef: {name: app}\n", f.ns))
		name := BuildRunName("app", o.ID, 0)
		foreign := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "shipwright.io/v1beta1", "kind": "BuildRun",
			"metadata": map[string]any{"name": name, "namespace": f.ns},
			"spec":     map[string]any{"build": map[string]any{"name": "app"}},
		}}
		if _, err := dyn.Resource(wotest.BuildRuns).Namespace(f.ns).Create(context.Background(), foreign, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		ch, _ := f.start(t, o, 30*time.Second)
		fl := failure(t, wait(t, ch).err)
		if fl.Reason != ReasonConflict || fl.Retryable() {
			t.Errorf("failure = %s (retryable %v): %s", fl.Reason, fl.Retryable(), fl.Message)
		}
	})

	t.Run("a build order without a Build is invalid", func(t *testing.T) {
		ch, _ := f.start(t, order(workorder.TypeBuild, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 30*time.Second)
		fl := failure(t, wait(t, ch).err)
		if fl.Reason != ReasonInvalid || !strings.Contains(fl.Message, "no Shipwright Build") {
			t.Errorf("failure = %s: %s", fl.Reason, fl.Message)
		}
	})
}
