package reconcile

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// pruneCluster is the part of Cluster a deletion marker uses (Mapping, the
// metadata read, Delete) over client-go's metadata fake; any other call
// panics on the nil embedded interface, which proves a deletion marker
// applies and scans nothing.
type pruneCluster struct {
	Cluster
	mapper  meta.RESTMapper
	md      *metadatafake.FakeMetadataClient
	failDel map[string]error // by name

	mu      sync.Mutex
	deleted []string
}

func (c *pruneCluster) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, &kube.UnresolvedKindError{GVK: gvk, Err: err}
	}
	return m, nil
}

func (c *pruneCluster) MetadataClient() metadata.Interface { return c.md }

func (c *pruneCluster) Delete(_ context.Context, gvr schema.GroupVersionResource, ns, name string) error {
	if err := c.failDel[name]; err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted = append(c.deleted, gvr.Resource+" "+ns+"/"+name)
	return nil
}

// TestDeletionMarkerPrunesOnlyOwnObjects runs a deletion marker over an
// inventory whose objects are in every state prune distinguishes, on a
// fake cluster: only this agent's objects of this stack are deleted; what
// could not be read or deleted stays in the inventory for the next run;
// the rest is forgotten.
func TestDeletionMarkerPrunesOnlyOwnObjects(t *testing.T) {
	t.Parallel()
	agentID, stackID := uuid.New(), uuid.New()
	ours := map[string]string{AnnotationOwnerID: agentID.String(), AnnotationStack: stackID.String()}
	now := metav1.Now()

	cases := []struct {
		name string
		kind string // ConfigMap (namespaced), ClusterRole (cluster-scoped) or Widget (no longer served)
		// live is the object in the cluster; nil: not there.
		live       *metav1.ObjectMeta
		readErr    error
		deleteErr  error
		wantDelete bool // a DELETE was sent
		wantPruned bool // reported as pruned
		wantKept   bool // stays in the inventory
	}{
		{name: "ours", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: ours},
			wantDelete: true, wantPruned: true},
		{name: "ours-cluster-scoped", kind: "ClusterRole", live: &metav1.ObjectMeta{Annotations: ours},
			wantDelete: true, wantPruned: true},
		{name: "other-agent", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: map[string]string{
			AnnotationOwnerID: uuid.NewString(), AnnotationStack: stackID.String()}}},
		{name: "other-stack", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: map[string]string{
			AnnotationOwnerID: agentID.String(), AnnotationStack: uuid.NewString()}}},
		{name: "controlled", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: ours,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "p", UID: "u"}}}},
		{name: "terminating", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: ours,
			DeletionTimestamp: &now, Finalizers: []string{"example.com/hold"}}, wantPruned: true},
		{name: "gone", kind: "ConfigMap"},
		{name: "kind-gone", kind: "Widget"},
		{name: "unreadable", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: ours},
			readErr:  apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "unreadable", errors.New("rbac")),
			wantKept: true},
		{name: "undeletable", kind: "ConfigMap", live: &metav1.ObjectMeta{Annotations: ours},
			deleteErr: apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "undeletable", errors.New("rbac")),
			wantKept:  true},
	}

	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}, meta.RESTScopeRoot)
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	var objs []runtime.Object
	inv := NewInventory()
	failDel := map[string]error{}
	for _, c := range cases {
		ref := Ref{Version: "v1", Kind: c.kind, Namespace: "shop", Name: c.name}
		switch c.kind {
		case "ClusterRole":
			ref.Group, ref.Namespace = "rbac.authorization.k8s.io", ""
		case "Widget":
			ref.Group = "example.com"
		}
		inv.Add(ref)
		if c.live != nil {
			om := *c.live
			om.Name, om.Namespace = ref.Name, ref.Namespace
			objs = append(objs, &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: ref.GVK().GroupVersion().String(), Kind: ref.Kind}, ObjectMeta: om})
		}
		if c.deleteErr != nil {
			failDel[c.name] = c.deleteErr
		}
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, objs...)
	for _, c := range cases {
		if c.readErr != nil {
			md.PrependReactor("get", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.(k8stesting.GetAction).GetName() == c.name {
					return true, nil, c.readErr
				}
				return false, nil, nil
			})
		}
	}
	cl := &pruneCluster{mapper: mapper, md: md, failDel: failDel}
	store := NewMemoryInventory()
	ctx := context.Background()
	if err := store.Save(ctx, stackID, inv); err != nil {
		t.Fatal(err)
	}
	r := New(cl, Options{AgentID: agentID, Inventory: store,
		CallRetry: kube.Backoff{Initial: time.Millisecond, Max: time.Millisecond, Deadline: 50 * time.Millisecond}})

	res, err := r.Apply(ctx, stack.DeploymentObject{ID: uuid.New(), StackID: stackID, IsDeletionMarker: true})
	if err == nil || !strings.Contains(err.Error(), "deleting ConfigMap shop/undeletable") {
		t.Errorf("err = %v, want the failed deletion reported", err)
	}
	left, found, lerr := store.Load(ctx, stackID)
	if lerr != nil || !found {
		t.Fatalf("inventory after the marker: found=%v err=%v, want the kept objects", found, lerr)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			deleted := slices.ContainsFunc(cl.deleted, func(s string) bool { return strings.HasSuffix(s, "/"+c.name) })
			if deleted != c.wantDelete {
				t.Errorf("deleted = %v, want %v (deletes: %v)", deleted, c.wantDelete, cl.deleted)
			}
			pruned := slices.ContainsFunc(res.Pruned, func(s string) bool { return strings.HasSuffix(s, "/"+c.name) || strings.HasSuffix(s, " "+c.name) })
			if pruned != c.wantPruned {
				t.Errorf("pruned = %v, want %v (pruned: %v)", pruned, c.wantPruned, res.Pruned)
			}
			kept := slices.ContainsFunc(left.Refs(), func(r Ref) bool { return r.Name == c.name })
			if kept != c.wantKept {
				t.Errorf("kept in the inventory = %v, want %v", kept, c.wantKept)
			}
		})
	}
}

// TestDeletionMarkerDropsEmptiedInventory: once every object is gone, the
// marker removes the stack's inventory instead of storing an empty one.
func TestDeletionMarkerDropsEmptiedInventory(t *testing.T) {
	t.Parallel()
	agentID, stackID := uuid.New(), uuid.New()
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	md := metadatafake.NewSimpleMetadataClient(scheme, &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "a",
			Annotations: map[string]string{AnnotationOwnerID: agentID.String(), AnnotationStack: stackID.String()}}})
	cl := &pruneCluster{mapper: mapper, md: md}
	store := NewMemoryInventory()
	ctx := context.Background()
	if err := store.Save(ctx, stackID, NewInventory(
		Ref{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "a"},
		Ref{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "already-gone"})); err != nil {
		t.Fatal(err)
	}
	res, err := New(cl, Options{AgentID: agentID, Inventory: store}).Apply(ctx,
		stack.DeploymentObject{ID: uuid.New(), StackID: stackID, IsDeletionMarker: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) != 1 || !slices.Equal(cl.deleted, []string{"configmaps shop/a"}) {
		t.Errorf("pruned %v, deleted %v; want only ConfigMap shop/a", res.Pruned, cl.deleted)
	}
	if _, found, _ := store.Load(ctx, stackID); found {
		t.Error("the emptied inventory is still stored")
	}
}
