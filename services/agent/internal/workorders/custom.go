package workorders

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// custom applies every document and waits until each applied object is
// done: a Job until its Complete (success) or Failed (non-retryable)
// condition, any other object until kstatus computes Current (Failed is
// non-retryable). The per-order timeout ends the wait as a retryable
// failure.
func (e *Executor) custom(ctx context.Context, t Task) (string, error) {
	objs, err := parse(t)
	if err != nil {
		return "", err
	}
	if err := e.checkJobs(ctx, t, objs); err != nil {
		return "", err
	}
	t.progress(fmt.Sprintf("applying %d object(s)", len(objs)))
	applied, err := e.applyAll(ctx, t, objs)
	if err != nil {
		return "", err
	}
	return e.waitObjects(ctx, t, applied)
}

// checkJobs refuses to take over a Job of the same name that this order
// did not create (another order's, or one made by hand): re-applying it
// would change nothing (a Job's template is immutable) and its old
// outcome would be reported as this order's. A Job carrying this order's
// label is its own, from an earlier attempt or before a restart, and is
// watched again.
func (e *Executor) checkJobs(ctx context.Context, t Task, objs []reconcile.Object) error {
	for _, o := range objs {
		if !isJob(o.U) {
			continue
		}
		u := o.U.DeepCopy()
		var live *unstructured.Unstructured
		err := e.call(ctx, func(ctx context.Context) error {
			var err error
			live, err = e.kube.Get(ctx, u)
			return err
		})
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return wrap(err, "reading %s", describe(u))
		}
		if owner := live.GetLabels()[LabelWorkOrderID]; owner != t.Order.ID.String() {
			from := "was not created by a work order"
			if owner != "" {
				from = "belongs to work order " + owner
			}
			return fail(ReasonConflict, "%s already exists and %s; delete it first, or give Jobs of repeated orders "+
				"a unique name or spec.ttlSecondsAfterFinished", describe(u), from)
		}
	}
	return nil
}

type watched struct {
	u    *unstructured.Unstructured
	done bool
	note string // what it is waiting on
}

func (e *Executor) waitObjects(ctx context.Context, t Task, applied []*unstructured.Unstructured) (string, error) {
	ws := make([]*watched, len(applied))
	jobs := 0
	for i, u := range applied {
		ws[i] = &watched{u: u}
		if isJob(u) {
			jobs++
		}
	}
	for {
		var waiting []string
		for _, w := range ws {
			if w.done {
				continue
			}
			if err := e.check(ctx, w); err != nil {
				if ctx.Err() != nil {
					break
				}
				return "", err
			}
			if !w.done {
				waiting = append(waiting, describe(w.u)+" ("+w.note+")")
			}
		}
		if ctx.Err() == nil && len(waiting) == 0 {
			msg := fmt.Sprintf("applied %d object(s)", len(applied))
			if jobs > 0 {
				msg += fmt.Sprintf("; %d Job(s) complete", jobs)
			}
			return msg, nil
		}
		if len(waiting) > 0 {
			t.progress(fmt.Sprintf("applied %d object(s); waiting for %s", len(applied), strings.Join(waiting, ", ")))
		}
		if ctx.Err() != nil || !sleep(ctx, e.opts.CheckInterval) {
			return "", ended(ctx, t, strings.Join(waiting, ", "))
		}
	}
}

// check reads one object and updates w; a returned error ends the order.
func (e *Executor) check(ctx context.Context, w *watched) error {
	var live *unstructured.Unstructured
	err := e.call(ctx, func(ctx context.Context) error {
		var err error
		live, err = e.kube.Get(ctx, w.u)
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		return fail(ReasonObjectFailed, "%s was deleted before it finished", describe(w.u))
	case err != nil:
		f := Classify(err)
		if f.Retryable() {
			w.note = "read failed: " + f.Message
			return nil // keep waiting; the timeout bounds an outage
		}
		return wrap(err, "reading %s", describe(w.u))
	}
	if isJob(live) {
		return jobState(live, w)
	}
	res, err := status.Compute(live)
	if err != nil {
		// kstatus cannot judge it; applying it was the work.
		w.done = true
		return nil
	}
	switch res.Status {
	case status.CurrentStatus:
		w.done = true
	case status.FailedStatus:
		return fail(ReasonObjectFailed, "%s failed: %s", describe(w.u), res.Message)
	default:
		w.note = string(res.Status)
		if res.Message != "" {
			w.note += ": " + res.Message
		}
	}
	return nil
}

func isJob(u *unstructured.Unstructured) bool {
	return u.GetKind() == "Job" && u.GetAPIVersion() == "batch/v1"
}

// jobState reads a Job's terminal conditions: Complete=True is done,
// Failed=True a non-retryable failure with the Job's reason and message.
func jobState(live *unstructured.Unstructured, w *watched) error {
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok || m["status"] != "True" {
			continue
		}
		switch m["type"] {
		case "Complete":
			w.done = true
			return nil
		case "Failed":
			reason, _ := m["reason"].(string)
			message, _ := m["message"].(string)
			detail := strings.TrimSpace(strings.Trim(reason+": "+message, ": "))
			if detail == "" {
				detail = "no reason given"
			}
			return fail(ReasonJobFailed, "%s failed: %s", describe(w.u), detail)
		}
	}
	active, _, _ := unstructured.NestedInt64(live.Object, "status", "active")
	succeeded, _, _ := unstructured.NestedInt64(live.Object, "status", "succeeded")
	failed, _, _ := unstructured.NestedInt64(live.Object, "status", "failed")
	w.note = fmt.Sprintf("active %d, succeeded %d, failed %d", active, succeeded, failed)
	return nil
}
