package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	domainhealth "github.com/brokkr-go/brokkr/pkg/domain/health"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
)

// OutboxKind marks health reports in the outbox.
const OutboxKind = "health"

// Report is one entry of PATCH /agents/{id}/health-status.
type Report struct {
	ID        uuid.UUID `json:"id"`
	Status    string    `json:"status"`
	Summary   Summary   `json:"summary"`
	CheckedAt time.Time `json:"checked_at"`
}

// Body is the body of PATCH /agents/{id}/health-status.
type Body struct {
	DeploymentObjects []Report `json:"deployment_objects"`
}

// Path is where an agent reports health.
func Path(agentID uuid.UUID) string { return "/api/v1/agents/" + agentID.String() + "/health-status" }

// Evaluator computes the health of deployment objects.
type Evaluator struct {
	in *inspect.Inspector

	mu    sync.Mutex
	plans map[uuid.UUID]inspect.Plan
}

// NewEvaluator returns an evaluator that reads through in.
func NewEvaluator(in *inspect.Inspector) *Evaluator {
	return &Evaluator{in: in, plans: map[uuid.UUID]inspect.Plan{}}
}

func (ev *Evaluator) plan(do stack.DeploymentObject) (inspect.Plan, error) {
	ev.mu.Lock()
	p, ok := ev.plans[do.ID]
	ev.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := ev.in.Resolve(do)
	if err != nil {
		return inspect.Plan{}, err
	}
	cache := true
	for _, t := range p.Targets {
		if t.Err != nil {
			cache = false // a kind may become resolvable (a CRD being installed)
		}
	}
	if cache {
		ev.mu.Lock()
		ev.plans[do.ID] = p
		ev.mu.Unlock()
	}
	return p, nil
}

// Forget drops cached plans of objects no longer tracked.
func (ev *Evaluator) Forget(keep map[uuid.UUID]bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	for id := range ev.plans {
		if !keep[id] {
			delete(ev.plans, id)
		}
	}
}

// Evaluate computes the health of one deployment object now. podNamespaces
// are the namespaces its Pods can live in (those of its workloads).
func (ev *Evaluator) Evaluate(ctx context.Context, do stack.DeploymentObject) (r Report, podNamespaces []string) {
	r = Report{ID: do.ID, CheckedAt: time.Now().UTC()}
	p, err := ev.plan(do)
	if err != nil {
		m := err.Error()
		r.Status, r.Summary = domainhealth.Unknown, Summary{Conditions: []string{}, Resources: []Resource{{Kind: "DeploymentObject", Name: do.ID.String(), Message: &m}}}
		return r, nil
	}
	live := ev.in.Fetch(ctx, p)
	pods := ev.in.Pods(ctx, live)
	r.Status, r.Summary = Evaluate(live, pods)
	seen := map[string]bool{}
	for _, t := range p.Targets {
		if (inspect.IsWorkload(t) || inspect.IsPod(t)) && !seen[t.Namespace] {
			seen[t.Namespace] = true
			podNamespaces = append(podNamespaces, t.Namespace)
		}
	}
	sort.Strings(podNamespaces)
	return r, podNamespaces
}

// Options tune the monitor.
type Options struct {
	// Interval is deployment_health_interval: every tracked object is
	// reported this often, changed or not.
	Interval time.Duration
	// Debounce gathers Pod changes before re-evaluating (default 2 s).
	Debounce time.Duration
	// Concurrency bounds objects evaluated at once (default 4).
	Concurrency int
	// AppliedEvery is how often the tracked set is compared with the
	// applied one (default 1 s).
	AppliedEvery time.Duration
}

// Hook returns the deployment health loop for the agent runtime.
func Hook(opts Options) agent.Hook {
	return agent.Hook{Name: "deployment_health", Run: func(ctx context.Context, env agent.Env) error {
		in, err := inspect.New(env.Kube)
		if err != nil {
			return err
		}
		return NewMonitor(env, NewEvaluator(in), opts).Run(ctx)
	}}
}

type tracked struct {
	do          stack.DeploymentObject
	fingerprint string // status + summary last queued
	podNS       []string
}

