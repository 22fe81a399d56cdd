package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Options configure a Reconciler.
type Options struct {
	// AgentID is stamped as brokkr.io/owner-id and limits pruning to this
	// agent's objects.
	AgentID uuid.UUID
	// CallRetry retries single API calls that failed with a retryable error
	// (429, 5xx, timeouts). The zero value is 0.5 s initial, 10 s max, 30 s
	// budget per call: the deployment object as a whole is retried later by
	// the Manager, so a call need not wait out a long outage.
	CallRetry kube.Backoff
	// CRDTimeout bounds the wait for CRDs to become Established (60 s).
	CRDTimeout time.Duration
	// Inventory keeps each stack's applied objects; pruning deletes what
	// the previous inventory holds and the new apply did not. Nil keeps
	// them in memory (tests); the agent passes a ConfigMapInventory, so
	// they survive restarts.
	Inventory InventoryStore
	Logger    *slog.Logger
}

// Cluster is what the reconciler needs from the Kubernetes client
// (*kube.Client in the agent; tests may fake it).
type Cluster interface {
	// Target resolves obj's resource and normalises its namespace.
	Target(obj *unstructured.Unstructured) (dynamic.ResourceInterface, *meta.RESTMapping, error)
	// Mapping resolves a kind to its resource and scope.
	Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error)
	Apply(ctx context.Context, obj *unstructured.Unstructured, opts kube.ApplyOptions) (*unstructured.Unstructured, error)
	Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error)
	Exists(ctx context.Context, obj *unstructured.Unstructured) (bool, error)
	Delete(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) error
	DeleteObject(ctx context.Context, obj *unstructured.Unstructured) error
	WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error
	// MetadataClient reads the objects a prune is about to delete.
	MetadataClient() metadata.Interface
	Scanner
}

// Scanner is the seeding scan's part of Cluster: list the metadata of
// every listable type with a selector.
type Scanner interface {
	Listable(ctx context.Context) ([]kube.Resource, error)
	ListMetadata(ctx context.Context, resources []kube.Resource, selector string) ([]kube.Item, []kube.SkippedError, error)
}

// Reconciler applies deployment objects to one cluster.
type Reconciler struct {
	kube  Cluster
	opts  Options
	log   *slog.Logger
	store InventoryStore

	// The seeding scan: stacks without a stored inventory (reconciled
	// before inventories existed) are seeded from one label-selected scan
	// of the cluster, shared by every such stack of this process.
	scanMu  sync.Mutex
	scanned map[uuid.UUID][]Ref // nil: no scan yet; a stack's entry is consumed when seeded
	scans   int
}

// New returns a reconciler.
func New(k Cluster, opts Options) *Reconciler {
	if opts.CallRetry == (kube.Backoff{}) {
		opts.CallRetry = kube.Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Second, Deadline: 30 * time.Second}
	}
	if opts.CRDTimeout <= 0 {
		opts.CRDTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Inventory == nil {
		opts.Inventory = NewMemoryInventory()
	}
	return &Reconciler{kube: k, opts: opts, log: opts.Logger, store: opts.Inventory}
}

// AgentID is the owner id this reconciler stamps.
func (r *Reconciler) AgentID() uuid.UUID { return r.opts.AgentID }

// Result describes a successful reconcile.
type Result struct {
	Applied []string
	Pruned  []string
}

// Message summarises the result for the SUCCESS event.
func (res Result) Message(marker bool) string {
	if marker {
		return fmt.Sprintf("deletion marker processed: %d object(s) deleted", len(res.Pruned))
	}
	msg := fmt.Sprintf("applied %d object(s)", len(res.Applied))
	if len(res.Pruned) > 0 {
		msg += fmt.Sprintf(", pruned %d", len(res.Pruned))
	}
	return msg
}

// ValidationError lists every object the dry-run rejected.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	return "validation failed:\n" + strings.Join(e.Problems, "\n")
}

// Permanent reports whether err cannot go away by retrying the same YAML
// against an unchanged cluster (bad YAML, objects the API rejects). The
// Manager still retries those, but at its slowest pace.
func Permanent(err error) bool {
	var ie *InvalidError
	var ve *ValidationError
	if errors.As(err, &ie) {
		return true
	}
	if errors.As(err, &ve) {
		return true
	}
	return !kube.IsRetryable(err) && (apierrors.IsInvalid(err) || apierrors.IsBadRequest(err))
}

