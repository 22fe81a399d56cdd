package reconcile

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

func prepare(t *testing.T, yaml string) (Plan, error) {
	t.Helper()
	do := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml)}
	return Prepare(do, uuid.New())
}

func TestPrepareOrdersAndStamps(t *testing.T) {
	yaml := `apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
---
# comment only
---
apiVersion: v1
kind: Namespace
metadata:
  name: ns1
  annotations: {keep: me, brokkr.io/owner-id: spoofed}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: s}
  stringData: {on: off}
`
	plan, err := prepare(t, yaml)
	if err != nil {
		t.Fatal(err)
	}
	var prio, reg []string
	for _, o := range plan.Priority {
		prio = append(prio, o.U.GetKind())
	}
	for _, o := range plan.Regular {
		reg = append(reg, o.U.GetKind())
	}
	if strings.Join(prio, ",") != "CustomResourceDefinition,Namespace" || strings.Join(reg, ",") != "ConfigMap,Secret" {
		t.Fatalf("priority %v regular %v", prio, reg)
	}
	ns := plan.Priority[1].U
	if ns.GetAnnotations()["keep"] != "me" || ns.GetAnnotations()[AnnotationOwnerID] == "spoofed" {
		t.Errorf("annotations = %v", ns.GetAnnotations())
	}
	if plan.Priority[1].Doc != 4 || plan.Regular[1].Doc != 5 {
		t.Errorf("document indexes: %d %d", plan.Priority[1].Doc, plan.Regular[1].Doc)
	}
	// YAML 1.2 semantics: "on"/"off" stay strings.
	if v, _ := plan.Regular[1].U.Object["stringData"].(map[string]any)["on"].(string); v != "off" {
		t.Errorf("stringData = %v", plan.Regular[1].U.Object["stringData"])
	}
}

func TestPrepareReportsEveryBadDocument(t *testing.T) {
	yaml := "apiVersion: v1\nkind: ConfigMap\n---\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {a: [1]}}\n---\nvalue: .nan\napiVersion: v1\nkind: X\nmetadata: {name: x}\n"
	_, err := prepare(t, yaml)
	if err == nil {
		t.Fatal("expected an error")
	}
	for _, want := range []string{
		"document 1: ConfigMap: metadata.name is required",
		"document 2: Pod: missing apiVersion",
		"document 3: ConfigMap \"c\": metadata.labels must map strings to strings",
		"document 4: value: NaN cannot be represented in JSON",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if !Permanent(err) {
		t.Error("an invalid object is permanent")
	}
}

func TestPrepareEmpty(t *testing.T) {
	for _, y := range []string{"", "---\n", "# nothing\n", "---\n---\n"} {
		plan, err := prepare(t, y)
		if err != nil || len(plan.All()) != 0 {
			t.Errorf("%q: %d objects, %v", y, len(plan.All()), err)
		}
	}
}

func FuzzPrepare(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
		"apiVersion: v1\nkind: List\nitems: [1, {kind: A}]\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, annotations: {a: 1}}\ndata: {1: 2, 3.5: .inf}\n",
		"a: &x [1, *x]\n",
		"? [a, b]\n: c\n",
		"!!binary aGVsbG8=\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\ndata: {t: 2001-12-14t21:59:43.10-05:00, b: !!binary aGk=}\n",
		"metadata: [1]\nkind: A\napiVersion: v1\n",
		"kind: A\napiVersion: v1\nmetadata: {name: n, namespace: {a: b}}\nstatus: {x: 1}\n",
		"x: 18446744073709551615\n",
	} {
		f.Add(s)
	}
	agent := uuid.New()
	f.Fuzz(func(t *testing.T, src string) {
		do := stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New(), YAMLContent: src, YAMLChecksum: "c"}
		plan, err := Prepare(do, agent)
		if err != nil {
			if !Permanent(err) {
				t.Fatalf("a preparation error must be permanent: %v", err)
			}
			return
		}
		for _, o := range plan.All() {
			// The objects must be usable by client-go: deep-copyable (it
			// panics on non-JSON types) and carrying the tracking data.
			c := o.U.DeepCopy()
			if c.GetLabels()[LabelStack] != do.StackID.String() || c.GetAnnotations()[AnnotationOwnerID] != agent.String() {
				t.Fatalf("object not stamped: %v", c.Object)
			}
			if _, err := c.MarshalJSON(); err != nil {
				t.Fatalf("object does not marshal: %v", err)
			}
		}
	})
}