// Monitor tracks the applied deployment objects and reports their health:
// all of them every Interval, and each one as soon as its health changes
// (a new object, or a change seen through a watch on the Pods of its
// namespaces). Reports go through the outbox, so they survive a broker
// outage; while one is still queued an unchanged periodic report is not
// queued again.
type Monitor struct {
	env  agent.Env
	ev   *Evaluator
	opts Options
	log  *slog.Logger

	objs     map[uuid.UUID]*tracked
	watchers map[string]context.CancelFunc

	dirtyMu sync.Mutex
	dirty   map[string]bool // namespaces with Pod changes not yet evaluated
	poke    chan struct{}
}

// NewMonitor returns a monitor; Run starts it.
func NewMonitor(env agent.Env, ev *Evaluator, opts Options) *Monitor {
	defaults.Set(&opts.Interval, time.Minute)
	defaults.Set(&opts.Debounce, 2*time.Second)
	defaults.Set(&opts.Concurrency, 4)
	defaults.Set(&opts.AppliedEvery, time.Second)
	return &Monitor{env: env, ev: ev, opts: opts, log: env.Log(), objs: map[uuid.UUID]*tracked{},
		watchers: map[string]context.CancelFunc{}, dirty: map[string]bool{}, poke: make(chan struct{}, 1)}
}

// Run reports until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	defer func() {
		for _, stop := range m.watchers {
			stop()
		}
	}()
	tick := time.NewTicker(m.opts.Interval)
	defer tick.Stop()
	appliedTick := time.NewTicker(m.opts.AppliedEvery)
	defer appliedTick.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if m.env.IsActive() {
				m.sync(ctx)
				m.check(ctx, m.ids(nil), true)
			}
		case <-appliedTick.C:
			if m.env.IsActive() {
				if added := m.sync(ctx); len(added) > 0 {
					m.check(ctx, added, false)
				}
			}
		case <-m.poke:
			if debounce == nil {
				debounce = time.After(m.opts.Debounce)
			}
		case <-debounce:
			debounce = nil
			m.dirtyMu.Lock()
			dirtyNS := m.dirty
			m.dirty = map[string]bool{}
			m.dirtyMu.Unlock()
			if m.env.IsActive() {
				m.check(ctx, m.ids(dirtyNS), false)
			}
		}
	}
}