// Apply reconciles one deployment object. A deletion marker deletes every
// object this agent applied for the stack, whatever YAML it carries.
func (r *Reconciler) Apply(ctx context.Context, do stack.DeploymentObject) (Result, error) {
	if do.IsDeletionMarker {
		inv, err := r.inventory(ctx, do.StackID)
		if err != nil {
			return Result{}, err
		}
		pruned, err := r.prune(ctx, do.StackID, inv, nil)
		return Result{Pruned: pruned}, err
	}
	plan, err := Prepare(do, r.opts.AgentID)
	if err != nil {
		return Result{}, err
	}
	return r.ApplyPlan(ctx, plan)
}

func (r *Reconciler) call(ctx context.Context, fn func(context.Context) error) error {
	return kube.Retry(ctx, r.opts.CallRetry, fn)
}

func (r *Reconciler) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	var out *unstructured.Unstructured
	err := r.call(ctx, func(ctx context.Context) error {
		var err error
		out, err = r.kube.Apply(ctx, u, kube.ApplyOptions{Force: true, DryRun: dryRun})
		return err
	})
	return out, err
}

// ApplyPlan runs the documented pipeline: Namespaces and CRDs, wait for the
// CRDs, dry-run everything else collecting every error, apply, prune. On a
// failure before pruning the namespaces this run created are deleted again.
func (r *Reconciler) ApplyPlan(ctx context.Context, plan Plan) (res Result, err error) {
	var created []*unstructured.Unstructured
	defer func() {
		if err != nil && len(created) > 0 {
			r.rollback(context.WithoutCancel(ctx), created)
		}
	}()

	inv, err := r.inventory(ctx, plan.StackID)
	if err != nil {
		return res, err
	}
	applied := NewInventory()
	// Each phase's objects join the stored inventory before they are
	// applied, so a run cut short (an error, a crash) never leaves an
	// object behind that no inventory names.
	if err := r.remember(ctx, plan.StackID, inv, r.refs(plan.Priority)); err != nil {
		return res, err
	}
	var crds []string
	for _, o := range plan.Priority {
		u := o.U.DeepCopy()
		if isNamespace(u) {
			var exists bool
			if err := r.call(ctx, func(ctx context.Context) error {
				var err error
				exists, err = r.kube.Exists(ctx, u)
				return err
			}); err != nil {
				return res, fmt.Errorf("%s: %w", o.Describe(), err)
			}
			if !exists {
				created = append(created, u)
			}
		}
		if _, err := r.apply(ctx, u, false); err != nil {
			return res, fmt.Errorf("applying %s: %w", o.Describe(), err)
		}
		applied.Add(RefOf(u))
		res.Applied = append(res.Applied, describe(u))
		if isCRD(u) {
			crds = append(crds, u.GetName())
		}
	}
	if len(crds) > 0 {
		if err := r.kube.WaitEstablished(ctx, crds, r.opts.CRDTimeout); err != nil {
			return res, err
		}
	}

	// Validate everything before changing anything else, so a bad update
	// leaves the previous state intact; report every bad object.
	var problems []string
	var late []Object // bindings of roles this plan creates: applied last
	var now []Object
	for _, o := range plan.Regular {
		if _, err := r.apply(ctx, o.U.DeepCopy(), true); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if kube.IsRetryable(err) {
				// The API did not judge the object (429, 5xx, a timeout
				// that outlasted CallRetry): not a validation problem, so
				// not Permanent; the Manager retries at its normal pace
				// instead of its slowest.
				return res, fmt.Errorf("validating %s: %w", o.Describe(), err)
			}
			if apierrors.IsNotFound(err) && bindsPlannedRole(plan, o.U) {
				// Without the "bind" verb the API checks a binding against
				// its role, which a dry-run did not create; the real apply
				// runs after the role exists.
				late = append(late, o)
				continue
			}
			problems = append(problems, fmt.Sprintf("%s: %s", o.Describe(), errorText(err)))
			continue
		}
		now = append(now, o)
	}
	if len(problems) > 0 {
		return res, &ValidationError{Problems: problems}
	}

	regular := append(now, late...)
	if err := r.remember(ctx, plan.StackID, inv, r.refs(regular)); err != nil {
		return res, err
	}
	for _, o := range regular {
		u := o.U.DeepCopy()
		if _, err := r.apply(ctx, u, false); err != nil {
			return res, fmt.Errorf("applying %s: %w", o.Describe(), err)
		}
		applied.Add(RefOf(u))
		res.Applied = append(res.Applied, describe(u))
	}
	created = nil // applied: nothing to roll back any more

	pruned, err := r.prune(ctx, plan.StackID, inv, applied)
	res.Pruned = pruned
	return res, err
}

