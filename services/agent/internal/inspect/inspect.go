// Package inspect reads back what a deployment object put into the cluster: the
// live version of each applied object, and the Pods of its workloads, found
// through each workload's own spec.selector (Deployment, StatefulSet,
// DaemonSet, ReplicaSet, Job), never through a label stamped on pod templates
// (docs/compatibility.md#tracking-metadata). Deployment health and diagnostics
// build on it.
package inspect

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Target is one object of a deployment object, resolved against the
// cluster's API.
type Target struct {
	Kind       string
	Group      string
	Namespace  string // "" for cluster-scoped objects
	Name       string
	GVR        schema.GroupVersionResource
	Namespaced bool
	// Err is set when the kind could not be resolved (the API is gone).
	Err error
}

// Key is "Kind ns/name" (or "Kind name").
func (t Target) Key() string { return key(t.Group, t.Kind, t.Namespace, t.Name) }

func key(group, kind, ns, name string) string {
	gk := kind
	if group != "" {
		gk = kind + "." + group
	}
	if ns == "" {
		return gk + " " + name
	}
	return gk + " " + ns + "/" + name
}

// Plan is a deployment object resolved for inspection.
type Plan struct {
	DeploymentObject stack.DeploymentObject
	Targets          []Target
}

// Namespaces are the namespaces the deployment object touches: those of its
// namespaced objects and the Namespaces it creates, sorted.
func (p Plan) Namespaces() []string {
	set := map[string]bool{}
	for _, t := range p.Targets {
		switch {
		case t.Namespace != "":
			set[t.Namespace] = true
		case t.Kind == "Namespace" && t.Group == "":
			set[t.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// Cluster is what the inspector needs from the Kubernetes client
// (*kube.Client in the agent; tests may fake it).
type Cluster interface {
	Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error)
	// DynamicClient and MetadataClient list live objects (the metadata
	// API for kinds without a status worth reading).
	DynamicClient() dynamic.Interface
	MetadataClient() metadata.Interface
	// Config builds the typed client for Pods, events and logs.
	Config() *rest.Config
}

// Inspector reads objects and pods.
type Inspector struct {
	Kube  Cluster
	Typed kubernetes.Interface
}

// New returns an inspector over k.
func New(k Cluster) (*Inspector, error) {
	cs, err := kubernetes.NewForConfig(k.Config())
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Inspector{Kube: k, Typed: cs}, nil
}

// Resolve parses the deployment object (as the reconciler does) and maps
// each object to its resource. Namespaced objects without a namespace land
// in "default", as the reconciler applies them.
func (in *Inspector) Resolve(do stack.DeploymentObject) (Plan, error) {
	p, err := reconcile.Prepare(do, uuid.Nil)
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{DeploymentObject: do}
	for _, o := range p.All() {
		u := o.U
		gvk := u.GroupVersionKind()
		t := Target{Kind: gvk.Kind, Group: gvk.Group, Namespace: u.GetNamespace(), Name: u.GetName()}
		m, err := in.Kube.Mapping(gvk)
		if err != nil {
			t.Err = err
			plan.Targets = append(plan.Targets, t)
			continue
		}
		t.GVR = m.Resource
		t.Namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		if !t.Namespaced {
			t.Namespace = ""
		} else if t.Namespace == "" {
			t.Namespace = kube.DefaultNamespace
		}
		plan.Targets = append(plan.Targets, t)
	}
	return plan, nil
}

// metadataOnly are kinds without a status worth reading: only their
// existence is checked, through the cheaper metadata API.
var metadataOnly = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}: true, {Kind: "Secret"}: true, {Kind: "ServiceAccount"}: true,
	{Kind: "Endpoints"}: true, {Kind: "LimitRange"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:              true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:               true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:              true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                  true,
	{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:               true,
}

// Live is what Fetch found for one target.
type Live struct {
	Target Target
	// Object is the live object; for metadata-only kinds it carries only
	// apiVersion, kind and metadata. Nil when Missing or Err.
	Object  *unstructured.Unstructured
	Missing bool
	Err     error
	// MetadataOnly: the kind has no status worth reading (ConfigMap,
	// Secret, RBAC, …); only its existence was checked.
	MetadataOnly bool
}

type group struct {
	gvr        schema.GroupVersionResource
	namespace  string
	metaOnly   bool
	targetIdxs []int
}

// Fetch reads the live version of every target: one LIST per resource type
// and namespace, with the stack label as a server-side selector (every
// applied object carries it), so a thousand ConfigMaps cost one call.
func (in *Inspector) Fetch(ctx context.Context, p Plan) []Live {
	out := make([]Live, len(p.Targets))
	groups := map[string]*group{}
	var order []string
	for i, t := range p.Targets {
		out[i].Target = t
		if t.Err != nil {
			out[i].Err = t.Err
			continue
		}
		k := t.GVR.String() + "|" + t.Namespace
		g := groups[k]
		if g == nil {
			g = &group{gvr: t.GVR, namespace: t.Namespace, metaOnly: metadataOnly[schema.GroupKind{Group: t.Group, Kind: t.Kind}]}
			groups[k] = g
			order = append(order, k)
		}
		g.targetIdxs = append(g.targetIdxs, i)
	}
	selector := reconcile.LabelStack + "=" + p.DeploymentObject.StackID.String()
	for _, k := range order {
		g := groups[k]
		found, err := in.list(ctx, g, selector)
		for _, i := range g.targetIdxs {
			out[i].MetadataOnly = g.metaOnly
			switch {
			case err != nil:
				out[i].Err = err
			case found[p.Targets[i].Name] != nil:
				out[i].Object = found[p.Targets[i].Name]
			default:
				out[i].Missing = true
			}
		}
	}
	return out
}

func (in *Inspector) list(ctx context.Context, g *group, selector string) (map[string]*unstructured.Unstructured, error) {
	found := map[string]*unstructured.Unstructured{}
	opts := metav1.ListOptions{LabelSelector: selector}
	for {
		var cont string
		var err error
		if g.metaOnly {
			cont, err = in.listMetadata(ctx, g, opts, found)
		} else {
			cont, err = in.listObjects(ctx, g, opts, found)
		}
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", g.gvr.Resource, err)
		}
		if cont == "" {
			return found, nil
		}
		opts.Continue = cont
	}
}

// scoped is the resource client for g: narrowed to its namespace, or
// cluster-wide for cluster-scoped kinds. It serves the dynamic and the
// metadata client alike.
func scoped[R any](g *group, all R, namespace func(string) R) R {
	if g.namespace == "" {
		return all
	}
	return namespace(g.namespace)
}

// listObjects adds one page of g's objects to found and returns the
// continue token.
func (in *Inspector) listObjects(ctx context.Context, g *group, opts metav1.ListOptions, found map[string]*unstructured.Unstructured) (string, error) {
	all := in.Kube.DynamicClient().Resource(g.gvr)
	list, err := scoped[dynamic.ResourceInterface](g, all, all.Namespace).List(ctx, opts)
	if err != nil {
		return "", err
	}
	for i := range list.Items {
		found[list.Items[i].GetName()] = &list.Items[i]
	}
	return list.GetContinue(), nil
}

// listMetadata is listObjects for the kinds read as metadata only: each
// object comes back as an Unstructured holding just its identity, labels,
// annotations and deletion timestamp.
func (in *Inspector) listMetadata(ctx context.Context, g *group, opts metav1.ListOptions, found map[string]*unstructured.Unstructured) (string, error) {
	all := in.Kube.MetadataClient().Resource(g.gvr)
	list, err := scoped[metadata.ResourceInterface](g, all, all.Namespace).List(ctx, opts)
	if err != nil {
		return "", err
	}
	for i := range list.Items {
		m := &list.Items[i]
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetAPIVersion(m.APIVersion)
		u.SetKind(m.Kind)
		u.SetName(m.Name)
		u.SetNamespace(m.Namespace)
		u.SetLabels(m.Labels)
		u.SetAnnotations(m.Annotations)
		if m.DeletionTimestamp != nil {
			u.SetDeletionTimestamp(m.DeletionTimestamp)
		}
		found[m.Name] = u
	}
	return list.Continue, nil
}

// workloadKinds are the kinds whose Pods are found through spec.selector.
var workloadKinds = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "batch", Kind: "Job"}:        true,
}

