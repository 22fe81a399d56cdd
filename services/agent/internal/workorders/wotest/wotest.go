// Package wotest helps tests of work orders against the testenv control
// plane, which has no kubelet and no Shipwright controller: it installs the
// Shipwright CRDs copied by testdata/fetch-shipwright-crds.sh and finishes
// Jobs and BuildRuns through their status subresource.
package wotest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// ManagedBy is the spec.managedBy test Jobs carry, so the Job controller
// leaves them to the test.
const ManagedBy = "brokkr.io/test"

// BuildRuns is the Shipwright BuildRun resource.
var BuildRuns = schema.GroupVersionResource{Group: "shipwright.io", Version: "v1beta1", Resource: "buildruns"}

// InstallShipwright creates the CRDs in dir (services/agent/testdata/
// shipwright) and waits until they are Established and discoverable.
func InstallShipwright(t testing.TB, cfg *rest.Config, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Shipwright CRDs in %s (run services/agent/testdata/fetch-shipwright-crds.sh): %v", dir, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := reconcile.ParseObjects(string(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			_, err := dyn.Resource(kube.CRDResource).Create(ctx, o.U, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating %s: %v", o.U.GetName(), err)
			}
			names = append(names, o.U.GetName())
		}
	}
	kc, err := kube.New(cfg, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.WaitEstablished(ctx, names, 0); err != nil {
		t.Fatal(err)
	}
}

// FinishJob sets a Job's terminal status as the Job controller would:
// Complete (with SuccessCriteriaMet) or Failed (with FailureTarget).
func FinishJob(t testing.TB, cs kubernetes.Interface, ns, name string, complete bool, reason, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		job, err := cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		job.Status.StartTime = &now
		cond := func(typ batchv1.JobConditionType) batchv1.JobCondition {
			return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message,
				LastProbeTime: now, LastTransitionTime: now}
		}
		if complete {
			job.Status.CompletionTime = &now
			job.Status.Succeeded = 1
			job.Status.Conditions = append(job.Status.Conditions, cond(batchv1.JobSuccessCriteriaMet), cond(batchv1.JobComplete))
		} else {
			job.Status.Failed = 1
			job.Status.Conditions = append(job.Status.Conditions, cond(batchv1.JobFailureTarget), cond(batchv1.JobFailed))
		}
		_, err = cs.BatchV1().Jobs(ns).UpdateStatus(ctx, job, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("finishing Job %s/%s: %v", ns, name, err)
	}
}

// FinishBuildRun sets a BuildRun's Succeeded condition as the Shipwright
// controller would: True with status.output.digest, or False with
// status.failureDetails.
func FinishBuildRun(t testing.TB, dyn dynamic.Interface, ns, name string, succeeded bool, digest, reason, message string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ri := dyn.Resource(BuildRuns).Namespace(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		br, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		status := "False"
		if succeeded {
			status = "True"
		}
		now := time.Now().UTC().Format(time.RFC3339)
		st := map[string]any{
			"startTime": now, "completionTime": now,
			"conditions": []any{map[string]any{"type": "Succeeded", "status": status, "reason": reason,
				"message": message, "lastTransitionTime": now}},
		}
		if succeeded {
			st["output"] = map[string]any{"digest": digest}
		} else {
			st["failureDetails"] = map[string]any{"reason": reason, "message": message}
		}
		if err := unstructured.SetNestedMap(br.Object, st, "status"); err != nil {
			return err
		}
		_, err = ri.UpdateStatus(ctx, br, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("finishing BuildRun %s/%s: %v", ns, name, err)
	}
}
