package workorders

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Shipwright's API (v1beta1, as the original hard-codes).
const (
	ShipwrightGroup   = "shipwright.io"
	ShipwrightVersion = "v1beta1"
	// LabelBuild is the label Shipwright puts on a Build's BuildRuns.
	LabelBuild = "shipwright.io/build"
)

var (
	buildRunGVK = schema.GroupVersionKind{Group: ShipwrightGroup, Version: ShipwrightVersion, Kind: "BuildRun"}
	buildGVK    = schema.GroupVersionKind{Group: ShipwrightGroup, Version: ShipwrightVersion, Kind: "Build"}
)

// BuildRunName is the deterministic BuildRun name of an attempt: the Build's
// name, the first 8 characters of the work order id (the original's
// scheme) and the attempt (retry_count), so a restarted agent finds and
// adopts the BuildRun of the attempt it was running, while a retry of a
// failed attempt starts a fresh BuildRun. The name is kept within 63
// characters, as Shipwright copies it into label values.
func BuildRunName(build string, id uuid.UUID, attempt int) string {
	suffix := fmt.Sprintf("-%s-%d", id.String()[:8], attempt)
	if max := 63 - len(suffix); len(build) > max {
		build = strings.TrimRight(build[:max], "-.")
	}
	return build + suffix
}

func shipwrightMissing(err error) *Failure {
	return &Failure{Reason: ReasonShipwrightMissing, Err: err, Message: "Shipwright Build is not installed in this cluster: " +
		"the API serves no shipwright.io/v1beta1 Build or BuildRun (CRDs builds.shipwright.io and buildruns.shipwright.io); " +
		"install Shipwright Build v0.12 or later, or target build orders at agents whose clusters have it"}
}

// build applies every document of the order (Secrets, ServiceAccounts, the
// Shipwright Build; a brokkr.io WorkOrder document only names the Build
// through spec.buildRef.name and is not applied), creates the attempt's
// BuildRun or adopts it when it exists, and waits until it succeeds (the
// message is status.output.digest) or fails.
func (e *Executor) build(ctx context.Context, t Task) (string, error) {
	objs, err := parse(t)
	if err != nil {
		return "", err
	}
	var toApply []reconcile.Object
	var buildName, buildRef, ns string
	for _, o := range objs {
		gv, _ := schema.ParseGroupVersion(o.U.GetAPIVersion())
		switch {
		case gv.Group == ShipwrightGroup && o.U.GetKind() == "Build":
			// The last Build wins, as in the original.
			buildName, ns = o.U.GetName(), o.U.GetNamespace()
		case (gv.Group == "brokkr.io" || strings.HasSuffix(gv.Group, ".brokkr.io")) && o.U.GetKind() == "WorkOrder":
			if ref, _, _ := unstructured.NestedString(o.U.Object, "spec", "buildRef", "name"); ref != "" && buildRef == "" {
				buildRef = ref
				if n := o.U.GetNamespace(); n != "" {
					ns = n
				}
			}
			continue
		}
		toApply = append(toApply, o)
	}
	if buildName == "" {
		buildName = buildRef
	}
	if buildName == "" {
		return "", fail(ReasonInvalid, "no Shipwright Build (apiVersion shipwright.io/v1beta1, kind Build) and no WorkOrder spec.buildRef.name in the YAML")
	}
	if ns == "" {
		ns = kube.DefaultNamespace
	}
	mapping, err := e.shipwright()
	if err != nil {
		return "", err
	}
	if len(toApply) > 0 {
		t.progress(fmt.Sprintf("applying %d object(s)", len(toApply)))
		if _, err := e.applyAll(ctx, t, toApply); err != nil {
			return "", err
		}
	}
	ri := e.kube.DynamicClient().Resource(mapping.Resource).Namespace(ns)
	name := BuildRunName(buildName, t.Order.ID, t.Order.RetryCount)
	adopted, err := e.createOrAdopt(ctx, t, ri, ns, name, buildName)
	if err != nil {
		return "", err
	}
	what := "created"
	if adopted {
		what = "adopted"
	}
	e.log.Info("BuildRun "+what, "work_order_id", t.Order.ID, "buildrun", ns+"/"+name)
	t.progress(fmt.Sprintf("BuildRun %s/%s %s; waiting for it to finish", ns, name, what))
	return e.waitBuildRun(ctx, t, ri, ns, name)
}

// shipwright resolves the BuildRun resource, and checks that Builds are
// served too: a clear non-retryable failure when Shipwright is absent.
func (e *Executor) shipwright() (*meta.RESTMapping, error) {
	m, err := e.kube.Mapping(buildRunGVK)
	if err == nil {
		_, err = e.kube.Mapping(buildGVK)
	}
	if err != nil {
		if meta.IsNoMatchError(err) {
			return nil, shipwrightMissing(err)
		}
		return nil, wrap(err, "discovering the Shipwright API")
	}
	return m, nil
}

