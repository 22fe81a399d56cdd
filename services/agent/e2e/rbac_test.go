package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/diagnostics"
	"github.com/brokkr-go/brokkr/services/agent/internal/health"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

const rbacStack = `apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.e2e.brokkr.io}
spec:
  group: e2e.brokkr.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
---
apiVersion: e2e.brokkr.io/v1
kind: Widget
metadata: {name: w, namespace: %[1]s}
spec: {size: %[2]d}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: %[1]s}
data: {size: "%[2]d"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: %[1]s}
stringData: {token: abc}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-settings, namespace: %[1]s}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-reads-settings, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-settings}
subjects: [{kind: ServiceAccount, name: app, namespace: %[1]s}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      serviceAccountName: app
      containers:
      - {name: web, image: nginx:1.27}
%[3]s`

// TestAgentRoleIsSufficient runs the reconciler, the health evaluation and
// the diagnostics collection as a user holding only the ClusterRole in
// services/agent/rbac.yaml (plus the documented rule for a custom-resource
// group) and the Role brokkr-agent-inventory: apply with CRDs first, the
// inventory in brokkr-system seeded by a scan over every type (some of
// which it may not list), pruning, drift correction, a namespace rollback,
// health, diagnostics and a deletion marker.
func TestAgentRoleIsSufficient(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	env := testenv.ForTest(t)
	ucfg := agentUserConfig(t, env)
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	uk, err := kube.New(ucfg, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := "rbac-" + uuid.NewString()[:8]
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	agentID, stackID := uuid.New(), uuid.New()
	rec := reconcile.New(uk, reconcile.Options{AgentID: agentID,
		Inventory: reconcile.NewConfigMapInventory(uk.Dynamic, "brokkr-system", agentID)})
	seq := int64(0)
	do := func(yaml string, marker bool) stack.DeploymentObject {
		seq++
		return stack.DeploymentObject{ID: uuid.New(), StackID: stackID, SequenceID: seq, YAMLContent: yaml,
			YAMLChecksum: stack.Checksum(yaml), IsDeletionMarker: marker}
	}
	extra := fmt.Sprintf("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra, namespace: %s}\n", ns)

	// Apply, then update without the extra ConfigMap: it is pruned.
	if _, err := rec.Apply(ctx, do(fmt.Sprintf(rbacStack, ns, 1, extra), false)); err != nil {
		t.Fatalf("apply as the agent role: %v", err)
	}
	v2 := do(fmt.Sprintf(rbacStack, ns, 2, ""), false)
	res, err := rec.Apply(ctx, v2)
	if err != nil {
		t.Fatalf("update as the agent role: %v", err)
	}
	if len(res.Pruned) != 1 || !strings.Contains(res.Pruned[0], "extra") {
		t.Fatalf("pruned %v", res.Pruned)
	}
	widget, err := uk.Dynamic.Resource(schema.GroupVersionResource{Group: "e2e.brokkr.io", Version: "v1", Resource: "widgets"}).
		Namespace(ns).Get(ctx, "w", metav1.GetOptions{})
	if err != nil || widget.Object["spec"].(map[string]any)["size"] != int64(2) {
		t.Fatalf("widget: %v %v", widget, err)
	}

	// Drift, corrected.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "settings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["size"] = "99"
	if _, err := cs.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := rec.Drift(ctx, v2, true)
	if err != nil || !rep.Corrected || rep.CorrectionErr != nil || len(rep.Drifted) != 1 {
		t.Fatalf("drift: %+v %v", rep, err)
	}

	// A failed update with a new namespace rolls that namespace back.
	bad := fmt.Sprintf(rbacStack, ns, 2, fmt.Sprintf(`---
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s-new}
---
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: %[1]s-new}
spec: {containers: [{name: c}]}
`, ns))
	if _, err := rec.Apply(ctx, do(bad, false)); err == nil || strings.Contains(err.Error(), "forbidden") {
		t.Fatalf("invalid update: want a validation error, got %v", err)
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns+"-new", metav1.GetOptions{})
	if err == nil && n.DeletionTimestamp == nil {
		t.Fatal("the namespace created by the failed run was not rolled back")
	}

	// Health and diagnostics read what they need.
	in, err := inspect.New(uk)
	if err != nil {
		t.Fatal(err)
	}
	ev := health.NewEvaluator(in)
	eventually(t, 60*time.Second, func() string {
		r, _ := ev.Evaluate(ctx, v2)
		if r.Status == "healthy" && r.Summary.PodsReady == 1 {
			return ""
		}
		return fmt.Sprintf("health as the agent role: %+v", r)
	})
	col := &diagnostics.Collector{In: in, LogLines: 5, LogTimeout: 3 * time.Second}
	dres, err := col.Collect(ctx, v2)
	if err != nil || len(dres.PodStatuses) != 1 || len(dres.LogTails) != 1 {
		t.Fatalf("diagnostics as the agent role: %+v %v", dres, err)
	}
	for k, v := range dres.LogTails {
		if strings.Contains(v, "forbidden") {
			t.Fatalf("log tail %s: %s", k, v)
		}
	}

	// The deletion marker removes everything, the CRD included.
	res, err = rec.Apply(ctx, do("", true))
	if err != nil {
		t.Fatalf("deletion marker as the agent role: %v", err)
	}
	if len(res.Pruned) < 10 {
		t.Fatalf("deletion marker deleted %v", res.Pruned)
	}
	eventually(t, 60*time.Second, func() string {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		_, errCRD := uk.Dynamic.Resource(kube.CRDResource).Get(ctx, "widgets.e2e.brokkr.io", metav1.GetOptions{})
		if apierrors.IsNotFound(err) && apierrors.IsNotFound(errCRD) {
			return ""
		}
		return fmt.Sprintf("left after the deletion marker: namespace %v, CRD %v", err, errCRD)
	})
}
