package health

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
)

func pod(name string, mutate func(p *corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func waiting(reason, msg string) func(p *corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions[0].Status = corev1.ConditionFalse
		p.Status.ContainerStatuses[0].Ready = false
		p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
	}
}

func deployment(conditions ...map[string]any) inspect.Live {
	conds := []any{map[string]any{"type": "Available", "status": "True"}}
	for _, c := range conditions {
		conds = append(conds, c)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "ns", "generation": int64(1)},
		"spec":     map[string]any{"replicas": int64(2)},
		"status": map[string]any{"observedGeneration": int64(1), "replicas": int64(2), "updatedReplicas": int64(2),
			"readyReplicas": int64(2), "availableReplicas": int64(2), "conditions": conds},
	}}
	return inspect.Live{Target: inspect.Target{Kind: "Deployment", Group: "apps", Namespace: "ns", Name: "web"}, Object: u}
}

func TestEvaluate(t *testing.T) {
	web := deployment()
	webKey := web.Target.Key()
	twoPods := func(a, b corev1.Pod) inspect.PodSet {
		return inspect.PodSet{Pods: []corev1.Pod{a, b}, ByWorkload: map[string]int{webKey: 2}}
	}
	cm := inspect.Live{Target: inspect.Target{Kind: "ConfigMap", Namespace: "ns", Name: "c"}, MetadataOnly: true,
		Object: &unstructured.Unstructured{Object: map[string]any{}}}
	tests := []struct {
		name       string
		live       []inspect.Live
		pods       inspect.PodSet
		want       string
		conditions []string
		ready      [2]int // pods_ready, pods_total
		resources  int
	}{
		{name: "nothing found", want: "unknown", conditions: []string{}},
		{name: "metadata-only objects exist", live: []inspect.Live{cm}, want: "healthy", conditions: []string{}},
		{name: "running and ready", live: []inspect.Live{web}, pods: twoPods(pod("a", nil), pod("b", nil)),
			want: "healthy", conditions: []string{}, ready: [2]int{2, 2}},
		{name: "a pod that is not ready yet is not an issue", live: []inspect.Live{web},
			pods: twoPods(pod("a", nil), pod("b", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse })),
			want: "healthy", conditions: []string{}, ready: [2]int{1, 2}},
		{name: "image pull back-off", live: []inspect.Live{web},
			pods: twoPods(pod("a", waiting("ImagePullBackOff", `Back-off pulling image "x:bad"`)), pod("b", nil)),
			want: "degraded", conditions: []string{"ImagePullBackOff"}, ready: [2]int{1, 2}, resources: 1},
		{name: "every pod crash looping is still degraded", live: []inspect.Live{web},
			pods: twoPods(pod("a", waiting("CrashLoopBackOff", "")), pod("b", waiting("CreateContainerError", ""))),
			want: "degraded", conditions: []string{"CrashLoopBackOff", "CreateContainerError"}, ready: [2]int{0, 2}, resources: 2},
		{name: "an unknown waiting reason is no issue", live: []inspect.Live{web},
			pods: twoPods(pod("a", waiting("ContainerCreating", "")), pod("b", nil)),
			want: "healthy", conditions: []string{}, ready: [2]int{1, 2}},
		{name: "OOMKilled last time", live: []inspect.Live{web}, pods: twoPods(pod("a", func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "OOMKilled"}
		}), pod("b", nil)), want: "degraded", conditions: []string{"OOMKilled"}, ready: [2]int{2, 2}, resources: 1},
		{name: "init container", live: []inspect.Live{web}, pods: twoPods(pod("a", func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init",
				State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
		}), pod("b", nil)), want: "degraded", conditions: []string{"InitContainer:ErrImagePull"}, ready: [2]int{2, 2}, resources: 1},
		{name: "unschedulable", live: []inspect.Live{web}, pods: twoPods(pod("a", func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodPending
			p.Status.ContainerStatuses = nil
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available"}}
		}), pod("b", nil)), want: "degraded", conditions: []string{"Unschedulable"}, ready: [2]int{1, 2}, resources: 1},
		{name: "a failed pod beats a degraded one, whatever the order", live: []inspect.Live{web},
			pods: twoPods(pod("a", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed; p.Status.Reason = "Evicted" }),
				pod("b", waiting("ImagePullBackOff", ""))),
			want: "failing", conditions: []string{"ImagePullBackOff", "PodFailed"}, ready: [2]int{1, 2}, resources: 2},
		{name: "unknown phase does not hide healthy pods", live: []inspect.Live{web},
			pods: twoPods(pod("a", func(p *corev1.Pod) { p.Status.Phase = corev1.PodUnknown }), pod("b", nil)),
			want: "healthy", conditions: []string{}, ready: [2]int{2, 2}, resources: 1},
		{name: "progress deadline exceeded", live: []inspect.Live{deployment(map[string]any{"type": "Progressing", "status": "False",
			"reason": "ProgressDeadlineExceeded", "message": "ReplicaSet web-1 has timed out progressing."})},
			pods: inspect.PodSet{ByWorkload: map[string]int{webKey: 0}},
			want: "failing", conditions: []string{"ProgressDeadlineExceeded"}, resources: 1},
		{name: "replica failure", live: []inspect.Live{deployment(map[string]any{"type": "ReplicaFailure", "status": "True",
			"reason": "FailedCreate", "message": "exceeded quota"})}, pods: twoPods(pod("a", nil), pod("b", nil)),
			want: "degraded", conditions: []string{"ReplicaFailure"}, ready: [2]int{2, 2}, resources: 1},
		{name: "applied object gone", live: []inspect.Live{cm, {Target: inspect.Target{Kind: "Service", Namespace: "ns", Name: "s"}, Missing: true}},
			want: "degraded", conditions: []string{"ResourceMissing"}, resources: 1},
		{name: "a read error alone is unknown", live: []inspect.Live{{Target: inspect.Target{Kind: "Widget", Name: "w"}, Err: errors.New("forbidden")}},
			want: "unknown", conditions: []string{}, resources: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sum := Evaluate(tt.live, tt.pods)
			if got != tt.want {
				t.Errorf("status = %s, want %s (summary %+v)", got, tt.want, sum)
			}
			if !slices.Equal(sum.Conditions, tt.conditions) {
				t.Errorf("conditions = %q, want %q", sum.Conditions, tt.conditions)
			}
			if sum.PodsReady != tt.ready[0] || sum.PodsTotal != tt.ready[1] {
				t.Errorf("pods %d/%d, want %d/%d", sum.PodsReady, sum.PodsTotal, tt.ready[0], tt.ready[1])
			}
			if len(sum.Resources) != tt.resources {
				t.Errorf("resources = %+v, want %d", sum.Resources, tt.resources)
			}
		})
	}
}

func TestEvaluateNamesTheReason(t *testing.T) {
	web := deployment()
	_, sum := Evaluate([]inspect.Live{web}, inspect.PodSet{Pods: []corev1.Pod{
		pod("web-1", waiting("ImagePullBackOff", `Back-off pulling image "myapp:invalid"`))}, ByWorkload: map[string]int{web.Target.Key(): 1}})
	r := sum.Resources[0]
	if r.Kind != "Pod" || r.Name != "web-1" || r.Namespace != "ns" || r.Ready || r.Message == nil ||
		*r.Message != `container app: ImagePullBackOff: Back-off pulling image "myapp:invalid"` {
		t.Fatalf("resource = %+v (%s)", r, *r.Message)
	}
}
