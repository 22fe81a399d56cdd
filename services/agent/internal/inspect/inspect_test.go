package inspect_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// fakeCluster is inspect.Cluster over client-go's fakes and a static
// RESTMapper: the kinds it maps are the cluster's API.
type fakeCluster struct {
	mapper meta.RESTMapper
	dyn    dynamic.Interface
	md     metadata.Interface
}

func (f fakeCluster) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	return f.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}
func (f fakeCluster) DynamicClient() dynamic.Interface   { return f.dyn }
func (f fakeCluster) MetadataClient() metadata.Interface { return f.md }
func (f fakeCluster) Config() *rest.Config               { return &rest.Config{} }

var (
	deployGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	cmGVK     = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	nsGVK     = schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}
	deployGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	nsGVR     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// newInspector builds an inspector over a cluster that serves Deployments,
// ConfigMaps and Namespaces and holds objs (Deployments through the
// dynamic client, ConfigMaps through the metadata client) and pods.
func newInspector(t *testing.T, deployments []*unstructured.Unstructured, configMaps []*metav1.PartialObjectMetadata, pods ...runtime.Object) *inspect.Inspector {
	t.Helper()
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(deployGVK, meta.RESTScopeNamespace)
	mapper.Add(cmGVK, meta.RESTScopeNamespace)
	mapper.Add(nsGVK, meta.RESTScopeRoot)

	var dynObjs []runtime.Object
	for _, d := range deployments {
		dynObjs = append(dynObjs, d)
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{deployGVR: "DeploymentList", nsGVR: "NamespaceList"}, dynObjs...)

	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var mdObjs []runtime.Object
	for _, c := range configMaps {
		mdObjs = append(mdObjs, c)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, mdObjs...)
	return &inspect.Inspector{Kube: fakeCluster{mapper: mapper, dyn: dyn, md: md}, Typed: kubefake.NewClientset(pods...)}
}

func deployment(ns, name string, stackID uuid.UUID, matchLabels map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"selector": map[string]any{"matchLabels": matchLabels}},
	}}
	u.SetGroupVersionKind(deployGVK)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(map[string]string{reconcile.LabelStack: stackID.String()})
	return u
}

func configMap(ns, name string, stackID uuid.UUID) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{reconcile.LabelStack: stackID.String()}},
	}
}

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

const manifest = `apiVersion: v1
kind: Namespace
metadata: {name: shop, namespace: ignored}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gone, namespace: shop}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop}
`

