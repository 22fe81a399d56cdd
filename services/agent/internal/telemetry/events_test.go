package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

type fakeCluster struct {
	mapper meta.RESTMapper
	md     *metadatafake.FakeMetadataClient
}

func (f fakeCluster) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	return f.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
}
func (f fakeCluster) MetadataClient() metadata.Interface { return f.md }

func objMeta(apiVersion, kind, ns, name, uid string, annotations, labels map[string]string, owner *metav1.OwnerReference) *metav1.PartialObjectMetadata {
	o := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: typesUID(uid), Annotations: annotations, Labels: labels}}
	if owner != nil {
		o.OwnerReferences = []metav1.OwnerReference{*owner}
	}
	return o
}

func controller(apiVersion, kind, name, uid string) *metav1.OwnerReference {
	yes := true
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: typesUID(uid), Controller: &yes}
}

func newFakeCluster(objs ...runtime.Object) fakeCluster {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Node"}, meta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, meta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, meta.RESTScopeNamespace)
	scheme := metadatafake.NewTestScheme()
	_ = metav1.AddMetaToScheme(scheme)
	return fakeCluster{mapper: m, md: metadatafake.NewSimpleMetadataClient(scheme, objs...)}
}

func ref(apiVersion, kind, ns, name, uid string) corev1.ObjectReference {
	return corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name, UID: typesUID(uid)}
}