// bindsPlannedRole reports whether u is a RoleBinding or ClusterRoleBinding
// whose role is declared in the same plan.
func bindsPlannedRole(plan Plan, u *unstructured.Unstructured) bool {
	if !strings.HasPrefix(u.GetAPIVersion(), "rbac.authorization.k8s.io/") {
		return false
	}
	kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind")
	name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
	switch {
	case u.GetKind() == "RoleBinding" && (kind == "Role" || kind == "ClusterRole"):
	case u.GetKind() == "ClusterRoleBinding" && kind == "ClusterRole":
	default:
		return false
	}
	ns := u.GetNamespace()
	if ns == "" {
		ns = kube.DefaultNamespace
	}
	for _, o := range plan.Regular {
		r := o.U
		if r.GetKind() != kind || r.GetName() != name || !strings.HasPrefix(r.GetAPIVersion(), "rbac.authorization.k8s.io/") {
			continue
		}
		rns := r.GetNamespace()
		if rns == "" {
			rns = kube.DefaultNamespace
		}
		if kind == "ClusterRole" || rns == ns {
			return true
		}
	}
	return false
}

func errorText(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Message != "" {
		return st.Status().Message
	}
	return err.Error()
}

// rollback deletes the namespaces this run created (best effort).
func (r *Reconciler) rollback(ctx context.Context, created []*unstructured.Unstructured) {
	for _, u := range created {
		err := r.call(ctx, func(ctx context.Context) error { return r.kube.DeleteObject(ctx, u) })
		if err != nil {
			r.log.Warn("rollback: deleting a namespace created by the failed run", "namespace", u.GetName(), "error", err)
			continue
		}
		r.log.Info("rollback: deleted a namespace created by the failed run", "namespace", u.GetName())
	}
}

// refs names the objects of a phase where they will land (Target puts a
// namespaced object without a namespace in "default"). An object whose kind
// does not resolve is left out: applying it fails anyway.
func (r *Reconciler) refs(objs []Object) []Ref {
	out := make([]Ref, 0, len(objs))
	for _, o := range objs {
		u := o.U.DeepCopy()
		if _, _, err := r.kube.Target(u); err != nil {
			continue
		}
		out = append(out, RefOf(u))
	}
	return out
}

// inventory returns the stack's stored inventory. A stack without one
// (first reconcile by this agent, or an agent upgraded from a version
// without inventories) is seeded from the seeding scan and stored at once,
// so no object applied before the upgrade leaks, and later reconciles
// never scan again.
func (r *Reconciler) inventory(ctx context.Context, stackID uuid.UUID) (Inventory, error) {
	inv, found, err := r.store.Load(ctx, stackID)
	if err != nil {
		return nil, err
	}
	if found {
		return inv, nil
	}
	refs, err := r.seed(ctx, stackID)
	if err != nil {
		return nil, err
	}
	inv = NewInventory(refs...)
	if err := r.store.Save(ctx, stackID, inv); err != nil {
		return nil, err
	}
	r.log.Info("stack inventory seeded from a scan of the cluster", "stack_id", stackID, "objects", len(inv))
	return inv, nil
}

