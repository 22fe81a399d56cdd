package diagnostics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestCollect: pod statuses of the Deployment's Pods (found through its
// selector), events of the Deployment, its ReplicaSet and its Pods but not
// of a stranger in the same namespace, and a log tail entry per container
// that reports the error (kwok runs no kubelet) instead of failing.
func TestCollect(t *testing.T) {
	env := testenv.ForTest(t)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.New(cfg, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := env.Clientset()
	ns := testenv.NewNamespace(t, env)
	yaml := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: web, image: nginx:1.27}
      - {name: sidecar, image: busybox}
`, ns)
	do := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml)}
	if _, err := reconcile.New(kc, reconcile.Options{AgentID: uuid.New()}).Apply(ctxT(t), do); err != nil {
		t.Fatal(err)
	}
	// An event about someone else in the same namespace.
	_, err = cs.CoreV1().Events(ns).Create(ctxT(t), &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "x-", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "stranger", Namespace: ns}, Reason: "NotMine", Message: "unrelated",
		Type: "Warning", FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := inspect.New(kc)
	if err != nil {
		t.Fatal(err)
	}
	c := &Collector{In: in, LogLines: 5, LogTimeout: 3 * time.Second}

	var res Result
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err = c.Collect(ctxT(t), do)
		if err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range res.PodStatuses {
			if p.Phase == "Running" {
				running++
			}
		}
		kinds := map[string]bool{}
		for _, e := range res.Events {
			kinds[*e.InvolvedObjectKind] = true
		}
		if running == 2 && kinds["Pod"] && kinds["ReplicaSet"] && kinds["Deployment"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pods %+v, events %+v", res.PodStatuses, res.Events)
		}
		time.Sleep(200 * time.Millisecond)
	}

	for _, p := range res.PodStatuses {
		if !strings.HasPrefix(p.Name, "web-") || p.Namespace != ns || len(p.Containers) != 2 || len(p.Conditions) == 0 {
			t.Fatalf("pod status %+v", p)
		}
		for _, ctr := range p.Containers {
			if ctr.State != "running" || !ctr.Ready {
				t.Fatalf("container %+v", ctr)
			}
		}
		for _, ctr := range []string{"web", "sidecar"} {
			tail, ok := res.LogTails[p.Name+"/"+ctr]
			if !ok || !strings.HasPrefix(tail, "Error: ") {
				t.Fatalf("log tail %s/%s = %q (%v)", p.Name, ctr, tail, ok)
			}
		}
	}
	t.Logf("log tails: %v", res.LogTails)
	if len(res.LogTails) != 4 {
		t.Fatalf("log tails = %v", res.LogTails)
	}
	for _, e := range res.Events {
		if e.Reason != nil && *e.Reason == "NotMine" {
			t.Fatalf("unrelated event collected: %+v", e)
		}
		if e.InvolvedObject == "" || e.LastTimestamp == nil || e.Namespace != ns {
			t.Fatalf("event %+v", e)
		}
	}
	// Newest first.
	for i := 1; i < len(res.Events); i++ {
		if *res.Events[i-1].LastTimestamp < *res.Events[i].LastTimestamp {
			t.Fatalf("events not newest first: %s before %s", *res.Events[i-1].LastTimestamp, *res.Events[i].LastTimestamp)
		}
	}
}