func TestMetadataOwnersFindTheStack(t *testing.T) {
	stack, other := uuid.New(), uuid.New()
	ann := map[string]string{AnnotationStack: stack.String()}
	k := newFakeCluster(
		objMeta("apps/v1", "Deployment", "ns", "web", "d1", ann, nil, nil),
		objMeta("apps/v1", "ReplicaSet", "ns", "web-1", "r1", nil, nil, controller("apps/v1", "Deployment", "web", "d1")),
		objMeta("v1", "Pod", "ns", "web-1-a", "p1", nil, nil, controller("apps/v1", "ReplicaSet", "web-1", "r1")),
		objMeta("v1", "Pod", "ns", "opted", "p2", map[string]string{AnnotationStack: other.String(), AnnotationStreamLogs: "true"}, nil, nil),
		objMeta("v1", "ConfigMap", "ns", "labelled", "c1", nil, map[string]string{LabelStack: stack.String()}, nil),
		objMeta("v1", "ConfigMap", "ns", "plain", "c2", nil, nil, nil),
		objMeta("v1", "Node", "", "n1", "n1", nil, nil, nil),
	)
	o := NewMetadataOwners(k, 100)
	ctx := context.Background()
	cases := []struct {
		name string
		ref  corev1.ObjectReference
		want uuid.UUID
	}{
		{"annotated workload", ref("apps/v1", "Deployment", "ns", "web", "d1"), stack},
		{"pod of the workload, through its ReplicaSet", ref("v1", "Pod", "ns", "web-1-a", "p1"), stack},
		{"opted-in pod", ref("v1", "Pod", "ns", "opted", "p2"), other},
		{"labelled object", ref("v1", "ConfigMap", "ns", "labelled", "c1"), stack},
		{"unmanaged object", ref("v1", "ConfigMap", "ns", "plain", "c2"), uuid.Nil},
		{"cluster-scoped unmanaged", ref("v1", "Node", "", "n1", "n1"), uuid.Nil},
		{"gone", ref("v1", "Pod", "ns", "gone", "p9"), uuid.Nil},
		{"same name, other object", ref("apps/v1", "Deployment", "ns", "web", "d-old"), uuid.Nil},
		{"kind not served", ref("example.com/v1", "Widget", "ns", "w", "w1"), uuid.Nil},
	}
	for _, c := range cases {
		got, err := o.StackOf(ctx, c.ref)
		if err != nil || got != c.want {
			t.Errorf("%s: StackOf = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	// Answers are cached: a second lookup reads nothing.
	before := len(k.md.Actions())
	if got, _ := o.StackOf(ctx, ref("v1", "Pod", "ns", "web-1-a", "p1")); got != stack {
		t.Fatal("cached answer differs")
	}
	if after := len(k.md.Actions()); after != before {
		t.Fatalf("a cached object was read again (%d → %d requests)", before, after)
	}
}

func TestMetadataOwnersReportTransientErrors(t *testing.T) {
	k := newFakeCluster()
	k.md.PrependReactor("get", "*", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("apiserver unreachable")
	})
	if _, err := NewMetadataOwners(k, 10).StackOf(context.Background(), ref("v1", "Pod", "ns", "x", "u")); err == nil {
		t.Fatal("want the error, not an answer to cache")
	}
}

type staticOwners map[string]uuid.UUID

func (s staticOwners) StackOf(_ context.Context, r corev1.ObjectReference) (uuid.UUID, error) {
	return s[r.Name], nil
}

func TestForwarderForwardsEventsOfStackObjectsOnly(t *testing.T) {
	stack := uuid.New()
	rec := newRecorder()
	agentID := uuid.New()
	f := NewForwarder(staticOwners{"web": stack}, rec, agentID, 10, nil, nil)
	last := metav1.NewTime(t0.Add(time.Minute))
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web.1", Namespace: "ns"}, Reason: "ScalingReplicaSet",
		Message: "Scaled up", Type: "Normal", Source: corev1.EventSource{Component: "deployment-controller"},
		LastTimestamp: last, InvolvedObject: ref("apps/v1", "Deployment", "ns", "web", "d1")}
	f.Forward(context.Background(), ev)
	f.Forward(context.Background(), &corev1.Event{Reason: "R", InvolvedObject: ref("v1", "ConfigMap", "ns", "plain", "c")})
	// Without a reason the broker would refuse the frame and its batch.
	f.Forward(context.Background(), &corev1.Event{InvolvedObject: ref("apps/v1", "Deployment", "ns", "web", "d1")})
	fs := rec.all()
	if len(fs) != 1 || fs[0].Type != domaintelemetry.TypeK8sEvent {
		t.Fatalf("frames: %s", describe(fs))
	}
	want := `{"agent_id":"` + agentID.String() + `","stack_id":"` + stack.String() + `","observed_at":"2026-12-07T02:01:00Z",` +
		`"reason":"ScalingReplicaSet","message":"Scaled up","event_type":"Normal","source":"deployment-controller",` +
		`"involved_object":{"api_version":"apps/v1","kind":"Deployment","namespace":"ns","name":"web","uid":"d1"}}`
	if string(fs[0].Body) != want {
		t.Fatalf("body\n got %s\nwant %s", fs[0].Body, want)
	}
}

func TestEventBodyObservedAtAndSource(t *testing.T) {
	now := t0.Add(time.Hour)
	ev := &corev1.Event{EventTime: metav1.NewMicroTime(t0), ReportingController: "kubelet"}
	b := EventBody(uuid.Nil, uuid.Nil, ev, now)
	if !b.ObservedAt.Equal(t0) || b.Source == nil || *b.Source != "kubelet" {
		t.Fatalf("events.k8s.io-style event: %+v", b)
	}
	if b := EventBody(uuid.Nil, uuid.Nil, &corev1.Event{}, now); !b.ObservedAt.Equal(now) || b.EventType != "Normal" {
		t.Fatalf("no time and no type at all: %v, %q", b.ObservedAt, b.EventType)
	} else if b.Source == nil || *b.Source != "" {
		t.Fatalf("no source: %v, want \"\" (sent as \"source\":\"\", never null)", b.Source)
	}
}

func TestRepeated(t *testing.T) {
	a := &corev1.Event{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "1"}, Count: 1}
	same := a.DeepCopy()
	resync := a.DeepCopy()
	resync.ResourceVersion = "2"
	again := a.DeepCopy()
	again.ResourceVersion, again.Count = "3", 2
	if repeated(a, same) || repeated(a, resync) || !repeated(a, again) || repeated(nil, a) {
		t.Fatal("repeated misjudges")
	}
}

func TestForwarderQueueIsBounded(t *testing.T) {
	f := NewForwarder(staticOwners{}, newRecorder(), uuid.New(), 2, nil, nil)
	var accepted []bool
	for range 3 {
		accepted = append(accepted, f.Handle(&corev1.Event{}))
	}
	if !accepted[0] || !accepted[1] || accepted[2] {
		t.Fatalf("accepted = %v: the third event should be refused by a queue of 2", accepted)
	}
}
