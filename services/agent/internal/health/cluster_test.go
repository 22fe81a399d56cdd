package health

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	kube *kube.Client
	cs   *kubernetes.Clientset
	rec  *reconcile.Reconciler
	ev   *Evaluator
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
	in, err := inspect.New(kc)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{kube: kc, cs: cs, rec: reconcile.New(kc, reconcile.Options{AgentID: uuid.New()}), ev: NewEvaluator(in),
		ns: testenv.NewNamespace(t, env)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// apply reconciles yaml as a new deployment object of a new stack.
func (f *fixture) apply(t *testing.T, yaml string) stack.DeploymentObject {
	t.Helper()
	do := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), SequenceID: 1, YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml)}
	if _, err := f.rec.Apply(ctxT(t), do); err != nil {
		t.Fatal(err)
	}
	return do
}

func webYAML(ns, app string, replicas int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %[2]s-config
  namespace: %[1]s
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  replicas: %[3]d
  selector:
    matchLabels: {app: %[2]s}
  template:
    metadata:
      labels: {app: %[2]s}
    spec:
      containers:
      - name: web
        image: nginx:1.27
`, ns, app, replicas)
}

// waitFor evaluates do until cond holds.
func (f *fixture) waitFor(t *testing.T, do stack.DeploymentObject, what string, cond func(Report) bool) Report {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, _ := f.ev.Evaluate(ctxT(t), do)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(r)
			t.Fatalf("%s: last report %s", what, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setPodStatus changes the status of every pod matching selector through
// the status subresource (no kubelet runs; kwok leaves Running pods alone).
func (f *fixture) setPodStatus(t *testing.T, selector string, mutate func(p *corev1.Pod)) {
	t.Helper()
	ctx := ctxT(t)
	pods, err := f.cs.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods %q: %v (%d)", selector, err, len(pods.Items))
	}
	for _, p := range pods.Items {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := f.cs.CoreV1().Pods(f.ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			mutate(cur)
			_, err = f.cs.CoreV1().Pods(f.ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func imagePullBackOff(p *corev1.Pod) {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady || p.Status.Conditions[i].Type == corev1.ContainersReady {
			p.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	for i := range p.Status.ContainerStatuses {
		p.Status.ContainerStatuses[i].Ready = false
		p.Status.ContainerStatuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ImagePullBackOff", Message: `Back-off pulling image "nginx:does-not-exist"`}}
	}
}

// TestHealthThroughWorkloadSelectors: kwok marks the Deployment's Pods
// Running/Ready → healthy; the same Pods waiting on ImagePullBackOff →
// degraded with the reason; a failed Pod → failing. A Pod that only carries
// the deployment-object label, without matching the Deployment's selector,
// is never counted.
func TestHealthThroughWorkloadSelectors(t *testing.T) {
	f := newFixture(t)
	do := f.apply(t, webYAML(f.ns, "web", 2))

	// A stranger in the same namespace, labelled the way the original's
	// lookup expected, with a problem of its own.
	stranger := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stranger", Namespace: f.ns,
		Labels: map[string]string{"brokkr.io/deployment-object-id": do.ID.String(), "app": "other"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := f.cs.CoreV1().Pods(f.ns).Create(ctxT(t), stranger, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r := f.waitFor(t, do, "healthy with 2/2 pods ready", func(r Report) bool {
		return r.Status == "healthy" && r.Summary.PodsReady == 2 && r.Summary.PodsTotal == 2
	})
	if len(r.Summary.Conditions) != 0 || len(r.Summary.Resources) != 0 {
		t.Fatalf("healthy summary carries issues: %+v", r.Summary)
	}
	f.setPodStatus(t, "app=other", imagePullBackOff)

	f.setPodStatus(t, "app=web", imagePullBackOff)
	r = f.waitFor(t, do, "degraded by ImagePullBackOff", func(r Report) bool { return r.Status == "degraded" })
	if !slices.Equal(r.Summary.Conditions, []string{"ImagePullBackOff"}) || r.Summary.PodsReady != 0 || r.Summary.PodsTotal != 2 {
		t.Fatalf("summary = %+v", r.Summary)
	}
	if len(r.Summary.Resources) != 2 {
		t.Fatalf("resources = %+v", r.Summary.Resources)
	}
	for _, res := range r.Summary.Resources {
		if res.Kind != "Pod" || !strings.HasPrefix(res.Name, "web-") || res.Namespace != f.ns || res.Ready ||
			res.Message == nil || !strings.Contains(*res.Message, "ImagePullBackOff") || !strings.Contains(*res.Message, "nginx:does-not-exist") {
			t.Fatalf("resource = %+v", res)
		}
	}

	// One pod fails for good.
	pods, _ := f.cs.CoreV1().Pods(f.ns).List(ctxT(t), metav1.ListOptions{LabelSelector: "app=web"})
	f.setPodStatus(t, "app=web,pod-template-hash="+pods.Items[0].Labels["pod-template-hash"], func(p *corev1.Pod) {
		if p.Name == pods.Items[0].Name {
			p.Status.Phase = corev1.PodFailed
			p.Status.Reason = "Evicted"
			p.Status.Message = "The node was low on resource: memory."
		}
	})
	r = f.waitFor(t, do, "failing", func(r Report) bool { return r.Status == "failing" })
	if !slices.Contains(r.Summary.Conditions, "PodFailed") {
		t.Fatalf("conditions = %q", r.Summary.Conditions)
	}
}

func TestHealthOfObjectsWithoutPods(t *testing.T) {
	f := newFixture(t)
	yaml := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: only, namespace: %[1]s}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: %[1]s}
spec:
  ports: [{port: 80}]
`, f.ns)
	do := f.apply(t, yaml)
	r := f.waitFor(t, do, "healthy", func(r Report) bool { return r.Status == "healthy" })
	if r.Summary.PodsTotal != 0 || len(r.Summary.Resources) != 0 {
		t.Fatalf("summary = %+v", r.Summary)
	}
	// Someone deletes an applied object: degraded, named.
	if err := f.cs.CoreV1().Services(f.ns).Delete(ctxT(t), "svc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r = f.waitFor(t, do, "degraded", func(r Report) bool { return r.Status == "degraded" })
	if !slices.Equal(r.Summary.Conditions, []string{"ResourceMissing"}) || len(r.Summary.Resources) != 1 ||
		r.Summary.Resources[0].Kind != "Service" || r.Summary.Resources[0].Name != "svc" {
		t.Fatalf("summary = %+v", r.Summary)
	}
}