// seed returns what the seeding scan found for the stack: this agent's
// objects carrying the stack label and annotation. The scan (one LIST per
// listable type, selector "k8s.brokkr.io/stack exists") runs at most once
// per process, on the first stack that needs it; every stack takes its
// share once. Objects applied later always pass through a stored
// inventory first (remember), so a share taken after a while misses
// nothing.
func (r *Reconciler) seed(ctx context.Context, stackID uuid.UUID) ([]Ref, error) {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	if r.scanned == nil {
		var items []kube.Item
		var skipped []kube.SkippedError
		err := r.call(ctx, func(ctx context.Context) error {
			resources, err := r.kube.Listable(ctx)
			if err != nil {
				return err
			}
			items, skipped, err = r.kube.ListMetadata(ctx, resources, LabelStack)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("scanning for managed objects: %w", err)
		}
		for _, s := range skipped {
			r.log.Debug("seeding scan: resource type skipped", "resource", s.Resource.GVR.String(), "error", s.Err)
		}
		scanned := map[uuid.UUID][]Ref{}
		for _, it := range items {
			if it.Annotations[AnnotationOwnerID] != r.opts.AgentID.String() || it.Annotations[AnnotationStack] != it.Labels[LabelStack] {
				continue
			}
			id, err := uuid.Parse(it.Labels[LabelStack])
			if err != nil {
				continue
			}
			gvr := it.Resource.GVR
			scanned[id] = append(scanned[id], Ref{Group: gvr.Group, Version: gvr.Version, Kind: it.Resource.Kind,
				Namespace: it.Namespace, Name: it.Name})
		}
		r.scanned = scanned
		r.scans++
	}
	refs := r.scanned[stackID]
	delete(r.scanned, stackID)
	return refs, nil
}

// FullScans reports how many seeding scans ran (tests).
func (r *Reconciler) FullScans() int {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	return r.scans
}

// remember adds refs to inv and stores it when that changed it.
func (r *Reconciler) remember(ctx context.Context, stackID uuid.UUID, inv Inventory, refs []Ref) error {
	changed := false
	for _, ref := range refs {
		if cur, ok := inv[ref.key()]; !ok || cur != ref {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	inv.Add(refs...)
	return r.store.Save(ctx, stackID, inv)
}

// doomed is one object to prune, resolved against the API.
type doomed struct {
	ref        Ref
	gvr        schema.GroupVersionResource
	namespaced bool
}

// rank orders deletes: contents before containers, so namespaced objects,
// then cluster-scoped ones, CRDs and Namespaces last.
func (d doomed) rank() int {
	switch {
	case d.ref.Kind == "Namespace" && d.ref.Group == "":
		return 3
	case d.gvr.GroupResource() == kube.CRDResource.GroupResource():
		return 2
	case !d.namespaced:
		return 1
	}
	return 0
}

// prune deletes what inv holds and keep does not (everything, for a
// deletion marker: keep nil), then stores keep plus what could not be
// deleted; a deletion marker that deleted everything deletes the
// inventory. Before each delete the live object's metadata is read: an
// object another agent or stack took over, or one with ownerReferences, is
// not deleted, only forgotten.
func (r *Reconciler) prune(ctx context.Context, stackID uuid.UUID, inv, keep Inventory) ([]string, error) {
	marker := keep == nil
	remaining := keep.Clone()
	if remaining == nil {
		remaining = NewInventory()
	}
	var todo []doomed
	for _, ref := range inv.Minus(keep) {
		m, err := r.kube.Mapping(ref.GVK())
		var unresolved *kube.UnresolvedKindError
		if errors.As(err, &unresolved) {
			continue // the type is gone, and its objects with it
		}
		if err != nil {
			remaining.Add(ref)
			r.log.Warn("prune: resolving the kind failed; kept for the next run", "object", ref.String(), "error", err)
			continue
		}
		todo = append(todo, doomed{ref: ref, gvr: m.Resource, namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace})
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].rank() < todo[j].rank() })

	owner, stack := r.opts.AgentID.String(), stackID.String()
	var pruned, failures []string
	for _, d := range todo {
		ns := d.ref.Namespace
		if !d.namespaced {
			ns = ""
		}
		var live *metav1.PartialObjectMetadata
		err := r.call(ctx, func(ctx context.Context) error {
			var err error
			if ns != "" {
				live, err = r.kube.MetadataClient().Resource(d.gvr).Namespace(ns).Get(ctx, d.ref.Name, metav1.GetOptions{})
			} else {
				live, err = r.kube.MetadataClient().Resource(d.gvr).Get(ctx, d.ref.Name, metav1.GetOptions{})
			}
			return err
		})
		switch {
		case apierrors.IsNotFound(err):
			continue // already gone
		case apierrors.IsForbidden(err) || apierrors.IsMethodNotSupported(err):
			// The agent may not read it (any more): skipped, as pruning
			// always skipped types it may not list; kept to try again.
			remaining.Add(d.ref)
			r.log.Debug("prune: object skipped", "object", d.ref.String(), "error", err)
			continue
		case err != nil:
			remaining.Add(d.ref)
			failures = append(failures, fmt.Sprintf("reading %s: %s", d.ref, errorText(err)))
			continue
		}
		if live.Annotations[AnnotationOwnerID] != owner || live.Annotations[AnnotationStack] != stack ||
			len(live.OwnerReferences) > 0 {
			continue // not ours (any more): never deleted
		}
		if live.DeletionTimestamp != nil {
			pruned = append(pruned, d.ref.String())
			continue
		}
		err = r.call(ctx, func(ctx context.Context) error { return r.kube.Delete(ctx, d.gvr, ns, d.ref.Name) })
		if err != nil {
			remaining.Add(d.ref)
			failures = append(failures, fmt.Sprintf("deleting %s: %s", d.ref, errorText(err)))
			continue
		}
		pruned = append(pruned, d.ref.String())
	}

	var err error
	switch {
	case marker && len(remaining) == 0:
		err = r.store.Delete(ctx, stackID)
	case !maps.Equal(remaining, inv):
		err = r.store.Save(ctx, stackID, remaining)
	}
	if err != nil {
		failures = append(failures, err.Error())
	}
	if len(failures) > 0 {
		return pruned, fmt.Errorf("pruning failed:\n%s", strings.Join(failures, "\n"))
	}
	return pruned, nil
}
