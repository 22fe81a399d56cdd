package workorders

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// applyCluster is the part of Cluster applyAll uses (Apply), recording
// each call; any other call panics on the nil embedded interface.
type applyCluster struct {
	Cluster
	// reject answers the dry-run of the named object with an error.
	reject map[string]error

	mu    sync.Mutex
	calls []string // "dry ConfigMap a" / "apply ConfigMap a"
	opts  []kube.ApplyOptions
	objs  []*unstructured.Unstructured
}

func (c *applyCluster) Apply(_ context.Context, u *unstructured.Unstructured, o kube.ApplyOptions) (*unstructured.Unstructured, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	verb := "apply"
	if o.DryRun {
		verb = "dry"
	}
	c.calls = append(c.calls, verb+" "+u.GetKind()+" "+u.GetName())
	c.opts = append(c.opts, o)
	c.objs = append(c.objs, u.DeepCopy())
	if err := c.reject[u.GetName()]; err != nil && o.DryRun {
		return nil, err
	}
	return u, nil
}

const applyAllYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: jobs}
---
apiVersion: v1
kind: Namespace
metadata: {name: jobs}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: jobs}
`

// TestApplyAll: Namespaces first, then every other object dry-run before
// any is applied, so one bad object changes nothing and every problem is
// reported at once; every call uses the work orders' field manager and
// every object carries the order's label and the agent's annotation.
func TestApplyAll(t *testing.T) {
	t.Parallel()
	invalid := func(name string) error {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, name, nil)
	}
	cases := []struct {
		name       string
		reject     map[string]error
		wantCalls  []string
		wantReason Reason // "": success
		wantInMsg  []string
	}{
		{name: "valid", wantCalls: []string{"apply Namespace jobs", "dry ConfigMap a", "dry ConfigMap b", "apply ConfigMap a", "apply ConfigMap b"}},
		{name: "two rejected", reject: map[string]error{"a": invalid("a"), "b": invalid("b")},
			wantCalls:  []string{"apply Namespace jobs", "dry ConfigMap a", "dry ConfigMap b"},
			wantReason: ReasonRejected, wantInMsg: []string{"ConfigMap jobs/a (document 1)", "ConfigMap jobs/b (document 3)"}},
		{name: "kind not served", reject: map[string]error{"b": &kube.UnresolvedKindError{
			GVK: schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, Err: errors.New("no match")}},
			wantCalls:  []string{"apply Namespace jobs", "dry ConfigMap a", "dry ConfigMap b"},
			wantReason: ReasonMissingKind, wantInMsg: []string{"ConfigMap jobs/b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl := &applyCluster{reject: c.reject}
			agentID := uuid.New()
			e := NewExecutor(cl, ExecutorOptions{AgentID: agentID, CallRetry: kube.Backoff{Attempts: 1}})
			task := Task{Order: workorder.WorkOrder{ID: uuid.New(), WorkType: workorder.TypeCustom, YAMLContent: applyAllYAML}}
			objs, err := parse(task)
			if err != nil {
				t.Fatal(err)
			}
			applied, err := e.applyAll(context.Background(), task, objs)
			if !slices.Equal(cl.calls, c.wantCalls) {
				t.Errorf("calls = %q, want %q", cl.calls, c.wantCalls)
			}
			for i, o := range cl.opts {
				if o.FieldManager != FieldManager || !o.Force {
					t.Errorf("call %d (%s): options %+v, want field manager %s, forced", i, cl.calls[i], o, FieldManager)
				}
				u := cl.objs[i]
				if u.GetLabels()[LabelWorkOrderID] != task.Order.ID.String() || u.GetAnnotations()[AnnotationOwnerID] != agentID.String() {
					t.Errorf("call %d (%s): labels %v annotations %v, want the order's id and the agent's", i, cl.calls[i], u.GetLabels(), u.GetAnnotations())
				}
			}
			if c.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, u := range applied {
					got = append(got, fmt.Sprintf("%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName()))
				}
				if want := []string{"Namespace /jobs", "ConfigMap jobs/a", "ConfigMap jobs/b"}; !slices.Equal(got, want) {
					t.Errorf("applied = %q, want %q", got, want)
				}
				return
			}
			var f *Failure
			if !errors.As(err, &f) || f.Reason != c.wantReason || f.Retryable() {
				t.Fatalf("err = %v, want a non-retryable %s failure", err, c.wantReason)
			}
			for _, s := range c.wantInMsg {
				if !strings.Contains(f.Message, s) {
					t.Errorf("message %q does not name %q", f.Message, s)
				}
			}
		})
	}
}
