package telemetry

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/metadata"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// LabelStack is the label the reconciler stamps next to the annotation on
// every object it applies (internal/reconcile prepare.go).
const LabelStack = "k8s.brokkr.io/stack"

// Owners tells which stack an Event's object belongs to: uuid.Nil for an
// object no stack manages. An error means the answer is unknown now.
type Owners interface {
	StackOf(ctx context.Context, ref corev1.ObjectReference) (uuid.UUID, error)
}

// Cluster is what the owner lookup needs from the Kubernetes client
// (*kube.Client).
type Cluster interface {
	Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error)
	MetadataClient() metadata.Interface
}

// ownerTTL is how long an answer stays cached (0.9.1's 5 minutes).
const ownerTTL = 5 * time.Minute

// MetadataOwners reads the involved object's metadata (one GET per object
// not seen lately; answers are kept in an LRU of at most cap entries for
// five minutes): an object carrying k8s.brokkr.io/stack, as label or
// annotation, belongs to that stack, and an object without it belongs to
// its controller's (owner references, up to three levels: a Deployment's
// Pods through their ReplicaSet). Objects the agent may not read (403),
// kinds the cluster does not serve and objects already gone count as
// unmanaged.
type MetadataOwners struct {
	kube  Cluster
	cache *cache.LRUExpireCache
}

// NewMetadataOwners returns the lookup, caching at most capacity objects.
func NewMetadataOwners(k Cluster, capacity int) *MetadataOwners {
	return &MetadataOwners{kube: k, cache: cache.NewLRUExpireCache(max(capacity, 1))}
}

func refKey(ref corev1.ObjectReference) string {
	if ref.UID != "" {
		return string(ref.UID)
	}
	return ref.APIVersion + "/" + ref.Kind + "/" + ref.Namespace + "/" + ref.Name
}

// maxOwnerDepth bounds the walk up controller owner references (Pod,
// ReplicaSet, Deployment; Pod, Job, CronJob).
const maxOwnerDepth = 3

// StackOf implements Owners.
func (o *MetadataOwners) StackOf(ctx context.Context, ref corev1.ObjectReference) (uuid.UUID, error) {
	return o.stackOf(ctx, ref, 0)
}

func (o *MetadataOwners) stackOf(ctx context.Context, ref corev1.ObjectReference, depth int) (uuid.UUID, error) {
	key := refKey(ref)
	if v, ok := o.cache.Get(key); ok {
		return v.(uuid.UUID), nil
	}
	id, err := o.lookup(ctx, ref, depth)
	if err != nil {
		return uuid.Nil, err
	}
	o.cache.Add(key, id, ownerTTL)
	return id, nil
}

func (o *MetadataOwners) lookup(ctx context.Context, ref corev1.ObjectReference, depth int) (uuid.UUID, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || ref.Kind == "" || ref.Name == "" {
		return uuid.Nil, nil
	}
	m, err := o.kube.Mapping(gv.WithKind(ref.Kind))
	if err != nil {
		return uuid.Nil, nil // a kind the cluster does not serve
	}
	ri := o.kube.MetadataClient().Resource(m.Resource)
	var obj *metav1.PartialObjectMetadata
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		obj, err = ri.Namespace(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	} else {
		obj, err = ri.Get(ctx, ref.Name, metav1.GetOptions{})
	}
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err), apierrors.IsMethodNotSupported(err):
		return uuid.Nil, nil
	case err != nil:
		return uuid.Nil, err
	}
	if ref.UID != "" && obj.UID != ref.UID {
		return uuid.Nil, nil // another object of the same name
	}
	if id, ok := StackOf(obj.Annotations); ok {
		return id, nil
	}
	if id, ok := StackOf(map[string]string{AnnotationStack: obj.Labels[LabelStack]}); ok {
		return id, nil
	}
	// Objects a stack's workload creates (its ReplicaSets, Pods, Jobs)
	// carry no marker of their own unless their template sets one: they
	// belong to their controller's stack.
	if c := metav1.GetControllerOfNoCopy(obj); c != nil && depth < maxOwnerDepth {
		return o.stackOf(ctx, corev1.ObjectReference{APIVersion: c.APIVersion, Kind: c.Kind, Namespace: ref.Namespace,
			Name: c.Name, UID: c.UID}, depth+1)
	}
	return uuid.Nil, nil
}

