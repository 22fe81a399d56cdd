package workorders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// FieldManager is the server-side apply field manager of work orders (the
// original's "brokkr-agent"; deployment objects use "brokkr-controller").
const FieldManager = "brokkr-agent"

// Tracking metadata stamped on every object a work order applies (and on
// the BuildRun it creates): the order's id as a label, so
// `kubectl get all -l brokkr.io/work-order-id=<id>` finds them, and the
// agent's id as the owner annotation. No stack label: pruning never
// touches work-order objects.
const (
	LabelWorkOrderID  = "brokkr.io/work-order-id"
	AnnotationOwnerID = reconcile.AnnotationOwnerID
)

// ExecutorOptions tune an Executor.
type ExecutorOptions struct {
	// AgentID is stamped as the owner annotation.
	AgentID uuid.UUID
	// CheckInterval is how often Jobs, other objects and BuildRuns are
	// read while waiting (default 5 s, the original's BuildRun poll).
	CheckInterval time.Duration
	// CallRetry retries single API calls that failed with a retryable
	// error (default 0.5 s … 10 s, 30 s per call).
	CallRetry kube.Backoff
	// CRDTimeout bounds the wait for CRDs an order applies (default 60 s).
	CRDTimeout time.Duration
	Logger     *slog.Logger
}

// Cluster is what the executor needs from the Kubernetes client
// (*kube.Client in the agent; tests may fake it).
type Cluster interface {
	Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error)
	Apply(ctx context.Context, obj *unstructured.Unstructured, opts kube.ApplyOptions) (*unstructured.Unstructured, error)
	Get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error)
	WaitEstablished(ctx context.Context, names []string, timeout time.Duration) error
	// DynamicClient creates and watches Shipwright BuildRuns.
	DynamicClient() dynamic.Interface
}

// Executor runs one work order against the cluster.
type Executor struct {
	kube Cluster
	opts ExecutorOptions
	log  *slog.Logger
}

// NewExecutor returns an executor for the cluster k talks to.
func NewExecutor(k Cluster, opts ExecutorOptions) *Executor {
	defaults.Set(&opts.CheckInterval, 5*time.Second)
	if opts.CallRetry == (kube.Backoff{}) {
		opts.CallRetry = kube.Backoff{Initial: 500 * time.Millisecond, Max: 10 * time.Second, Deadline: 30 * time.Second}
	}
	defaults.Set(&opts.CRDTimeout, 60*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{kube: k, opts: opts, log: opts.Logger}
}

// Task is one execution of a claimed order.
type Task struct {
	Order workorder.WorkOrder
	// Timeout is the per-order limit, for messages; ctx carries the
	// deadline.
	Timeout time.Duration
	// Progress receives a short description of what the order is doing
	// whenever that changes (nil: dropped).
	Progress func(message string)
}

func (t Task) progress(msg string) {
	if t.Progress != nil {
		t.Progress(msg)
	}
}

// Execute runs the order and returns the completion message of a success
// (for a build, the image digest). A failure is classified by Classify.
func (e *Executor) Execute(ctx context.Context, t Task) (string, error) {
	switch t.Order.WorkType {
	case workorder.TypeCustom:
		return e.custom(ctx, t)
	case workorder.TypeBuild:
		return e.build(ctx, t)
	}
	return "", fail(ReasonUnknownType, "Unknown work type: %s", t.Order.WorkType)
}

// parse reads the order's YAML; problems are an invalid-order failure.
func parse(t Task) ([]reconcile.Object, error) {
	objs, err := reconcile.ParseObjects(t.Order.YAMLContent)
	var invalid *reconcile.InvalidError
	if errors.As(err, &invalid) {
		return nil, &Failure{Reason: ReasonInvalid, Message: "invalid work order YAML:\n" + strings.Join(invalid.Problems, "\n"), Err: err}
	}
	return objs, err
}

func (e *Executor) call(ctx context.Context, fn func(context.Context) error) error {
	return kube.Retry(ctx, e.opts.CallRetry, fn)
}

func (e *Executor) stamp(t Task, u *unstructured.Unstructured) {
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelWorkOrderID] = t.Order.ID.String()
	u.SetLabels(labels)
	ann := u.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationOwnerID] = e.opts.AgentID.String()
	u.SetAnnotations(ann)
}

