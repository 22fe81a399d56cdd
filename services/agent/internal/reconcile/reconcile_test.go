package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	kube  *kube.Client
	cs    *kubernetes.Clientset
	rec   *Reconciler
	agent uuid.UUID
	stack uuid.UUID
	ns    string
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
	agentID := uuid.New()
	ns := testenv.NewNamespace(t, env)
	// The inventories live in the test's namespace, deleted with it.
	return &fixture{kube: kc, cs: cs, agent: agentID, stack: uuid.New(), ns: ns,
		rec: New(kc, Options{AgentID: agentID, Inventory: NewConfigMapInventory(kc.Dynamic, ns, agentID)})}
}

func (f *fixture) do(yaml string) stack.DeploymentObject {
	return stack.DeploymentObject{ID: uuid.New(), StackID: f.stack, YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func configMap(ns, name, value string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: %s
  namespace: %s
  annotations:
    team: blue
  labels:
    app: demo
data:
  key: %q
`, name, ns, value)
}

func uniqueNS(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

func (f *fixture) cm(t *testing.T, ns, name string) (*corev1.ConfigMap, error) {
	t.Helper()
	return f.cs.CoreV1().ConfigMaps(ns).Get(context.Background(), name, metav1.GetOptions{})
}

func (f *fixture) mustCMValue(t *testing.T, ns, name, want string) *corev1.ConfigMap {
	t.Helper()
	cm, err := f.cm(t, ns, name)
	if err != nil {
		t.Fatalf("ConfigMap %s/%s: %v", ns, name, err)
	}
	if cm.Data["key"] != want {
		t.Fatalf("ConfigMap %s/%s key = %q, want %q", ns, name, cm.Data["key"], want)
	}
	return cm
}

func (f *fixture) mustGone(t *testing.T, ns, name string) {
	t.Helper()
	if _, err := f.cm(t, ns, name); !apierrors.IsNotFound(err) {
		t.Fatalf("ConfigMap %s/%s still there (err %v)", ns, name, err)
	}
}

// namespaceGoneOrTerminating waits until the namespace is deleted or
// terminating.
func (f *fixture) namespaceGoneOrTerminating(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns, err := f.cs.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && ns.DeletionTimestamp != nil) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s still active (err %v)", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (f *fixture) deleteNamespaceLater(t *testing.T, name string) {
	t.Cleanup(func() {
		_ = f.cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func TestApplyAndUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	do1 := f.do(configMap(f.ns, "app-config", "v1"))
	res, err := f.rec.Apply(ctx, do1)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 1 {
		t.Fatalf("applied = %v", res.Applied)
	}
	cm := f.mustCMValue(t, f.ns, "app-config", "v1")
	wantAnn := map[string]string{
		"team":                       "blue", // user annotations are merged, not wiped
		AnnotationStack:              f.stack.String(),
		AnnotationChecksum:           do1.YAMLChecksum,
		AnnotationDeploymentObjectID: do1.ID.String(),
		AnnotationOwnerID:            f.agent.String(),
	}
	for k, v := range wantAnn {
		if cm.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, cm.Annotations[k], v)
		}
	}
	if cm.Labels[LabelStack] != f.stack.String() || cm.Labels["app"] != "demo" {
		t.Errorf("labels = %v", cm.Labels)
	}
	if _, ok := cm.Annotations["k8s.brokkr.io/last-config-applied"]; ok {
		t.Error("last-config-applied must not be written")
	}
	managers := map[string]bool{}
	for _, mf := range cm.ManagedFields {
		managers[mf.Manager] = true
	}
	if !managers[kube.FieldManager] {
		t.Errorf("field managers = %v, want %s", managers, kube.FieldManager)
	}

	do2 := f.do(configMap(f.ns, "app-config", "v2"))
	if _, err := f.rec.Apply(ctx, do2); err != nil {
		t.Fatal(err)
	}
	cm = f.mustCMValue(t, f.ns, "app-config", "v2")
	if cm.Annotations[AnnotationDeploymentObjectID] != do2.ID.String() {
		t.Errorf("deployment-object-id not updated: %v", cm.Annotations)
	}
}

func TestServerOwnedFieldsAreStripped(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	yaml := fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: exported
  namespace: %s
  resourceVersion: "12345"
  uid: 0b5cbd7e-6d2f-4a43-9c4c-3d0f4e9b3b6f
  creationTimestamp: "2020-01-01T00:00:00Z"
  generation: 7
  managedFields:
  - manager: kubectl
    operation: Update
data:
  key: "x"
status:
  whatever: true
`, f.ns)
	if _, err := f.rec.Apply(ctx, f.do(yaml)); err != nil {
		t.Fatal(err)
	}
	// Applying the same exported YAML again must not conflict on the
	// stale resourceVersion.
	if _, err := f.rec.Apply(ctx, f.do(yaml+"\n")); err != nil {
		t.Fatal(err)
	}
	f.mustCMValue(t, f.ns, "exported", "x")
}

func TestInvalidObjectLeavesStateAndReportsEveryBadObject(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.rec.Apply(ctx, f.do(configMap(f.ns, "keep-me", "original"))); err != nil {
		t.Fatal(err)
	}
	bad := configMap(f.ns, "keep-me", "changed") + fmt.Sprintf(`---
apiVersion: v1
kind: Pod
metadata:
  name: no-spec
  namespace: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: no-spec-either
  namespace: %[1]s
---
apiVersion: example.com/v1
kind: NonexistentKind
metadata:
  name: ghost
  namespace: %[1]s
`, f.ns)
	_, err := f.rec.Apply(ctx, f.do(bad))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a ValidationError", err)
	}
	for _, want := range []string{"Pod " + f.ns + "/no-spec (document 2)", "Deployment " + f.ns + "/no-spec-either (document 3)", "NonexistentKind " + f.ns + "/ghost (document 4)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
	if len(ve.Problems) != 3 {
		t.Errorf("problems = %d, want 3:\n%v", len(ve.Problems), err)
	}
	if !Permanent(err) {
		t.Error("a validation error is permanent")
	}
	f.mustCMValue(t, f.ns, "keep-me", "original")
}

// dryRunOutage is the cluster whose dry-run applies fail with a 503, as an
// API server under load answers for a while; every other call is real.
type dryRunOutage struct{ Cluster }

func (c dryRunOutage) Apply(ctx context.Context, obj *unstructured.Unstructured, opts kube.ApplyOptions) (*unstructured.Unstructured, error) {
	if opts.DryRun {
		return nil, apierrors.NewServiceUnavailable("the server is busy")
	}
	return c.Cluster.Apply(ctx, obj, opts)
}

// An outage during validation is not a validation failure: the error is
// the outage's, not Permanent (the Manager retries at its normal pace
// instead of waiting its slowest), and nothing changed.
func TestOutageDuringValidationIsNotPermanent(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.rec.Apply(ctx, f.do(configMap(f.ns, "keep-me", "original"))); err != nil {
		t.Fatal(err)
	}
	rec := New(dryRunOutage{f.kube}, Options{AgentID: f.agent, Inventory: NewConfigMapInventory(f.kube.Dynamic, f.ns, f.agent),
		CallRetry: kube.Backoff{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, Deadline: 100 * time.Millisecond}})
	_, err := rec.Apply(ctx, f.do(configMap(f.ns, "keep-me", "changed")))
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) || !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("err = %v, want the 503 itself, not a ValidationError", err)
	}
	if Permanent(err) {
		t.Errorf("an outage during validation is not permanent: %v", err)
	}
	f.mustCMValue(t, f.ns, "keep-me", "original")
}

