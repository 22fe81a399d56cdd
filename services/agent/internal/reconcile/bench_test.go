package reconcile

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func configMaps(ns string, n, version int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  namespace: %s\ndata:\n  version: \"%d\"\n  index: \"%d\"\n", i, ns, version, i)
	}
	return sb.String()
}

// BenchmarkApplyConfigMaps applies one deployment object of N ConfigMaps
// with the agent's reconciler (parse, stamp, dry-run every object, apply
// every object, prune from the stored inventory) and, against the same
// apiserver in the same run, a bare client-go loop that only server-side
// applies the same N objects.
// Every iteration changes every object. "qps=50" is the agent's client-side
// rate limit (kube.Options default); "unlimited" removes it.
func BenchmarkApplyConfigMaps(b *testing.B) {
	env := testenv.ForTest(b)
	cfg, err := env.RESTConfig()
	if err != nil {
		b.Fatal(err)
	}
	for _, limit := range []struct {
		name string
		qps  float32
	}{{"qps=50", 0}, {"unlimited", -1}} {
		kc, err := kube.New(cfg, kube.Options{QPS: limit.qps})
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/agent/%d", limit.name, n), func(b *testing.B) {
				ns := testenv.NewNamespace(b, env)
				agentID := uuid.New()
				rec := New(kc, Options{AgentID: agentID, Inventory: NewConfigMapInventory(kc.Dynamic, ns, agentID)})
				stackID := uuid.New()
				version := 0
				b.ResetTimer()
				for b.Loop() {
					version++
					yaml := configMaps(ns, n, version)
					do := stack.DeploymentObject{ID: uuid.New(), StackID: stackID, SequenceID: int64(version),
						YAMLContent: yaml, YAMLChecksum: stack.Checksum(yaml)}
					res, err := rec.Apply(context.Background(), do)
					if err != nil || len(res.Applied) != n {
						b.Fatalf("apply: %v (%d applied)", err, len(res.Applied))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*n), "ms/object")
			})
			b.Run(fmt.Sprintf("%s/client-go-ssa/%d", limit.name, n), func(b *testing.B) {
				ns := testenv.NewNamespace(b, env)
				dyn, err := dynamic.NewForConfig(kc.Config())
				if err != nil {
					b.Fatal(err)
				}
				ri := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(ns)
				version := 0
				b.ResetTimer()
				for b.Loop() {
					version++
					for i := range n {
						u := &unstructured.Unstructured{Object: map[string]any{
							"apiVersion": "v1", "kind": "ConfigMap",
							"metadata": map[string]any{"name": fmt.Sprintf("cm-%04d", i), "namespace": ns},
							"data":     map[string]any{"version": fmt.Sprint(version), "index": fmt.Sprint(i)},
						}}
						if _, err := ri.Apply(context.Background(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "bench", Force: true}); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*n), "ms/object")
			})
		}
	}
}
