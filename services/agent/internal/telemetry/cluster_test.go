package telemetry

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/hook"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// envBroker gives the hook's Env a broker whose only call the hook makes
// goes to a fakeBroker.
type envBroker struct {
	hook.Broker
	fb *fakeBroker
}

func (b envBroker) PostTelemetry(ctx context.Context, id uuid.UUID, frames []broker.TelemetryFrame) (broker.TelemetryResult, error) {
	return b.fb.PostTelemetry(ctx, id, frames)
}

func waitSent(t *testing.T, fb *fakeBroker, what string, cond func([]Frame) bool) []Frame {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		fs := fb.sent()
		if cond(fs) {
			return fs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; sent:\n%s", what, describe(fs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHookAgainstTheAPIServer runs the hook against the local
// kube-apiserver: real Pods with the annotations (kwok runs them) and real
// Events. kube-apiserver has no kubelet, so container logs come from a
// fake LogSource behind the same port; everything else is the real watch,
// owner lookup and sender.
func TestHookAgainstTheAPIServer(t *testing.T) {
	env := testenv.ForTest(t)
	cfg, err := env.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	kc, err := kube.New(cfg, kube.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := env.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := testenv.NewNamespace(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	fb := &fakeBroker{}
	src := newFakeLogs()
	agentID := uuid.New()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("TELEMETRY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	hookEnv := agent.Env{AgentID: agentID, Broker: envBroker{fb: fb}, Kube: kc, Logger: log}
	opts := Options{Logs: true, Events: true, MaxTails: 10, Namespace: ns, OwnerCacheCap: 100, Source: src,
		Sender: SenderOptions{FlushEvery: 50 * time.Millisecond}, Reopen: 10 * time.Millisecond}
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, hookEnv, cs, opts) }()
	defer func() { stopRun(); <-done }()

	stack := uuid.New()
	// A Pod that opted in, and one that carries only the stack.
	mk := func(name string, optIn bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Annotations: map[string]string{AnnotationStack: stack.String()}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}}}
		if optIn {
			p.Annotations[AnnotationStreamLogs] = "true"
		}
		p, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	streaming := mk("streaming", true)
	mk("quiet", false)
	key := ns + "/streaming/app"
	// kwok runs the Pod; the tail opens.
	src.waitStreams(t, key)
	_, _ = src.writer(key).Write([]byte(stamp(time.Now(), "hello from the pod")))
	fs := waitSent(t, fb, "the log line", func(fs []Frame) bool { return len(lines(fs)) == 1 })
	l := lines(fs)[0]
	if l.AgentID != agentID || l.StackID != stack || l.Namespace != ns || l.Pod != "streaming" || l.Container != "app" ||
		l.Line != "hello from the pod" {
		t.Fatalf("line = %+v", l)
	}

	// Events: one about an unmanaged ConfigMap, then one about the
	// opted-in Pod. The forwarder handles them in order, so once the
	// second arrives the first was judged.
	cm, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	event := func(name string, obj corev1.ObjectReference, reason string) {
		now := metav1.Now()
		_, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name},
			InvolvedObject: obj, Reason: reason, Message: reason + " message", Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "test"}, FirstTimestamp: now, LastTimestamp: now, Count: 1},
			metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	event("plain.1", corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: ns, Name: "plain", UID: cm.UID}, "Unmanaged")
	event("streaming.1", corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "streaming", UID: streaming.UID}, "BackOff")
	// The scheduler's own events about both Pods (they carry the stack
	// annotation) are forwarded too; the ConfigMap's is not.
	fs = waitSent(t, fb, "the Pod's event", func(fs []Frame) bool {
		for _, e := range events(fs) {
			if e.Reason == "BackOff" {
				return true
			}
		}
		return false
	})
	for _, e := range events(fs) {
		if e.Reason == "Unmanaged" || e.StackID != stack || e.AgentID != agentID {
			t.Fatalf("forwarded %+v", e)
		}
		if e.Reason == "BackOff" && (e.EventType != "Warning" || e.Source == nil || *e.Source != "test" || e.InvolvedObject != (domaintelemetry.ObjectRef{
			APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "streaming", UID: string(streaming.UID)})) {
			t.Fatalf("event = %+v", e)
		}
	}

	// The opt-in is removed: the tail ends.
	patch := []byte(`{"metadata":{"annotations":{"` + AnnotationStreamLogs + `":null}}}`)
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "streaming", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	src.waitStreams(t)
	// Opted in again, then deleted: the tail ends again.
	patch = []byte(`{"metadata":{"annotations":{"` + AnnotationStreamLogs + `":"true"}}}`)
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "streaming", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	src.waitStreams(t, key)
	zero := int64(0)
	if err := cs.CoreV1().Pods(ns).Delete(ctx, "streaming", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	src.waitStreams(t)
	if got := len(lines(fb.sent())); got != 1 {
		t.Fatalf("%d lines sent, want 1", got)
	}
}
