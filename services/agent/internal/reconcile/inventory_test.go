package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestInventoryMinus(t *testing.T) {
	t.Parallel()
	a := Ref{Version: "v1", Kind: "ConfigMap", Namespace: "n", Name: "a"}
	b := Ref{Version: "v1", Kind: "ConfigMap", Namespace: "n", Name: "b"}
	crd := Ref{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "x.example.com"}
	hpaOld := Ref{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler", Namespace: "n", Name: "h"}
	hpaNew := hpaOld
	hpaNew.Version = "v2"
	tests := []struct {
		name       string
		prev, next []Ref
		want       []Ref
	}{
		{"dropped objects", []Ref{a, b, crd}, []Ref{a}, []Ref{b, crd}},
		{"nothing dropped", []Ref{a}, []Ref{a, b}, nil},
		{"a new API version is the same object", []Ref{hpaOld}, []Ref{hpaNew}, nil},
		{"same name in another namespace is another object", []Ref{a}, []Ref{{Version: "v1", Kind: "ConfigMap", Namespace: "m", Name: "a"}}, []Ref{a}},
		{"everything, for a deletion marker", []Ref{a, b}, nil, []Ref{a, b}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var next Inventory
			if tc.next != nil {
				next = NewInventory(tc.next...)
			}
			if got := NewInventory(tc.prev...).Minus(next); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Minus = %v, want %v", got, tc.want)
			}
		})
	}
}

// requestLog records every request a kube client sends.
type requestLog struct {
	mu   sync.Mutex
	reqs []string // "METHOD path?query"
}

