package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/tools/testenv"
)

// gadgetCRDs is a stack holding only a Namespace and a CRD; gadgetUse, a
// stack whose object is an instance of it (docs/dependencies.md).
const gadgetCRDs = `apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[2]s.e2e.brokkr.io}
spec:
  group: e2e.brokkr.io
  scope: Namespaced
  names: {plural: %[2]s, singular: %[3]s, kind: %[4]s}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

const gadgetUse = `apiVersion: e2e.brokkr.io/v1
kind: %[2]s
metadata: {name: g, namespace: %[1]s}
spec: {size: 1}
`

// A stack that uses a CRD, posted before the CRD's own stack and depending
// on it, is applied only after the CRD stack is applied and healthy on the
// cluster: its first and only report is SUCCESS, later than the CRD's.
func TestDependencyAppliesCRDFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	env := testenv.ForTest(t)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	suffix := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	ns, plural, kind := "deps-"+suffix, "gadgets"+suffix, "Gadget"+suffix
	var crds, use struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "crds-" + suffix}, &crds)
	b.call(t, http.MethodPost, "/stacks", map[string]any{"name": "use-" + suffix, "depends_on": []uuid.UUID{crds.ID}}, &use)

	a := startAgent(t, b, cfg, "deps-"+suffix, crds.ID)
	b.call(t, http.MethodPost, "/agents/"+a.id.String()+"/targets", map[string]any{"stack_id": use.ID}, nil)

	deploy := func(stackID uuid.UUID, yaml string) string {
		t.Helper()
		var do struct {
			ID uuid.UUID `json:"id"`
		}
		b.call(t, http.MethodPost, "/stacks/"+stackID.String()+"/deployment-objects", map[string]any{"yaml_content": yaml}, &do)
		return do.ID.String()
	}
	// The instance first: without the dependency its apply would fail.
	useObj := deploy(use.ID, fmt.Sprintf(gadgetUse, ns, kind))
	var withheld struct {
		Withheld []struct {
			DeploymentObjectID string `json:"deployment_object_id"`
		} `json:"withheld"`
	}
	b.call(t, http.MethodGet, "/agents/"+a.id.String()+"/target-state?explain=true", nil, &withheld)
	if len(withheld.Withheld) != 1 || withheld.Withheld[0].DeploymentObjectID != useObj {
		t.Fatalf("the instance is not withheld: %+v", withheld)
	}
	crdObj := deploy(crds.ID, fmt.Sprintf(gadgetCRDs, ns, plural, strings.ToLower(kind), kind))

	type ev struct {
		DeploymentObjectID string    `json:"deployment_object_id"`
		Status             string    `json:"status"`
		CreatedAt          time.Time `json:"created_at"`
	}
	var crdDone, useDone *ev
	eventually(t, 120*time.Second, func() string {
		var events []ev
		b.call(t, http.MethodGet, "/agents/"+a.id.String()+"/events", nil, &events)
		crdDone, useDone = nil, nil
		for i := range events {
			e := &events[i]
			if e.DeploymentObjectID == useObj && e.Status != "SUCCESS" {
				t.Fatalf("the instance was applied before its CRD: %+v", e)
			}
			switch {
			case e.DeploymentObjectID == crdObj && e.Status == "SUCCESS":
				crdDone = e
			case e.DeploymentObjectID == useObj:
				useDone = e
			}
		}
		if crdDone == nil || useDone == nil {
			return fmt.Sprintf("waiting for SUCCESS of both stacks; events %+v", events)
		}
		return ""
	})
	if useDone.CreatedAt.Before(crdDone.CreatedAt) {
		t.Fatalf("instance reported at %v, before its CRD at %v", useDone.CreatedAt, crdDone.CreatedAt)
	}
}