// TestResolveFetchPods follows one deployment object through Resolve,
// Fetch and Pods on a fake cluster: where each object lands, which client
// reads it, what is missing or unresolved, and which Pods belong to it.
func TestResolveFetchPods(t *testing.T) {
	stackID, otherStack := uuid.New(), uuid.New()
	in := newInspector(t,
		[]*unstructured.Unstructured{deployment("shop", "web", stackID, map[string]any{"app": "web"})},
		[]*metav1.PartialObjectMetadata{
			configMap("default", "settings", stackID),
			configMap("shop", "gone", otherStack), // same name, another stack: not ours
		},
		pod("shop", "web-1", map[string]string{"app": "web"}),
		pod("shop", "web-2", map[string]string{"app": "web"}),
		pod("shop", "db-1", map[string]string{"app": "db"}),
		pod("other", "web-x", map[string]string{"app": "web"}), // the workload's selector is namespaced
	)
	plan, err := in.Resolve(stack.DeploymentObject{ID: uuid.New(), StackID: stackID, YAMLContent: manifest})
	if err != nil {
		t.Fatal(err)
	}

	type want struct {
		namespace, name string
		namespaced      bool
		unresolved      bool
		present         bool
		metadataOnly    bool
	}
	wants := map[string]want{
		"Namespace":  {namespace: "", name: "shop", present: false},
		"Deployment": {namespace: "shop", name: "web", namespaced: true, present: true},
		"ConfigMap settings": {namespace: "default", name: "settings", namespaced: true, present: true,
			metadataOnly: true},
		"ConfigMap gone": {namespace: "shop", name: "gone", namespaced: true, metadataOnly: true},
		"Widget":         {namespace: "shop", name: "w", unresolved: true},
	}
	if len(plan.Targets) != len(wants) {
		t.Fatalf("targets = %d, want %d: %+v", len(plan.Targets), len(wants), plan.Targets)
	}
	if got := strings.Join(plan.Namespaces(), ","); got != "default,shop" {
		t.Errorf("Namespaces() = %q, want default,shop", got)
	}

	live := in.Fetch(context.Background(), plan)
	for _, l := range live {
		name := l.Target.Kind
		if name == "ConfigMap" {
			name += " " + l.Target.Name
		}
		t.Run(name, func(t *testing.T) {
			w, ok := wants[name]
			if !ok {
				t.Fatalf("unexpected target %s", l.Target.Key())
			}
			if l.Target.Namespace != w.namespace || l.Target.Name != w.name || l.Target.Namespaced != w.namespaced {
				t.Errorf("target = %s/%s namespaced=%v, want %s/%s namespaced=%v",
					l.Target.Namespace, l.Target.Name, l.Target.Namespaced, w.namespace, w.name, w.namespaced)
			}
			if w.unresolved {
				if l.Target.Err == nil || l.Err == nil || l.Object != nil {
					t.Errorf("unresolved kind: Target.Err=%v Err=%v Object=%v", l.Target.Err, l.Err, l.Object)
				}
				return
			}
			if l.Err != nil {
				t.Fatalf("Err = %v", l.Err)
			}
			if l.MetadataOnly != w.metadataOnly {
				t.Errorf("MetadataOnly = %v, want %v", l.MetadataOnly, w.metadataOnly)
			}
			if got := l.Object != nil; got != w.present || l.Missing == w.present {
				t.Fatalf("present = %v, Missing = %v; want present %v", got, l.Missing, w.present)
			}
			if !w.present {
				return
			}
			if l.Object.GetName() != w.name || l.Object.GetNamespace() != w.namespace {
				t.Errorf("object = %s/%s", l.Object.GetNamespace(), l.Object.GetName())
			}
			_, hasSpec := l.Object.Object["spec"]
			if hasSpec == w.metadataOnly {
				t.Errorf("spec read = %v for a metadata-only=%v kind", hasSpec, w.metadataOnly)
			}
		})
	}

	ps := in.Pods(context.Background(), live)
	var names []string
	for _, p := range ps.Pods {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	if got := strings.Join(names, ","); got != "shop/web-1,shop/web-2" {
		t.Errorf("pods = %s, want shop/web-1,shop/web-2", got)
	}
	if n := ps.ByWorkload["Deployment.apps shop/web"]; n != 2 {
		t.Errorf("ByWorkload = %v, want 2 for the Deployment", ps.ByWorkload)
	}
	if len(ps.Errs) != 0 {
		t.Errorf("Errs = %v", ps.Errs)
	}
}

// TestFetchListError: a type that cannot be listed marks each of its
// targets with the error, and the other types are still read.
func TestFetchListError(t *testing.T) {
	stackID := uuid.New()
	in := newInspector(t, []*unstructured.Unstructured{deployment("shop", "web", stackID, map[string]any{"app": "web"})}, nil)
	fc := in.Kube.(fakeCluster)
	boom := errors.New("apiserver unavailable")
	md := fc.md.(*metadatafake.FakeMetadataClient)
	md.PrependReactor("list", "configmaps", func(action k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, boom
	})
	plan, err := in.Resolve(stack.DeploymentObject{ID: uuid.New(), StackID: stackID, YAMLContent: manifest})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range in.Fetch(context.Background(), plan) {
		switch {
		case l.Target.Kind == "ConfigMap":
			if !errors.Is(l.Err, boom) || l.Missing || l.Object != nil {
				t.Errorf("%s: Err=%v Missing=%v, want the list error", l.Target.Key(), l.Err, l.Missing)
			}
		case l.Target.Kind == "Deployment":
			if l.Err != nil || l.Object == nil {
				t.Errorf("%s: Err=%v Object=%v, want it read", l.Target.Key(), l.Err, l.Object)
			}
		}
	}
}
