package telemetry

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func newTestStreamer(t *testing.T, src LogSource, out Emitter, maxTails int) *Streamer {
	ctx, cancel := context.WithCancel(context.Background())
	s := NewStreamer(ctx, src, out, uuid.New(), maxTails, nil, slog.New(slog.DiscardHandler))
	s.reopen = time.Millisecond
	t.Cleanup(func() { cancel(); s.Stop() })
	return s
}

func pod(name string, stack uuid.UUID, optIn string, phase corev1.PodPhase, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name),
		Annotations: map[string]string{}}, Status: corev1.PodStatus{Phase: phase}}
	if stack != uuid.Nil {
		p.Annotations[AnnotationStack] = stack.String()
	}
	if optIn != "" {
		p.Annotations[AnnotationStreamLogs] = optIn
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	return p
}

func TestStreamerFollowsOptedInRunningPodsOnly(t *testing.T) {
	stack := uuid.New()
	cases := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"both annotations, running", pod("a", stack, "true", corev1.PodRunning, "app"), true},
		{"no opt-in", pod("a", stack, "", corev1.PodRunning, "app"), false},
		{"opt-in not true", pod("a", stack, "yes", corev1.PodRunning, "app"), false},
		{"no stack", pod("a", uuid.Nil, "true", corev1.PodRunning, "app"), false},
		{"pending", pod("a", stack, "true", corev1.PodPending, "app"), false},
	}
	for _, c := range cases {
		if got := PodStateOf(c.pod).Streams(); got != c.want {
			t.Errorf("%s: Streams() = %v, want %v", c.name, got, c.want)
		}
	}
	bad := pod("a", uuid.Nil, "true", corev1.PodRunning, "app")
	bad.Annotations[AnnotationStack] = "not-a-uuid"
	if PodStateOf(bad).Streams() {
		t.Error("a stack annotation that is no UUID streams")
	}
}

func TestStreamerTailsEachContainerAndStopsWhenTheOptInGoes(t *testing.T) {
	src := newFakeLogs()
	rec := newRecorder()
	s := newTestStreamer(t, src, rec, 10)
	stack := uuid.New()
	p := pod("web-1", stack, "true", corev1.PodRunning, "app", "sidecar")
	s.Update(PodStateOf(p))
	src.waitStreams(t, "ns/web-1/app", "ns/web-1/sidecar")
	if got := s.Tails(); len(got) != 2 {
		t.Fatalf("tails = %v", got)
	}
	_, _ = src.writer("ns/web-1/app").Write([]byte(stamp(time.Now(), "hello")))
	fs := rec.waitFor(t, "the line", func(fs []Frame) bool { return len(lines(fs)) == 1 })
	l := lines(fs)[0]
	if l.StackID != stack || l.Namespace != "ns" || l.Pod != "web-1" || l.Container != "app" || l.Line != "hello" {
		t.Fatalf("line = %+v", l)
	}
	// The annotation is removed: both tails end.
	delete(p.Annotations, AnnotationStreamLogs)
	s.Update(PodStateOf(p))
	src.waitStreams(t)
	if got := s.Tails(); len(got) != 0 {
		t.Fatalf("tails after the opt-in went = %v", got)
	}
	// Back on, then deleted.
	p.Annotations[AnnotationStreamLogs] = "true"
	s.Update(PodStateOf(p))
	src.waitStreams(t, "ns/web-1/app", "ns/web-1/sidecar")
	s.Remove("ns", "web-1")
	src.waitStreams(t)
}

func TestStreamerBoundsConcurrentTails(t *testing.T) {
	src := newFakeLogs()
	s := newTestStreamer(t, src, newRecorder(), 1)
	stack := uuid.New()
	s.Update(PodStateOf(pod("a", stack, "true", corev1.PodRunning, "app")))
	s.Update(PodStateOf(pod("b", stack, "true", corev1.PodRunning, "app")))
	src.waitStreams(t, "ns/a/app")
	if got := s.Tails(); len(got) != 1 {
		t.Fatalf("tails = %v, want 1 (max_log_tails)", got)
	}
	s.Remove("ns", "a") // a slot frees: b starts
	src.waitStreams(t, "ns/b/app")
}

func TestStreamerReadsPodsRunningAtStartFromThen(t *testing.T) {
	src := newFakeLogs()
	s := newTestStreamer(t, src, newRecorder(), 10)
	stack := uuid.New()
	old := pod("old", stack, "true", corev1.PodRunning, "app")
	old.Status.StartTime = &metav1.Time{Time: s.started.Add(-time.Hour)}
	fresh := pod("fresh", stack, "true", corev1.PodRunning, "app")
	fresh.Status.StartTime = &metav1.Time{Time: s.started.Add(time.Second)}
	s.Update(PodStateOf(old))
	s.Update(PodStateOf(fresh))
	src.waitStreams(t, "ns/old/app", "ns/fresh/app")
	src.mu.Lock()
	defer src.mu.Unlock()
	if got := src.since["ns/old/app"][0]; got == nil || !got.Equal(s.started) {
		t.Errorf("a Pod running before the agent started is read since %v, want %v", got, s.started)
	}
	if got := src.since["ns/fresh/app"][0]; got != nil {
		t.Errorf("a Pod started later is read since %v, want its first line", got)
	}
}