// createOrAdopt creates the BuildRun, or adopts the existing one of the same
// name when it belongs to this work order (an agent restart).
func (e *Executor) createOrAdopt(ctx context.Context, t Task, ri dynamic.ResourceInterface, ns, name, build string) (adopted bool, err error) {
	br := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": buildRunGVK.GroupVersion().String(),
		"kind":       buildRunGVK.Kind,
		"metadata": map[string]any{
			"name":      name,
			"namespace": ns,
			"labels":    map[string]any{LabelBuild: build},
		},
		"spec": map[string]any{"build": map[string]any{"name": build}},
	}}
	e.stamp(t, br)
	err = e.call(ctx, func(ctx context.Context) error {
		_, err := ri.Create(ctx, br, metav1.CreateOptions{FieldManager: FieldManager})
		return err
	})
	if err == nil {
		return false, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, wrap(err, "creating BuildRun %s/%s", ns, name)
	}
	var live *unstructured.Unstructured
	if err := e.call(ctx, func(ctx context.Context) error {
		var err error
		live, err = ri.Get(ctx, name, metav1.GetOptions{})
		return err
	}); err != nil {
		return false, wrap(err, "reading the existing BuildRun %s/%s", ns, name)
	}
	if owner := live.GetLabels()[LabelWorkOrderID]; owner != t.Order.ID.String() {
		return false, fail(ReasonConflict, "BuildRun %s/%s already exists and does not belong to this work order (label %s=%q)", ns, name, LabelWorkOrderID, owner)
	}
	return true, nil
}

// waitBuildRun reads the BuildRun every CheckInterval until its Succeeded
// condition is True (success: the digest) or False (failure), or the
// per-order timeout passes (retryable; the BuildRun is cancelled).
func (e *Executor) waitBuildRun(ctx context.Context, t Task, ri dynamic.ResourceInterface, ns, name string) (string, error) {
	full := ns + "/" + name
	last := "no status yet"
	for {
		var live *unstructured.Unstructured
		err := e.call(ctx, func(ctx context.Context) error {
			var err error
			live, err = ri.Get(ctx, name, metav1.GetOptions{})
			return err
		})
		switch {
		case ctx.Err() != nil:
		case apierrors.IsNotFound(err):
			return "", fail(ReasonObjectFailed, "BuildRun %s was deleted before it finished", full)
		case err != nil:
			if f := Classify(err); !f.Retryable() {
				return "", wrap(err, "reading BuildRun %s", full)
			}
			last = "read failed: " + err.Error()
		default:
			cond := condition(live, "Succeeded")
			switch cond["status"] {
			case "True":
				digest, _, _ := unstructured.NestedString(live.Object, "status", "output", "digest")
				if digest == "" {
					return fmt.Sprintf("BuildRun %s succeeded; it reported no image digest", full), nil
				}
				return digest, nil
			case "False":
				return "", fail(ReasonBuildRunFailed, "BuildRun %s failed: %s", full, buildRunFailure(live, cond))
			}
			now := str(cond["reason"])
			if m := str(cond["message"]); m != "" {
				now = strings.TrimSpace(now + ": " + m)
			}
			if now == "" {
				now = "no status yet"
			}
			if now != last {
				last = now
				t.progress(fmt.Sprintf("BuildRun %s: %s", full, now))
			}
		}
		if ctx.Err() != nil || !sleep(ctx, e.opts.CheckInterval) {
			err := ended(ctx, t, "BuildRun "+full+" ("+last+")")
			if f, ok := err.(*Failure); ok && f.Reason == ReasonTimeout {
				e.cancelBuildRun(ri, name)
				f.Message += "; the BuildRun was cancelled"
			}
			return "", err
		}
	}
}

// cancelBuildRun asks Shipwright to stop a BuildRun that ran out of time,
// so a retry (a new BuildRun) does not race it. Best effort.
func (e *Executor) cancelBuildRun(ri dynamic.ResourceInterface, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	patch := []byte(`{"spec":{"state":"BuildRunCanceled"}}`)
	if _, err := ri.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		e.log.Warn("cancelling a timed-out BuildRun failed", "buildrun", name, "error", err)
	}
}

func condition(u *unstructured.Unstructured, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return map[string]any{}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// buildRunFailure is "<reason>: <message>" from status.failureDetails,
// else from the Succeeded condition, as the original words it.
func buildRunFailure(u *unstructured.Unstructured, cond map[string]any) string {
	reason, _, _ := unstructured.NestedString(u.Object, "status", "failureDetails", "reason")
	message, _, _ := unstructured.NestedString(u.Object, "status", "failureDetails", "message")
	if reason == "" && message == "" {
		reason, message = str(cond["reason"]), str(cond["message"])
	}
	switch {
	case reason == "" && message == "":
		return "Build failed"
	case reason == "":
		return "Unknown: " + message
	case message == "":
		return reason + ": No message"
	}
	return reason + ": " + message
}