// ids lists tracked objects, all or those with Pods in one of namespaces.
func (m *Monitor) ids(namespaces map[string]bool) []uuid.UUID {
	var out []uuid.UUID
	for id, t := range m.objs {
		if namespaces == nil {
			out = append(out, id)
			continue
		}
		for _, ns := range t.podNS {
			if namespaces[ns] {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// sync aligns the tracked set with the applied one and returns the new ids.
func (m *Monitor) sync(ctx context.Context) []uuid.UUID {
	applied := m.env.Applied()
	keep := make(map[uuid.UUID]bool, len(applied))
	var added []uuid.UUID
	for _, do := range applied {
		if do.IsDeletionMarker {
			continue
		}
		keep[do.ID] = true
		if _, ok := m.objs[do.ID]; !ok {
			m.objs[do.ID] = &tracked{do: do}
			added = append(added, do.ID)
		}
	}
	for id := range m.objs {
		if !keep[id] {
			delete(m.objs, id)
		}
	}
	m.ev.Forget(keep)
	m.syncWatchers(ctx)
	return added
}

// check evaluates the given objects and queues one report with every
// object (all) or only the changed ones.
func (m *Monitor) check(ctx context.Context, ids []uuid.UUID, all bool) {
	if len(ids) == 0 {
		return
	}
	sort.Slice(ids, func(i, j int) bool { return m.objs[ids[i]].do.SequenceID < m.objs[ids[j]].do.SequenceID })
	reports := make([]Report, len(ids))
	podNS := make([][]string, len(ids))
	sem := make(chan struct{}, m.opts.Concurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		do := m.objs[id].do
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reports[i], podNS[i] = m.ev.Evaluate(ctx, do)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	var out []Report
	changed := false
	watchChange := false
	for i, id := range ids {
		t := m.objs[id]
		fp := fingerprint(reports[i])
		if fp != t.fingerprint {
			changed = true
			if t.fingerprint != "" {
				m.log.Info("deployment health changed", "deployment_object_id", id, "status", reports[i].Status,
					"conditions", reports[i].Summary.Conditions)
			}
		}
		if all || fp != t.fingerprint {
			out = append(out, reports[i])
		}
		t.fingerprint = fp
		if !slices.Equal(t.podNS, podNS[i]) {
			t.podNS = podNS[i]
			watchChange = true
		}
	}
	if watchChange {
		m.syncWatchers(ctx)
	}
	if len(out) == 0 {
		return
	}
	if all && !changed && m.queued() {
		// The broker is behind (an outage): a report with the same content
		// is still waiting; do not pile up copies.
		return
	}
	m.queue(out)
}

func fingerprint(r Report) string {
	b, _ := json.Marshal(r.Summary)
	return r.Status + "|" + string(b)
}

func (m *Monitor) queued() bool {
	for _, r := range m.env.Outbox.Pending() {
		if r.Kind == OutboxKind {
			return true
		}
	}
	return false
}

// maxPerRequest stays below the broker's bound of 1000 reports per request.
const maxPerRequest = 500

func (m *Monitor) queue(reports []Report) {
	for len(reports) > 0 {
		n := min(len(reports), maxPerRequest)
		if _, err := m.env.Outbox.Append(OutboxKind, http.MethodPatch, Path(m.env.AgentID), Body{DeploymentObjects: reports[:n]}); err != nil {
			m.log.Error("could not queue the health report", "error", err)
		}
		reports = reports[n:]
	}
}

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// syncWatchers watches Pods (metadata only) in the namespaces where tracked
// objects have workloads, so a change is reported without waiting for the
// interval.
func (m *Monitor) syncWatchers(ctx context.Context) {
	want := map[string]bool{}
	for _, t := range m.objs {
		for _, ns := range t.podNS {
			want[ns] = true
		}
	}
	for ns, stop := range m.watchers {
		if !want[ns] {
			stop()
			delete(m.watchers, ns)
		}
	}
	for ns := range want {
		if _, ok := m.watchers[ns]; ok {
			continue
		}
		wctx, stop := context.WithCancel(ctx)
		m.watchers[ns] = stop
		go m.watch(wctx, ns)
	}
}

func (m *Monitor) watch(ctx context.Context, ns string) {
	ri := m.env.Kube.MetadataClient().Resource(podsGVR).Namespace(ns)
	failures := 0
	pause := func() {
		d := min(time.Second<<min(failures, 6), time.Minute)
		failures++
		_ = lifecycle.Sleep(ctx, d) // the loop below checks ctx
	}
	for ctx.Err() == nil {
		list, err := ri.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			if ctx.Err() == nil {
				m.log.Debug("listing pods for the health watch failed", "namespace", ns, "error", err)
			}
			pause()
			continue
		}
		rv := list.ResourceVersion
		// The watch sees changes after rv only: a Pod that changed between
		// the last evaluation and this list (becoming ready while the watch
		// was being set up, or during a watch outage) would otherwise wait
		// for the periodic report. Re-evaluate once at every (re)start.
		m.markDirty(ns)
		for ctx.Err() == nil {
			w, err := ri.Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
			if err != nil {
				pause()
				break // list again: the version may be too old
			}
			expired := false
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					expired = true
					break
				}
				if o, ok := ev.Object.(metav1.Object); ok {
					rv = o.GetResourceVersion()
				}
				if ev.Type == watch.Bookmark {
					continue
				}
				failures = 0
				m.markDirty(ns)
			}
			w.Stop()
			if expired {
				break
			}
		}
	}
}

func (m *Monitor) markDirty(ns string) {
	m.dirtyMu.Lock()
	m.dirty[ns] = true
	m.dirtyMu.Unlock()
	select {
	case m.poke <- struct{}{}:
	default:
	}
}