func (l *requestLog) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			l.mu.Lock()
			l.reqs = append(l.reqs, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
			l.mu.Unlock()
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// lists returns the LIST (and WATCH) requests seen since the last reset:
// GETs of a collection (/api/v1/configmaps, /apis/g/v/namespaces/n/jobs),
// not discovery (/api, /apis/g/v) and not single objects.
func (l *requestLog) lists() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.reqs {
		method, rest, _ := strings.Cut(r, " ")
		path, _, _ := strings.Cut(rest, "?")
		if method != http.MethodGet {
			continue
		}
		segs := strings.Split(strings.Trim(path, "/"), "/")
		switch {
		case len(segs) >= 2 && segs[0] == "api":
			segs = segs[2:]
		case len(segs) >= 3 && segs[0] == "apis":
			segs = segs[3:]
		default:
			continue
		}
		if len(segs) >= 3 && segs[0] == "namespaces" {
			segs = segs[2:]
		}
		if len(segs) == 1 {
			out = append(out, r)
		}
	}
	return out
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

// countingReconciler is a fresh agent process: its own kube client (cold
// discovery) whose every request is logged, and the ConfigMap inventory.
func countingReconciler(t *testing.T, agentID uuid.UUID, invNS string) (*Reconciler, *requestLog) {
	t.Helper()
	cfg, err := testenv.ForTest(t).RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	log := &requestLog{}
	kc, err := kube.New(log.wrap(cfg), kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return New(kc, Options{AgentID: agentID, Inventory: NewConfigMapInventory(kc.Dynamic, invNS, agentID)}), log
}

func objectsYAML(ns string, configMaps []string, extra ...string) string {
	var docs []string
	for _, n := range configMaps {
		docs = append(docs, configMap(ns, n, "v"))
	}
	return strings.Join(append(docs, extra...), "---\n")
}

func secretYAML(ns, name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\nstringData: {k: v}\n", name, ns)
}

func serviceAccountYAML(ns, name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: %s}\n", name, ns)
}

func (f *fixture) storedInventory(t *testing.T, invNS string) ([]Ref, bool) {
	t.Helper()
	name := NewConfigMapInventory(f.kube.Dynamic, invNS, f.agent).Name(f.stack)
	cm, err := f.cs.CoreV1().ConfigMaps(invNS).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if cm.Labels[LabelStack] != "" {
		t.Fatalf("inventory %s carries the stack label: pruning would see it", name)
	}
	var refs []Ref
	if err := json.Unmarshal([]byte(cm.Data[inventoryKey]), &refs); err != nil {
		t.Fatal(err)
	}
	return refs, true
}

func refNames(refs []Ref) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	slices.Sort(out)
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestPruneFromThePersistedInventory: a reconcile prunes exactly what the
// previous inventory holds and the new set does not, without one LIST
// request, also in a restarted agent (a new Reconciler and kube client
// reading the stored inventory); a deletion marker deletes the objects and
// the inventory.
func TestPruneFromThePersistedInventory(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	invNS := testenv.NewNamespace(t, testenv.ForTest(t)) // the agent's own namespace
	ns := f.ns

	// Bystanders: an object without the stack label, and one of another
	// stack of the same agent.
	if _, err := f.kube.Apply(ctx, mustObject(t, configMap(ns, "bystander", "x")), kube.ApplyOptions{FieldManager: "test"}); err != nil {
		t.Fatal(err)
	}
	rec, log := countingReconciler(t, f.agent, invNS)
	otherStack := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), YAMLContent: configMap(ns, "other-stack", "x")}
	if _, err := rec.Apply(ctx, otherStack); err != nil {
		t.Fatal(err)
	}

	v1 := objectsYAML(ns, []string{"a", "b", "c"}, secretYAML(ns, "s"), serviceAccountYAML(ns, "sa"))
	if _, err := rec.Apply(ctx, f.do(v1)); err != nil {
		t.Fatal(err)
	}
	if n := rec.FullScans(); n != 1 {
		t.Fatalf("seeding scans = %d, want 1 (shared by both new stacks)", n)
	}
	refs, ok := f.storedInventory(t, invNS)
	if want := []string{"ConfigMap " + ns + "/a", "ConfigMap " + ns + "/b", "ConfigMap " + ns + "/c", "Secret " + ns + "/s", "ServiceAccount " + ns + "/sa"}; !ok || !reflect.DeepEqual(refNames(refs), want) {
		t.Fatalf("stored inventory = %v (found %v), want %v", refNames(refs), ok, want)
	}

	log.reset()
	res, err := rec.Apply(ctx, f.do(objectsYAML(ns, []string{"a", "b"})))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ConfigMap " + ns + "/c", "Secret " + ns + "/s", "ServiceAccount " + ns + "/sa"}; !reflect.DeepEqual(sorted(res.Pruned), want) {
		t.Fatalf("pruned %v, want exactly %v", res.Pruned, want)
	}
	if l := log.lists(); len(l) > 0 {
		t.Fatalf("a reconcile with an inventory listed the cluster: %v", l)
	}
	f.mustGone(t, ns, "c")
	if _, err := f.cs.CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("secret s not pruned: %v", err)
	}

	// A restarted agent: new client, new reconciler, the stored inventory.
	rec2, log2 := countingReconciler(t, f.agent, invNS)
	res, err = rec2.Apply(ctx, f.do(objectsYAML(ns, []string{"a"})))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ConfigMap " + ns + "/b"}; !reflect.DeepEqual(res.Pruned, want) {
		t.Fatalf("after a restart pruned %v, want exactly %v", res.Pruned, want)
	}
	if l := log2.lists(); len(l) > 0 || rec2.FullScans() != 0 {
		t.Fatalf("the restarted agent scanned (%d) or listed: %v", rec2.FullScans(), l)
	}
	f.mustCMValue(t, ns, "a", "v")
	f.mustGone(t, ns, "b")
	for _, name := range []string{"bystander", "other-stack"} {
		if _, err := f.cm(t, ns, name); err != nil {
			t.Fatalf("%s was touched: %v", name, err)
		}
	}

	marker := f.do("")
	marker.IsDeletionMarker = true
	res, err = rec2.Apply(ctx, marker)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ConfigMap " + ns + "/a"}; !reflect.DeepEqual(res.Pruned, want) {
		t.Fatalf("deletion marker pruned %v, want %v", res.Pruned, want)
	}
	if _, found := f.storedInventory(t, invNS); found {
		t.Fatal("the deleted stack's inventory is still stored")
	}
	if l := log2.lists(); len(l) > 0 {
		t.Fatalf("the deletion marker listed the cluster: %v", l)
	}
}

