package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"k8s.io/apimachinery/pkg/types"

	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// recorder is an Emitter that keeps every frame.
type recorder struct {
	mu     sync.Mutex
	frames []Frame
	signal chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (r *recorder) Emit(f Frame) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

func (r *recorder) all() []Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Frame(nil), r.frames...)
}

// waitFor waits until cond holds on the frames (the deadline only bounds a
// broken test; nothing is asserted about time).
func (r *recorder) waitFor(t *testing.T, what string, cond func([]Frame) bool) []Frame {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		fs := r.all()
		if cond(fs) {
			return fs
		}
		select {
		case <-r.signal:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waiting for %s; frames: %s", what, describe(fs))
		}
	}
}

func describe(fs []Frame) string {
	out := ""
	for _, f := range fs {
		out += f.Type + " " + string(f.Body) + "\n"
	}
	return out
}

// bodies decodes the bodies of the frames of one type.
func bodies[T any](fs []Frame, typ string) []T {
	var out []T
	for _, f := range fs {
		if f.Type == typ {
			var b T
			_ = json.Unmarshal(f.Body, &b)
			out = append(out, b)
		}
	}
	return out
}

func lines(fs []Frame) []domaintelemetry.PodLogLine {
	return bodies[domaintelemetry.PodLogLine](fs, domaintelemetry.TypePodLogLine)
}

func gaps(fs []Frame) []domaintelemetry.LogGap {
	return bodies[domaintelemetry.LogGap](fs, domaintelemetry.TypeLogGap)
}

func events(fs []Frame) []domaintelemetry.K8sEvent {
	return bodies[domaintelemetry.K8sEvent](fs, domaintelemetry.TypeK8sEvent)
}

// fakeLogs is a LogSource whose streams the test writes: each Stream call
// opens a pipe registered under "namespace/pod/container"; the pipe closes
// when the caller's context ends (as a followed log does).
type fakeLogs struct {
	mu      sync.Mutex
	open    map[string]*io.PipeWriter
	since   map[string][]*time.Time
	changed chan struct{}
}

func newFakeLogs() *fakeLogs {
	return &fakeLogs{open: map[string]*io.PipeWriter{}, since: map[string][]*time.Time{}, changed: make(chan struct{}, 64)}
}

func (f *fakeLogs) Stream(ctx context.Context, ns, pod, ctr string, since *time.Time) (io.ReadCloser, error) {
	r, w := io.Pipe()
	k := ns + "/" + pod + "/" + ctr
	f.mu.Lock()
	f.open[k] = w
	f.since[k] = append(f.since[k], since)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		_ = w.CloseWithError(ctx.Err())
		f.mu.Lock()
		if f.open[k] == w {
			delete(f.open, k)
		}
		f.mu.Unlock()
		f.poke()
	}()
	f.poke()
	return r, nil
}

func (f *fakeLogs) poke() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeLogs) openStreams() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.open {
		out = append(out, k)
	}
	return out
}

func (f *fakeLogs) writer(k string) *io.PipeWriter {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[k]
}

// waitStreams waits until exactly want streams are open.
func (f *fakeLogs) waitStreams(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		got := f.openStreams()
		if sameSet(got, want) {
			return
		}
		select {
		case <-f.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("open streams %v, want %v", got, want)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
		if m[x] < 0 {
			return false
		}
	}
	return true
}

// fakeBroker records posted batches and answers with errs in turn (nil
// when they run out).
type fakeBroker struct {
	mu      sync.Mutex
	batches [][]broker.TelemetryFrame
	errs    []error
	calls   int
}

func (b *fakeBroker) PostTelemetry(_ context.Context, _ uuid.UUID, frames []broker.TelemetryFrame) (broker.TelemetryResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if len(b.errs) > 0 {
		err := b.errs[0]
		b.errs = b.errs[1:]
		if err != nil {
			return broker.TelemetryResult{}, err
		}
	}
	b.batches = append(b.batches, frames)
	return broker.TelemetryResult{Accepted: len(frames)}, nil
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func typesUID(s string) types.UID { return types.UID(s) }

// sent lists the frames posted so far.
func (b *fakeBroker) sent() []Frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Frame
	for _, batch := range b.batches {
		for _, f := range batch {
			out = append(out, Frame{Type: f.Type, Body: f.Body})
		}
	}
	return out
}
