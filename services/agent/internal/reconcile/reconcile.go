package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

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
	// FullScanInterval is how often pruning re-discovers, across every
	// listable resource type, which types hold this agent's objects (1 h).
	// Between scans each stack's prune lists only the types it is known to
	// use, so an idle cycle costs a handful of requests, not one per type.
	FullScanInterval time.Duration
	Logger           *slog.Logger
}

// Reconciler applies deployment objects to one cluster.
type Reconciler struct {
	kube *kube.Client
	opts Options
	log  *slog.Logger

	scanMu    sync.Mutex // one full scan at a time
	mu        sync.Mutex
	inventory map[uuid.UUID]map[schema.GroupVersionResource]kube.Resource
	scannedAt time.Time
	scans     int
}

// New returns a reconciler.
func New(k *kube.Client, opts Options) *Reconciler {
	if opts.CallRetry == (kube.Backoff{}) {
		opts.CallRetry = kube.Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Second, Deadline: 30 * time.Second}
	}
	if opts.CRDTimeout <= 0 {
		opts.CRDTimeout = 60 * time.Second
	}
	if opts.FullScanInterval <= 0 {
		opts.FullScanInterval = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{kube: k, opts: opts, log: opts.Logger,
		inventory: map[uuid.UUID]map[schema.GroupVersionResource]kube.Resource{}}
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
		pruned, err := r.prune(ctx, do.StackID, "", true)
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
		r.track(plan.StackID, u)
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

	for _, o := range append(now, late...) {
		u := o.U.DeepCopy()
		if _, err := r.apply(ctx, u, false); err != nil {
			return res, fmt.Errorf("applying %s: %w", o.Describe(), err)
		}
		r.track(plan.StackID, u)
		res.Applied = append(res.Applied, describe(u))
	}
	created = nil // applied: nothing to roll back any more

	pruned, err := r.prune(ctx, plan.StackID, plan.Checksum, false)
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

// track records that the stack uses the object's resource type.
func (r *Reconciler) track(stackID uuid.UUID, u *unstructured.Unstructured) {
	_, m, err := r.kube.Target(u)
	if err != nil {
		return
	}
	res := kube.Resource{GVR: m.Resource, Kind: m.GroupVersionKind.Kind, Namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}
	r.mu.Lock()
	defer r.mu.Unlock()
	inv := r.inventory[stackID]
	if inv == nil {
		inv = map[schema.GroupVersionResource]kube.Resource{}
		r.inventory[stackID] = inv
	}
	inv[res.GVR] = res
}

// stackResources returns the resource types to list when pruning a stack,
// running a full scan first when none ran yet or the last one is old.
func (r *Reconciler) stackResources(ctx context.Context, stackID uuid.UUID) ([]kube.Resource, error) {
	if err := r.ensureScan(ctx); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]kube.Resource, 0, len(r.inventory[stackID]))
	for _, res := range r.inventory[stackID] {
		out = append(out, res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GVR.String() < out[j].GVR.String() })
	return out, nil
}

func (r *Reconciler) ensureScan(ctx context.Context) error {
	r.scanMu.Lock()
	defer r.scanMu.Unlock()
	r.mu.Lock()
	fresh := !r.scannedAt.IsZero() && time.Since(r.scannedAt) < r.opts.FullScanInterval
	r.mu.Unlock()
	if fresh {
		return nil
	}
	resources, err := r.kube.Listable(ctx)
	if err != nil {
		return err
	}
	items, skipped, err := r.kube.ListMetadata(ctx, resources, LabelStack)
	if err != nil {
		return fmt.Errorf("scanning for managed objects: %w", err)
	}
	for _, s := range skipped {
		r.log.Debug("prune scan: resource type skipped", "resource", s.Resource.GVR.String(), "error", s.Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// Merge, never replace: a stack may have applied new types while the
	// scan ran.
	for _, it := range items {
		if it.Annotations[AnnotationOwnerID] != r.opts.AgentID.String() {
			continue
		}
		id, err := uuid.Parse(it.Labels[LabelStack])
		if err != nil {
			continue
		}
		inv := r.inventory[id]
		if inv == nil {
			inv = map[schema.GroupVersionResource]kube.Resource{}
			r.inventory[id] = inv
		}
		inv[it.Resource.GVR] = it.Resource
	}
	r.scannedAt = time.Now()
	r.scans++
	return nil
}

// FullScans reports how many full scans ran (tests, metrics).
func (r *Reconciler) FullScans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scans
}

// prune deletes this agent's objects of the stack whose checksum differs
// from keep (all of them when all is set). Objects with ownerReferences are
// left to their owners; objects of other agents are never touched.
func (r *Reconciler) prune(ctx context.Context, stackID uuid.UUID, keep string, all bool) ([]string, error) {
	resources, err := r.stackResources(ctx, stackID)
	if err != nil {
		return nil, err
	}
	var items []kube.Item
	var skipped []kube.SkippedError
	err = r.call(ctx, func(ctx context.Context) error {
		var err error
		items, skipped, err = r.kube.ListMetadata(ctx, resources, LabelStack+"="+stackID.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing the stack's objects: %w", err)
	}
	for _, s := range skipped {
		r.log.Debug("prune: resource type skipped", "resource", s.Resource.GVR.String(), "error", s.Err)
	}
	owner := r.opts.AgentID.String()
	var doomed []kube.Item
	remaining := map[schema.GroupVersionResource]kube.Resource{}
	for _, s := range skipped {
		remaining[s.Resource.GVR] = s.Resource
	}
	for _, it := range items {
		if it.Annotations[AnnotationOwnerID] != owner || it.Annotations[AnnotationStack] != stackID.String() {
			continue
		}
		if len(it.OwnerReferences) > 0 || (!all && it.Annotations[AnnotationChecksum] == keep) {
			remaining[it.Resource.GVR] = it.Resource
			continue
		}
		doomed = append(doomed, it)
	}
	// Contents before containers: namespaced objects, then cluster-scoped
	// ones, CRDs and Namespaces last.
	rank := func(it kube.Item) int {
		switch {
		case it.Resource.Kind == "Namespace" && it.Resource.GVR.Group == "":
			return 3
		case it.Resource.GVR == kube.CRDResource:
			return 2
		case !it.Resource.Namespaced:
			return 1
		}
		return 0
	}
	sort.SliceStable(doomed, func(i, j int) bool { return rank(doomed[i]) < rank(doomed[j]) })
	var pruned, failures []string
	for _, it := range doomed {
		name := it.Resource.Kind + " " + it.Name
		if it.Namespace != "" {
			name = it.Resource.Kind + " " + it.Namespace + "/" + it.Name
		}
		if it.Terminating {
			pruned = append(pruned, name)
			continue
		}
		err := r.call(ctx, func(ctx context.Context) error {
			return r.kube.Delete(ctx, it.Resource.GVR, it.Namespace, it.Name)
		})
		if err != nil {
			remaining[it.Resource.GVR] = it.Resource
			failures = append(failures, fmt.Sprintf("deleting %s: %s", name, errorText(err)))
			continue
		}
		pruned = append(pruned, name)
	}
	r.mu.Lock()
	if len(remaining) == 0 {
		delete(r.inventory, stackID)
	} else {
		r.inventory[stackID] = remaining
	}
	r.mu.Unlock()
	if len(failures) > 0 {
		return pruned, fmt.Errorf("pruning failed:\n%s", strings.Join(failures, "\n"))
	}
	return pruned, nil
}