func describe(u *unstructured.Unstructured) string {
	name := u.GetName()
	if ns := u.GetNamespace(); ns != "" {
		name = ns + "/" + name
	}
	return u.GetKind() + " " + name
}

func (e *Executor) applyOne(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	return e.call(ctx, func(ctx context.Context) error {
		_, err := e.kube.Apply(ctx, u, kube.ApplyOptions{FieldManager: FieldManager, Force: true, DryRun: dryRun})
		return err
	})
}

// applyAll applies objects as deployment objects are applied: Namespaces
// and CRDs first, then (once the CRDs are Established) a dry-run of every
// other object collecting every problem, then the real apply in document
// order. It returns the applied objects (namespace defaulted).
func (e *Executor) applyAll(ctx context.Context, t Task, objs []reconcile.Object) ([]*unstructured.Unstructured, error) {
	var applied, regular []*unstructured.Unstructured
	var docs []int
	var crds []string
	for _, o := range objs {
		u := o.U.DeepCopy()
		e.stamp(t, u)
		if !o.IsPriority() {
			regular = append(regular, u)
			docs = append(docs, o.Doc)
			continue
		}
		if err := e.applyOne(ctx, u, false); err != nil {
			return nil, wrap(err, "applying %s (document %d)", describe(u), o.Doc)
		}
		applied = append(applied, u)
		if u.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, u.GetName())
		}
	}
	if len(crds) > 0 {
		if err := e.kube.WaitEstablished(ctx, crds, e.opts.CRDTimeout); err != nil {
			return nil, wrap(err, "waiting for CRDs to be Established")
		}
	}
	t.progress(fmt.Sprintf("validating %d object(s)", len(regular)))
	var problems []string
	reason := ReasonRejected
	var now, late []*unstructured.Unstructured
	for i, u := range regular {
		err := e.applyOne(ctx, u, true)
		if err == nil {
			now = append(now, u)
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if apierrors.IsNotFound(err) && isBinding(u) {
			// A binding of a role applied by this same order: the API
			// checks it against a role the dry-run did not create.
			late = append(late, u)
			continue
		}
		f := Classify(err)
		if f.Retryable() {
			return nil, wrap(err, "validating %s (document %d)", describe(u), docs[i])
		}
		if f.Reason == ReasonMissingKind {
			reason = ReasonMissingKind
		}
		problems = append(problems, fmt.Sprintf("%s (document %d): %s", describe(u), docs[i], f.Message))
	}
	if len(problems) > 0 {
		return nil, &Failure{Reason: reason, Message: "validation failed:\n" + strings.Join(problems, "\n")}
	}
	for _, u := range append(now, late...) {
		if err := e.applyOne(ctx, u, false); err != nil {
			return nil, wrap(err, "applying %s", describe(u))
		}
		applied = append(applied, u)
	}
	return applied, nil
}

func isBinding(u *unstructured.Unstructured) bool {
	return strings.HasPrefix(u.GetAPIVersion(), "rbac.authorization.k8s.io/") &&
		(u.GetKind() == "RoleBinding" || u.GetKind() == "ClusterRoleBinding")
}

// sleep waits d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	return lifecycle.Sleep(ctx, d) == nil
}

// ended turns the end of ctx while waiting into a failure: the per-order
// timeout (retryable) or the cancellation itself.
func ended(ctx context.Context, t Task, waitingFor string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fail(ReasonTimeout, "timed out after %s waiting for %s", t.Timeout, waitingFor)
	}
	return ctx.Err()
}
