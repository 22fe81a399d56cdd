package telemetry

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// PodState is what the streamer needs of a Pod.
type PodState struct {
	Namespace, Name string
	UID             types.UID
	// StackID is the k8s.brokkr.io/stack annotation; OptIn is
	// brokkr.io/stream-logs: "true". Both are needed to stream.
	StackID uuid.UUID
	OptIn   bool
	Running bool
	// Containers are the names of the Pod's (non-init) containers.
	Containers []string
	// Started is the Pod's status.startTime.
	Started time.Time
}

// Streams reports whether the Pod's containers are to be tailed: running,
// with both annotations.
func (p PodState) Streams() bool { return p.Running && p.OptIn && p.StackID != uuid.Nil }

// StackOf returns the stack of the k8s.brokkr.io/stack annotation.
func StackOf(annotations map[string]string) (uuid.UUID, bool) {
	v, ok := annotations[AnnotationStack]
	if !ok {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(strings.TrimSpace(v))
	if err != nil || id == uuid.Nil {
		return uuid.Nil, false
	}
	return id, true
}

// PodStateOf reads a Pod.
func PodStateOf(p *corev1.Pod) PodState {
	s := PodState{Namespace: p.Namespace, Name: p.Name, UID: p.UID, Running: p.Status.Phase == corev1.PodRunning,
		OptIn: p.Annotations[AnnotationStreamLogs] == "true"}
	s.StackID, _ = StackOf(p.Annotations)
	for _, c := range p.Spec.Containers {
		s.Containers = append(s.Containers, c.Name)
	}
	if p.Status.StartTime != nil {
		s.Started = p.Status.StartTime.Time
	}
	return s
}

type tailKey struct {
	Namespace, Pod, Container string
	UID                       types.UID
}

func (k tailKey) String() string { return k.Namespace + "/" + k.Pod + "/" + k.Container }

type wanted struct {
	at    Source
	since time.Time
}

// Streamer keeps one tail per container of every streaming Pod, at most
// max at once (the others wait for a free slot, oldest Pod first).
type Streamer struct {
	src     LogSource
	out     Emitter
	agentID uuid.UUID
	max     int
	now     func() time.Time
	log     *slog.Logger
	// started: logs of Pods already running then are read from this time
	// on (an agent restart does not send them again); a Pod started later
	// is read from its first line.
	started time.Time
	// reopen overrides the tails' first reopen pause (tests).
	reopen time.Duration

	ctx     context.Context
	mu      sync.Mutex
	want    map[tailKey]wanted
	running map[tailKey]context.CancelFunc
	warned  bool
	wg      sync.WaitGroup
}

// NewStreamer returns a streamer whose tails live until ctx ends or Stop.
func NewStreamer(ctx context.Context, src LogSource, out Emitter, agentID uuid.UUID, maxTails int, now func() time.Time, log *slog.Logger) *Streamer {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxTails <= 0 {
		maxTails = 1
	}
	return &Streamer{src: src, out: out, agentID: agentID, max: maxTails, now: now, log: log, started: now(), ctx: ctx,
		want: map[tailKey]wanted{}, running: map[tailKey]context.CancelFunc{}}
}

// Update aligns the tails of one Pod with its state: a Pod that streams
// gets a tail per container, one that stopped streaming (opt-in removed,
// no longer running) loses them.
func (s *Streamer) Update(p PodState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[tailKey]bool{}
	if p.Streams() {
		since := s.started
		if p.Started.After(s.started) {
			since = time.Time{}
		}
		for _, c := range p.Containers {
			k := tailKey{Namespace: p.Namespace, Pod: p.Name, Container: c, UID: p.UID}
			keep[k] = true
			if _, ok := s.want[k]; !ok {
				s.want[k] = wanted{at: Source{StackID: p.StackID, Namespace: p.Namespace, Pod: p.Name, Container: c}, since: since}
			}
		}
	}
	for k := range s.want {
		if k.Namespace == p.Namespace && k.Pod == p.Name && !keep[k] {
			s.stopLocked(k)
		}
	}
	s.scheduleLocked()
}

// Remove stops the tails of a deleted Pod.
func (s *Streamer) Remove(namespace, name string) {
	s.Update(PodState{Namespace: namespace, Name: name})
}

func (s *Streamer) stopLocked(k tailKey) {
	delete(s.want, k)
	if stop, ok := s.running[k]; ok {
		stop()
		delete(s.running, k)
	}
}

// scheduleLocked starts wanted tails while slots are free.
func (s *Streamer) scheduleLocked() {
	if len(s.running) >= s.max {
		if len(s.want) > len(s.running) && !s.warned {
			s.warned = true
			s.log.Warn("more containers opted into log streaming than max_log_tails; some wait for a free slot",
				"max_log_tails", s.max, "wanted", len(s.want))
		}
		return
	}
	var waiting []tailKey
	for k := range s.want {
		if _, ok := s.running[k]; !ok {
			waiting = append(waiting, k)
		}
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].String() < waiting[j].String() })
	for _, k := range waiting {
		if len(s.running) >= s.max {
			break
		}
		w := s.want[k]
		ctx, stop := context.WithCancel(s.ctx)
		s.running[k] = stop
		t := newTail(s.src, s.out, s.agentID, w.at, w.since, s.now, s.log)
		if s.reopen > 0 {
			t.reopen, t.maxReopen = s.reopen, s.reopen
		}
		s.wg.Go(func() { t.run(ctx) })
	}
	if len(s.want) <= s.max {
		s.warned = false
	}
}

// Tails lists the containers tailed now ("namespace/pod/container").
func (s *Streamer) Tails() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.running))
	for k := range s.running {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

// Stop ends every tail and waits for them (each emits its pending gap).
func (s *Streamer) Stop() {
	s.mu.Lock()
	for k := range s.want {
		s.stopLocked(k)
	}
	s.mu.Unlock()
	s.wg.Wait()
}