// Forwarder turns the Events of stack-managed objects into k8s_event
// frames. Handle never blocks: events wait in a bounded queue for Run's
// owner lookups; when the queue is full they are dropped (and counted).
type Forwarder struct {
	owners  Owners
	out     Emitter
	agentID uuid.UUID
	log     *slog.Logger
	now     func() time.Time
	queue   chan *corev1.Event
}

// NewForwarder returns a forwarder with room for queue pending events.
func NewForwarder(owners Owners, out Emitter, agentID uuid.UUID, queue int, now func() time.Time, log *slog.Logger) *Forwarder {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{owners: owners, out: out, agentID: agentID, log: log, now: now, queue: make(chan *corev1.Event, max(queue, 1))}
}

// Handle queues an Event for forwarding; false means the queue was full
// and the event is dropped.
func (f *Forwarder) Handle(ev *corev1.Event) bool {
	select {
	case f.queue <- ev:
		return true
	default:
		return false
	}
}

// Run forwards queued events until ctx ends.
func (f *Forwarder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-f.queue:
			f.Forward(ctx, ev)
		}
	}
}

// Forward emits ev when its object belongs to a stack.
func (f *Forwarder) Forward(ctx context.Context, ev *corev1.Event) {
	stackID, err := f.owners.StackOf(ctx, ev.InvolvedObject)
	if err != nil {
		f.log.Debug("could not tell whether an event's object belongs to a stack; event skipped",
			"kind", ev.InvolvedObject.Kind, "namespace", ev.InvolvedObject.Namespace, "name", ev.InvolvedObject.Name, "error", err)
		return
	}
	if stackID == uuid.Nil {
		return
	}
	b := EventBody(f.agentID, stackID, ev, f.now())
	if b.Validate() != nil {
		return // the broker refuses such a frame, and the whole batch with it
	}
	f.out.Emit(EventFrame(b))
}

// EventBody maps a core/v1 Event to a k8s_event body. observed_at is when
// the event last happened (lastTimestamp, the series' last observation,
// eventTime, firstTimestamp, creation), else now; an event without a type
// is Normal (as Kubernetes reads it); the message is cut at MaxLineBytes;
// source is always sent, "" when the event names no component.
func EventBody(agentID, stackID uuid.UUID, ev *corev1.Event, now time.Time) domaintelemetry.K8sEvent {
	observed := now
	switch {
	case !ev.LastTimestamp.IsZero():
		observed = ev.LastTimestamp.Time
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		observed = ev.Series.LastObservedTime.Time
	case !ev.EventTime.IsZero():
		observed = ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		observed = ev.FirstTimestamp.Time
	case !ev.CreationTimestamp.IsZero():
		observed = ev.CreationTimestamp.Time
	}
	source := ev.Source.Component
	if source == "" {
		source = ev.ReportingController
	}
	typ := ev.Type
	if typ == "" {
		typ = corev1.EventTypeNormal
	}
	io := ev.InvolvedObject
	return domaintelemetry.K8sEvent{AgentID: agentID, StackID: stackID, ObservedAt: observed, Reason: ev.Reason,
		Message: domaintelemetry.TruncateLine(ev.Message), EventType: typ, Source: &source,
		InvolvedObject: domaintelemetry.ObjectRef{APIVersion: io.APIVersion, Kind: io.Kind,
			Namespace: io.Namespace, Name: io.Name, UID: string(io.UID)}}
}

// repeated reports whether an updated Event is a new occurrence (its count
// or series grew, or it happened again) rather than a resync of the same.
func repeated(old, cur *corev1.Event) bool {
	if old == nil || old.ResourceVersion == cur.ResourceVersion {
		return false
	}
	if cur.Count != old.Count || !cur.LastTimestamp.Equal(&old.LastTimestamp) {
		return true
	}
	if cur.Series != nil && (old.Series == nil || cur.Series.Count != old.Series.Count) {
		return true
	}
	return false
}