// TestInventorySeededOnceAfterAnUpgrade: objects applied by an agent
// without inventories are found by one scan, stored, and pruned when
// dropped; later reconciles, and a restarted agent, never scan again.
func TestInventorySeededOnceAfterAnUpgrade(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	invNS := testenv.NewNamespace(t, testenv.ForTest(t))
	ns := f.ns

	// The previous agent version: same agent id, no stored inventory.
	old := New(f.kube, Options{AgentID: f.agent})
	if _, err := old.Apply(ctx, f.do(objectsYAML(ns, []string{"keep", "drop"}, secretYAML(ns, "drop-secret")))); err != nil {
		t.Fatal(err)
	}

	rec, log := countingReconciler(t, f.agent, invNS)
	res, err := rec.Apply(ctx, f.do(objectsYAML(ns, []string{"keep"})))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ConfigMap " + ns + "/drop", "Secret " + ns + "/drop-secret"}; !reflect.DeepEqual(sorted(res.Pruned), want) {
		t.Fatalf("pruned %v, want %v", res.Pruned, want)
	}
	if rec.FullScans() != 1 || len(log.lists()) == 0 {
		t.Fatalf("seeding: %d scans, %d lists; want one scan", rec.FullScans(), len(log.lists()))
	}
	if refs, ok := f.storedInventory(t, invNS); !ok || !reflect.DeepEqual(refNames(refs), []string{"ConfigMap " + ns + "/keep"}) {
		t.Fatalf("stored inventory = %v (found %v)", refNames(refs), ok)
	}

	log.reset()
	for i := range 3 {
		if _, err := rec.Apply(ctx, f.do(objectsYAML(ns, []string{"keep", fmt.Sprint("n", i)}))); err != nil {
			t.Fatal(err)
		}
	}
	if rec.FullScans() != 1 || len(log.lists()) > 0 {
		t.Fatalf("after seeding: %d scans, lists %v", rec.FullScans(), log.lists())
	}
	f.mustGone(t, ns, "n0")
	f.mustGone(t, ns, "n1")
	f.mustCMValue(t, ns, "n2", "v")

	rec2, log2 := countingReconciler(t, f.agent, invNS)
	res, err = rec2.Apply(ctx, f.do(""))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ConfigMap " + ns + "/keep", "ConfigMap " + ns + "/n2"}; !reflect.DeepEqual(sorted(res.Pruned), want) {
		t.Fatalf("restarted agent pruned %v, want %v", res.Pruned, want)
	}
	if rec2.FullScans() != 0 || len(log2.lists()) > 0 {
		t.Fatalf("restarted agent: %d scans, lists %v", rec2.FullScans(), log2.lists())
	}
}

// TestInterruptedRunLeavesNoUnnamedObject: objects join the stored
// inventory before they are applied, so a run that fails after applying
// some of them (a CRD is kept when a later object is rejected) still lets
// the next run prune them.
func TestInterruptedRunLeavesNoUnnamedObject(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	ns := f.ns
	group := "inv" + uuid.NewString()[:8] + ".brokkr.io"
	crdName := "gadgets." + group
	t.Cleanup(func() { _ = f.kube.Delete(context.Background(), kube.CRDResource, "", crdName) })
	bad := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s}
spec:
  group: %[2]s
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: %[3]s}
spec: {containers: [{name: c}]}
`, crdName, group, ns)
	if _, err := f.rec.Apply(ctx, f.do(bad)); err == nil {
		t.Fatal("want a validation error")
	}
	if _, err := f.kube.Dynamic.Resource(kube.CRDResource).Get(ctx, crdName, metav1.GetOptions{}); err != nil {
		t.Fatalf("the CRD should be kept after the failed run: %v", err)
	}
	refs, ok := f.storedInventory(t, ns)
	if !ok || !slices.Contains(refNames(refs), "CustomResourceDefinition "+crdName) {
		t.Fatalf("stored inventory after the failed run = %v", refNames(refs))
	}
	res, err := f.rec.Apply(ctx, f.do(configMap(ns, "fine", "v")))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CustomResourceDefinition " + crdName}; !reflect.DeepEqual(res.Pruned, want) {
		t.Fatalf("pruned %v, want %v", res.Pruned, want)
	}
	refs, _ = f.storedInventory(t, ns)
	if !reflect.DeepEqual(refNames(refs), []string{"ConfigMap " + ns + "/fine"}) {
		t.Fatalf("stored inventory = %v", refNames(refs))
	}
}

func mustObject(t *testing.T, yaml string) *unstructured.Unstructured {
	t.Helper()
	plan, err := Prepare(stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), YAMLContent: yaml}, uuid.New())
	if err != nil {
		t.Fatal(err)
	}
	u := plan.All()[0].U
	// Not stamped: a bystander carries no Brokkr metadata.
	u.SetLabels(nil)
	u.SetAnnotations(nil)
	return u
}