// IsWorkload reports whether t's Pods are found through its selector.
func IsWorkload(t Target) bool { return workloadKinds[schema.GroupKind{Group: t.Group, Kind: t.Kind}] }

// IsPod reports whether t is a bare Pod.
func IsPod(t Target) bool { return t.Group == "" && t.Kind == "Pod" }

// PodSet is the Pods of a deployment object.
type PodSet struct {
	Pods []corev1.Pod
	// ByWorkload counts the Pods found per workload (Target.Key()).
	ByWorkload map[string]int
	// Errs lists selectors that could not be read or listed.
	Errs []error
}

// Pods finds the Pods of the live workloads (through their own
// spec.selector, in their namespace) plus the bare Pods the deployment
// object declares. Each Pod appears once.
func (in *Inspector) Pods(ctx context.Context, live []Live) PodSet {
	ps := PodSet{ByWorkload: map[string]int{}}
	seen := map[string]bool{}
	add := func(p corev1.Pod) bool {
		k := p.Namespace + "/" + p.Name
		if seen[k] {
			return false
		}
		seen[k] = true
		ps.Pods = append(ps.Pods, p)
		return true
	}
	for _, l := range live {
		if l.Object == nil {
			continue
		}
		switch {
		case IsPod(l.Target):
			var p corev1.Pod
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(l.Object.Object, &p); err != nil {
				ps.Errs = append(ps.Errs, fmt.Errorf("%s: %w", l.Target.Key(), err))
				continue
			}
			add(p)
		case IsWorkload(l.Target):
			sel, err := selectorOf(l.Object)
			if err != nil {
				ps.Errs = append(ps.Errs, fmt.Errorf("%s: %w", l.Target.Key(), err))
				continue
			}
			if sel == nil || sel.Empty() {
				continue // none, or one that would match every pod of the namespace
			}
			list, err := in.Typed.CoreV1().Pods(l.Object.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
			if err != nil {
				ps.Errs = append(ps.Errs, fmt.Errorf("listing the pods of %s: %w", l.Target.Key(), err))
				continue
			}
			n := 0
			for _, p := range list.Items {
				add(p)
				n++
			}
			ps.ByWorkload[l.Target.Key()] = n
		}
	}
	sort.SliceStable(ps.Pods, func(i, j int) bool {
		if ps.Pods[i].Namespace != ps.Pods[j].Namespace {
			return ps.Pods[i].Namespace < ps.Pods[j].Namespace
		}
		return ps.Pods[i].Name < ps.Pods[j].Name
	})
	return ps
}

func selectorOf(u *unstructured.Unstructured) (labels.Selector, error) {
	raw, ok, err := unstructured.NestedMap(u.Object, "spec", "selector")
	if err != nil {
		return nil, fmt.Errorf("spec.selector: %w", err)
	}
	if !ok {
		return nil, nil
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, fmt.Errorf("spec.selector: %w", err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return nil, fmt.Errorf("spec.selector: %w", err)
	}
	return sel, nil
}
