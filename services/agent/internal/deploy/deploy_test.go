package deploy

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

// fakeBroker answers the incremental and the full target state.
type fakeBroker struct {
	mu          sync.Mutex
	incremental []stack.DeploymentObject
	full        []stack.DeploymentObject
	calls       []broker.TargetStateQuery
}

func (f *fakeBroker) TargetState(_ context.Context, _ uuid.UUID, q broker.TargetStateQuery) (broker.TargetState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, q)
	if q.Full {
		return broker.TargetState{Objects: f.full}, nil
	}
	if q.ETag == "v1" {
		return broker.TargetState{NotModified: true, ETag: "v1"}, nil
	}
	return broker.TargetState{Objects: f.incremental, ETag: "v1"}, nil
}

// fakeDeployments records what the hooks hand over.
type fakeDeployments struct {
	mu        sync.Mutex
	submitted map[uuid.UUID]bool
	done      map[uuid.UUID]bool
	submits   int
	seeded    []uuid.UUID
	drifted   []uuid.UUID
}

func (f *fakeDeployments) Submit(objs []stack.DeploymentObject) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submits++
	f.submitted = map[uuid.UUID]bool{}
	for _, o := range objs {
		f.submitted[o.ID] = true
	}
}

func (f *fakeDeployments) Seed(objs []stack.DeploymentObject) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range objs {
		f.seeded = append(f.seeded, o.ID)
	}
}

func (f *fakeDeployments) Pending(id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.submitted[id] && !f.done[id]
}

func (f *fakeDeployments) CheckDrift(_ context.Context, objs []stack.DeploymentObject) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range objs {
		f.drifted = append(f.drifted, o.ID)
	}
}

func testMetrics() Metrics {
	return Metrics{
		PollRequests:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "p"}, []string{"status"}),
		PollDuration:       prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d"}),
		LastSuccessfulPoll: prometheus.NewGauge(prometheus.GaugeOpts{Name: "l"}),
		KubeOperations:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "k"}, []string{"operation"}),
		KubeOperationTime:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "t"}, []string{"operation"}),
	}
}

func obj() stack.DeploymentObject { return stack.DeploymentObject{ID: uuid.New(), StackID: uuid.New()} }

// The poller submits a new target state once (a 304 submits nothing),
// then seeds the manager with the full state minus what is pending; a
// drift check covers the applied objects only, and objects acknowledged
// since count as applied.
func TestTargetStateAndDrift(t *testing.T) {
	applied, pending, acked := obj(), obj(), obj()
	fb := &fakeBroker{incremental: []stack.DeploymentObject{pending, acked}, full: []stack.DeploymentObject{applied, pending, acked}}
	fd := &fakeDeployments{done: map[uuid.UUID]bool{acked.ID: true}}
	p := &poller{opts: Options{PollInterval: 20 * time.Millisecond, Wait: time.Second, Metrics: testMetrics()},
		ts: fb, deps: fd, log: slog.New(slog.DiscardHandler), active: func() bool { return true },
		waitActive: func(context.Context, time.Duration) {}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p.run(ctx)

	fd.mu.Lock()
	if fd.submits != 1 {
		t.Errorf("submits = %d, want 1 (the 304s submit nothing)", fd.submits)
	}
	if len(fd.seeded) != 2 || fd.seeded[0] != applied.ID || fd.seeded[1] != acked.ID {
		t.Errorf("seeded %v, want [applied acked]", fd.seeded)
	}
	fd.mu.Unlock()
	if len(fb.calls) < 3 || fb.calls[2].ETag != "v1" {
		t.Errorf("calls %+v: want If-None-Match v1 after the first answer", fb.calls)
	}

	d := &Drift{opts: Options{Metrics: testMetrics()}, ts: fb, deps: fd, log: slog.New(slog.DiscardHandler)}
	d.Check(context.Background())
	if len(fd.drifted) != 2 || fd.drifted[0] != applied.ID || fd.drifted[1] != acked.ID {
		t.Errorf("drift checked %v, want [applied acked]", fd.drifted)
	}
}

// An inactive agent does not poll; it waits to turn ACTIVE.
func TestInactiveAgentDoesNotPoll(t *testing.T) {
	fb := &fakeBroker{}
	waits := 0
	p := &poller{opts: Options{PollInterval: time.Millisecond, Metrics: testMetrics()}, ts: fb, deps: &fakeDeployments{},
		log: slog.New(slog.DiscardHandler), active: func() bool { return false },
		waitActive: func(ctx context.Context, d time.Duration) { waits++; time.Sleep(d) }}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p.run(ctx)
	if len(fb.calls) != 0 || waits == 0 {
		t.Fatalf("inactive: %d calls, %d waits", len(fb.calls), waits)
	}
}