func TestBadYAMLNamesTheDocument(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	yaml := configMap(f.ns, "fine", "x") + "---\nkind: ConfigMap\nmetadata:\n  name: no-version\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"
	_, err := f.rec.Apply(ctx, f.do(yaml))
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want InvalidError", err)
	}
	if !strings.Contains(err.Error(), "document 2: ConfigMap: missing apiVersion") || !strings.Contains(err.Error(), "document 3: ConfigMap: metadata.name is required") {
		t.Fatalf("error = %v", err)
	}
	f.mustGone(t, f.ns, "fine") // nothing is applied from an invalid object

	_, err = f.rec.Apply(ctx, f.do("kind: [unclosed\n"))
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "document 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestPruneByChecksum(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	a := configMap(f.ns, "c1", "a") + "---\n" + configMap(f.ns, "c2", "a")
	if _, err := f.rec.Apply(ctx, f.do(a)); err != nil {
		t.Fatal(err)
	}
	f.mustCMValue(t, f.ns, "c1", "a")
	f.mustCMValue(t, f.ns, "c2", "a")
	res, err := f.rec.Apply(ctx, f.do(configMap(f.ns, "c3", "b")))
	if err != nil {
		t.Fatal(err)
	}
	f.mustGone(t, f.ns, "c1")
	f.mustGone(t, f.ns, "c2")
	f.mustCMValue(t, f.ns, "c3", "b")
	if len(res.Pruned) != 2 {
		t.Errorf("pruned = %v", res.Pruned)
	}
	// The same YAML again (same checksum) prunes nothing.
	res, err = f.rec.Apply(ctx, f.do(configMap(f.ns, "c3", "b")))
	if err != nil || len(res.Pruned) != 0 {
		t.Fatalf("re-apply: pruned %v, err %v", res.Pruned, err)
	}
	f.mustCMValue(t, f.ns, "c3", "b")
}