// healthBodies decodes the health reports queued in ob, oldest first.
func healthBodies(t *testing.T, ob *outbox.Outbox) []Body {
	t.Helper()
	var out []Body
	for _, r := range ob.Pending() {
		if r.Kind != OutboxKind {
			continue
		}
		if r.Method != "PATCH" || !strings.HasSuffix(r.Path, "/health-status") {
			t.Fatalf("record %+v", r)
		}
		var b Body
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestMonitorReportsChangesAtOnce runs the hook with an hour-long interval:
// the first report comes when the object is applied, and a Pod going into
// ImagePullBackOff is reported within seconds through the Pod watch. With
// the broker away (nothing sends the outbox), unchanged periodic reports
// do not pile up.
func TestMonitorReportsChangesAtOnce(t *testing.T) {
	f := newFixture(t)
	ob, err := outbox.Open(outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var applied []stack.DeploymentObject
	appliedCh := make(chan []stack.DeploymentObject, 1)
	appliedCh <- nil
	env := agent.Env{AgentID: uuid.New(), Kube: f.kube, Outbox: ob, Logger: slog.New(slog.DiscardHandler),
		Active: func() bool { return true },
		Applied: func() []stack.DeploymentObject {
			applied = <-appliedCh
			appliedCh <- applied
			return applied
		}}
	m := NewMonitor(env, f.ev, Options{Interval: time.Hour, Debounce: 100 * time.Millisecond, AppliedEvery: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	do := f.apply(t, webYAML(f.ns, "api", 1))
	<-appliedCh
	appliedCh <- []stack.DeploymentObject{do}

	last := func() Report {
		bodies := healthBodies(t, ob)
		if len(bodies) == 0 {
			return Report{}
		}
		b := bodies[len(bodies)-1]
		if len(b.DeploymentObjects) != 1 || b.DeploymentObjects[0].ID != do.ID {
			t.Fatalf("body = %+v", b)
		}
		return b.DeploymentObjects[0]
	}
	waitLast := func(what string, cond func(Report) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond(last()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: last queued report %+v", what, last())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLast("healthy and ready", func(r Report) bool { return r.Status == "healthy" && r.Summary.PodsReady == 1 })
	f.setPodStatus(t, "app=api", imagePullBackOff)
	waitLast("degraded", func(r Report) bool {
		return r.Status == "degraded" && slices.Equal(r.Summary.Conditions, []string{"ImagePullBackOff"})
	})
	if r := last(); r.CheckedAt.IsZero() || r.CheckedAt.Location() != time.UTC {
		t.Fatalf("checked_at = %v", r.CheckedAt)
	}
}

// TestMonitorDoesNotPileUpUnchangedReports: with a short interval and no
// sender, one report per change is queued, not one per interval.
func TestMonitorDoesNotPileUpUnchangedReports(t *testing.T) {
	f := newFixture(t)
	do := f.apply(t, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: %s}\n", f.ns))
	ob, _ := outbox.Open(outbox.Options{})
	env := agent.Env{AgentID: uuid.New(), Kube: f.kube, Outbox: ob, Active: func() bool { return true },
		Applied: func() []stack.DeploymentObject { return []stack.DeploymentObject{do} }}
	m := NewMonitor(env, f.ev, Options{Interval: 50 * time.Millisecond, AppliedEvery: 20 * time.Millisecond})
	// Cancelled rather than given a deadline: client-go's rate limiter fails
	// calls that would wait past a deadline, before the context ends.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(600*time.Millisecond, cancel)
	_ = m.Run(ctx) // about a dozen intervals
	bodies := healthBodies(t, ob)
	if len(bodies) != 1 || bodies[0].DeploymentObjects[0].Status != "healthy" {
		b, _ := json.Marshal(bodies)
		t.Fatalf("queued %d reports: %s", len(bodies), b)
	}
}
