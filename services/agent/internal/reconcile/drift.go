package reconcile

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/equality"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// DriftReport is the outcome of one drift check of a deployment object.
type DriftReport struct {
	// Drifted names every object whose live state differs from what apply
	// would make of it, with the reason ("changed" or "missing").
	Drifted []string
	// Corrected is set when the drifted objects were re-applied.
	Corrected bool
	// CorrectionErr is the first re-apply error, if any.
	CorrectionErr error
}

// Message is the DRIFT event text.
func (d DriftReport) Message() string {
	list := strings.Join(d.Drifted, "; ")
	switch {
	case d.CorrectionErr != nil:
		return fmt.Sprintf("drift detected: %s; correction failed: %v", list, d.CorrectionErr)
	case d.Corrected:
		return "drift corrected: " + list
	}
	return "drift detected: " + list
}

// Drift compares the live objects of an applied deployment object with what
// server-side apply would make of them (a dry-run with the same field
// manager, so defaulting and other managers' fields cancel out). With
// correct set, drifted objects are re-applied in the documented order.
func (r *Reconciler) Drift(ctx context.Context, do stack.DeploymentObject, correct bool) (DriftReport, error) {
	var rep DriftReport
	if do.IsDeletionMarker {
		return rep, nil
	}
	plan, err := Prepare(do, r.opts.AgentID)
	if err != nil {
		return rep, err
	}
	var drifted []*unstructured.Unstructured
	for _, o := range plan.All() {
		u := o.U.DeepCopy()
		var live *unstructured.Unstructured
		err := r.call(ctx, func(ctx context.Context) error {
			var err error
			live, err = r.kube.Get(ctx, u)
			return err
		})
		if kerrors.IsNotFound(err) {
			rep.Drifted = append(rep.Drifted, describe(u)+" (missing)")
			drifted = append(drifted, u)
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("reading %s: %w", o.Describe(), err)
		}
		want, err := r.apply(ctx, u.DeepCopy(), true)
		if err != nil {
			return rep, fmt.Errorf("dry-run of %s: %w", o.Describe(), err)
		}
		if !apierrors.Semantic.DeepEqual(comparable(live), comparable(want)) {
			rep.Drifted = append(rep.Drifted, describe(u)+" (changed)")
			drifted = append(drifted, u)
		}
	}
	if !correct || len(drifted) == 0 {
		return rep, nil
	}
	// A re-created object joins the stored inventory first, like any
	// applied object, so pruning still finds it.
	refs := make([]Ref, 0, len(drifted))
	for _, u := range drifted {
		refs = append(refs, RefOf(u))
	}
	inv, err := r.inventory(ctx, plan.StackID)
	if err == nil {
		err = r.remember(ctx, plan.StackID, inv, refs)
	}
	if err != nil {
		rep.CorrectionErr = err
		return rep, nil
	}
	for _, u := range drifted {
		if _, err := r.apply(ctx, u, false); err != nil {
			rep.CorrectionErr = fmt.Errorf("re-applying %s: %s", describe(u), errorText(err))
			return rep, nil
		}
	}
	rep.Corrected = true
	return rep, nil
}

// comparable drops what changes without anyone touching the spec: status,
// resourceVersion, generation and managedFields.
func comparable(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy().Object
	delete(c, "status")
	if md, ok := c["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
		delete(md, "generation")
		delete(md, "managedFields")
	}
	return c
}