func TestEmptySetPrunes(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.rec.Apply(ctx, f.do(configMap(f.ns, "doomed", "x"))); err != nil {
		t.Fatal(err)
	}
	res, err := f.rec.Apply(ctx, f.do(""))
	if err != nil {
		t.Fatal(err)
	}
	f.mustGone(t, f.ns, "doomed")
	if len(res.Pruned) != 1 {
		t.Errorf("pruned = %v", res.Pruned)
	}
}

func TestPruneLeavesOthersAlone(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	if _, err := f.rec.Apply(ctx, f.do(configMap(f.ns, "mine", "x"))); err != nil {
		t.Fatal(err)
	}
	// Same stack, applied by another agent: not ours to prune.
	other := New(f.kube, Options{AgentID: uuid.New()})
	if _, err := other.Apply(ctx, f.do(configMap(f.ns, "theirs", "x"))); err != nil {
		t.Fatal(err)
	}
	// Ours but owned by another object: left to the garbage collector.
	owner, err := f.cs.CoreV1().ConfigMaps(f.ns).Get(ctx, "mine", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	child := f.do(configMap(f.ns, "child", "x"))
	plan, err := Prepare(child, f.agent)
	if err != nil {
		t.Fatal(err)
	}
	u := plan.Regular[0].U
	u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "mine", UID: owner.UID}})
	if _, err := f.kube.Apply(ctx, u, kube.ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.Apply(ctx, f.do("")); err != nil {
		t.Fatal(err)
	}
	f.mustGone(t, f.ns, "mine")
	if _, err := f.cm(t, f.ns, "theirs"); err != nil {
		t.Errorf("another agent's object was pruned: %v", err)
	}
	if cm, err := f.cm(t, f.ns, "child"); err == nil && cm.DeletionTimestamp == nil && len(cm.OwnerReferences) == 0 {
		t.Errorf("child lost its owner reference")
	}
}

func TestNamespaceAndConfigMapInOneObject(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	ns := uniqueNS("brokkr-nscm")
	f.deleteNamespaceLater(t, ns)
	yaml := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n", ns) + configMap(ns, "inside", "v")
	if _, err := f.rec.Apply(ctx, f.do(yaml)); err != nil {
		t.Fatal(err)
	}
	f.mustCMValue(t, ns, "inside", "v")
	nsObj, err := f.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels[LabelStack] != f.stack.String() {
		t.Fatalf("namespace: %v %v", nsObj.Labels, err)
	}
}

func invalidPod(ns string) string {
	return fmt.Sprintf("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\n  namespace: %s\n", ns)
}

func TestNamespaceAndInvalidPodRollsBackTheNewNamespace(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	ns := uniqueNS("brokkr-rollback")
	f.deleteNamespaceLater(t, ns)
	yaml := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", ns) + invalidPod(ns)
	_, err := f.rec.Apply(ctx, f.do(yaml))
	if err == nil || !strings.Contains(err.Error(), "Pod "+ns+"/broken") {
		t.Fatalf("err = %v", err)
	}
	f.namespaceGoneOrTerminating(t, ns)
	// The test namespace (pre-existing, not in the YAML) is untouched.
	if n, err := f.cs.CoreV1().Namespaces().Get(ctx, f.ns, metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("unrelated namespace touched: %v", err)
	}
}

func TestExistingNamespaceSurvivesAFailedUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	ns := uniqueNS("brokkr-survive")
	f.deleteNamespaceLater(t, ns)
	nsYAML := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n", ns)
	if _, err := f.rec.Apply(ctx, f.do(nsYAML+configMap(ns, "data", "v1"))); err != nil {
		t.Fatal(err)
	}
	_, err := f.rec.Apply(ctx, f.do(nsYAML+configMap(ns, "data", "v2")+invalidPod(ns)))
	if err == nil {
		t.Fatal("expected a failure")
	}
	time.Sleep(500 * time.Millisecond)
	n, err := f.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("the existing namespace was rolled back: %v", err)
	}
	f.mustCMValue(t, ns, "data", "v1")
}

const crdYAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %[1]ss.%[2]s
spec:
  group: %[2]s
  scope: Namespaced
  names:
    plural: %[1]ss
    singular: %[1]s
    kind: %[3]s
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
`

func TestCRDAndCustomResourceInOneObject(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	group := "t" + uuid.NewString()[:8] + ".brokkr.test"
	crd := fmt.Sprintf(crdYAML, "widget", group, "Widget")
	t.Cleanup(func() {
		_ = f.kube.Delete(context.Background(), kube.CRDResource, "", "widgets."+group)
	})
	cr := fmt.Sprintf("---\napiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: %s\nspec:\n  size: 3\n", group, f.ns)
	// The custom resource comes first in the document: ordering fixes it.
	if _, err := f.rec.Apply(ctx, f.do(cr+"---\n"+crd)); err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	got, err := f.kube.Dynamic.Resource(gvr).Namespace(f.ns).Get(ctx, "w1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAnnotations()[AnnotationOwnerID] != f.agent.String() {
		t.Errorf("annotations = %v", got.GetAnnotations())
	}
	// An invalid custom resource is caught by the dry-run (schema).
	bad := fmt.Sprintf("---\napiVersion: %s/v1\nkind: Widget\nmetadata:\n  name: w2\n  namespace: %s\nspec:\n  size: lots\n", group, f.ns)
	if _, err := f.rec.Apply(ctx, f.do(crd+bad)); err == nil || !strings.Contains(err.Error(), "Widget "+f.ns+"/w2") {
		t.Fatalf("err = %v", err)
	}
}

func TestDeletionMarkerRemovesEverything(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	ns := uniqueNS("brokkr-marker")
	f.deleteNamespaceLater(t, ns)
	yaml := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
`, ns) + configMap(ns, "web-config", "v") + "---\n" + configMap(f.ns, "elsewhere", "v")
	if _, err := f.rec.Apply(ctx, f.do(yaml)); err != nil {
		t.Fatal(err)
	}
	marker := f.do("")
	marker.IsDeletionMarker = true
	marker.YAMLContent = configMap(f.ns, "ignored", "x") // a marker's YAML is ignored
	res, err := f.rec.Apply(ctx, marker)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 4 {
		t.Errorf("pruned = %v", res.Pruned)
	}
	f.mustGone(t, f.ns, "elsewhere")
	f.mustGone(t, f.ns, "ignored")
	f.namespaceGoneOrTerminating(t, ns)
	if _, err := f.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{}); err == nil {
		d, _ := f.cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if d.DeletionTimestamp == nil {
			t.Error("deployment survived the deletion marker")
		}
	}
}

func TestDrift(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	do := f.do(configMap(f.ns, "watched", "desired"))
	if _, err := f.rec.Apply(ctx, do); err != nil {
		t.Fatal(err)
	}
	rep, err := f.rec.Drift(ctx, do, true)
	if err != nil || len(rep.Drifted) != 0 {
		t.Fatalf("fresh object reported drift: %+v %v", rep, err)
	}
	edit := func(v string) {
		cm := f.mustCMValue(t, f.ns, "watched", "desired")
		cm.Data["key"] = v
		if _, err := f.cs.CoreV1().ConfigMaps(f.ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
	}
	edit("hand-edited")
	rep, err = f.rec.Drift(ctx, do, false)
	if err != nil || len(rep.Drifted) != 1 || rep.Corrected {
		t.Fatalf("report mode: %+v %v", rep, err)
	}
	f.mustCMValue(t, f.ns, "watched", "hand-edited")

	rep, err = f.rec.Drift(ctx, do, true)
	if err != nil || !rep.Corrected || !strings.Contains(rep.Message(), "ConfigMap "+f.ns+"/watched (changed)") {
		t.Fatalf("correct mode: %+v %v", rep, err)
	}
	f.mustCMValue(t, f.ns, "watched", "desired")

	if err := f.cs.CoreV1().ConfigMaps(f.ns).Delete(ctx, "watched", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err = f.rec.Drift(ctx, do, true)
	if err != nil || !rep.Corrected || !strings.Contains(rep.Message(), "(missing)") {
		t.Fatalf("missing: %+v %v", rep, err)
	}
	f.mustCMValue(t, f.ns, "watched", "desired")
}
