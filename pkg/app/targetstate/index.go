package targetstate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Snapshot is everything one agent's target state depends on, read from
// PostgreSQL in one go.
type Snapshot struct {
	Status string
	// Labels and AnnotationKeys are the agent's own: a stack label or
	// annotation change concerns exactly the agents holding it.
	Labels         []string
	AnnotationKeys []string
	// Stacks are the live stacks associated with the agent, with or
	// without objects (a first deployment must reach it).
	Stacks []uuid.UUID
	// Objects is the latest live object per associated stack (deleted
	// stacks contribute their deletion marker), ascending by sequence_id,
	// with whether the agent acknowledged it (SUCCESS). Empty unless ACTIVE.
	Objects []Object
}

// Object is one object of a snapshot.
type Object struct {
	stack.DeploymentObject
	Acked bool
}

// SnapshotReader is the persistence the index loads from.
type SnapshotReader interface {
	// AgentState loads one live agent's snapshot; domain.ErrNotFound when
	// the agent does not exist.
	AgentState(ctx context.Context, agentID uuid.UUID) (Snapshot, error)
	// StackHead returns the latest live object of a live stack; ok=false
	// when the stack is deleted, has no object, or is gated (its object
	// may differ between agents, so each agent is reloaded).
	StackHead(ctx context.Context, stackID uuid.UUID) (obj stack.DeploymentObject, ok bool, err error)
}

// ChangeKind says what a change notification is about.
type ChangeKind int

// The kinds of change. Each names the narrowest set of agents it concerns.
const (
	// ChangeAgent: the agent itself (status, labels, annotations, targets).
	ChangeAgent ChangeKind = iota + 1
	// ChangeStack: the stack's latest object changed, or it was deleted.
	ChangeStack
	// ChangeLabel: a stack gained or lost Key as a label.
	ChangeLabel
	// ChangeAnnotation: a stack gained or lost an annotation with key Key.
	ChangeAnnotation
	// ChangeAck: agent ID acknowledged (SUCCESS) object Object.
	ChangeAck
	// ChangeAll: anything may have changed (a notification was lost).
	ChangeAll
)

// Change is one decoded change notification.
type Change struct {
	Kind   ChangeKind
	ID     uuid.UUID
	Object uuid.UUID
	Key    string
}

// ErrOverloaded is returned when target-state loads queue longer than the
// configured wait: the caller sheds the request with 503 + Retry-After.
var ErrOverloaded = &domain.Error{Kind: domain.ErrUnavailable, Msg: "target state is overloaded, retry later"}

// IndexOptions tune NewIndex.
type IndexOptions struct {
	// MaxLoads bounds concurrent PostgreSQL loads (≤0: 8). Keep it below the
	// pool size so other routes still get connections.
	MaxLoads int
	// LoadWait is how long a load may queue for a slot before the request
	// is shed (≤0: 2 s).
	LoadWait time.Duration
	// IdleAfter drops entries nobody asked for in this long and nobody waits
	// on (≤0: 10 min).
	IdleAfter time.Duration
	Logger    *slog.Logger
}

// Index is one api replica's in-memory target-state index: per agent the
// current answer and its ETags, so an unchanged agent costs no query. It
// is kept exact by change notifications (Apply) applied in order; anything
// it cannot patch in place it drops, and the next request reloads it. Until
// the notification path is trusted (SetTrusted), every request reads
// PostgreSQL as if there were no index.
type Index struct {
	store    SnapshotReader
	log      *slog.Logger
	loadSem  chan struct{}
	loadWait time.Duration
	idle     time.Duration
	group    singleflight.Group

	mu      sync.Mutex
	trusted bool
	entries map[uuid.UUID]*entry
	waiters map[uuid.UUID]map[chan struct{}]struct{}
	// holds remember since when each agent has held long-polls here (the
	// fleet's "connected now", see Holding).
	holds map[uuid.UUID]*hold
	clock func() time.Time
	// seq numbers applied changes; recent keeps the last len(recent) so a
	// load that raced a change can tell (see conflicts).
	seq    uint64
	epoch  uint64
	recent [512]record
	bodies map[string][]byte

	stats Stats
	// onWake observes how long after a change was applied a woken
	// long-poll had its new answer (see SetWakeObserver).
	onWake func(time.Duration)
}

type record struct {
	seq uint64
	c   Change
}

// Stats count what the index did (exported as metrics).
type Stats struct {
	Hits, Loads, Patches, Drops, Wakes, Resyncs, Shed atomic.Uint64
}

// NewIndex returns an untrusted, empty index.
func NewIndex(store SnapshotReader, opts IndexOptions) *Index {
	if opts.MaxLoads <= 0 {
		opts.MaxLoads = 8
	}
	if opts.LoadWait <= 0 {
		opts.LoadWait = 2 * time.Second
	}
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Index{store: store, log: opts.Logger, loadSem: make(chan struct{}, opts.MaxLoads), loadWait: opts.LoadWait,
		idle: opts.IdleAfter, entries: map[uuid.UUID]*entry{}, waiters: map[uuid.UUID]map[chan struct{}]struct{}{},
		holds: map[uuid.UUID]*hold{}, clock: time.Now, bodies: map[string][]byte{}}
}

// Stats returns the index's counters.
func (i *Index) Stats() *Stats { return &i.stats }

// Len is the number of cached agents.
func (i *Index) Len() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.entries)
}

// entry is one agent's cached answer. Entries are immutable: a change
// replaces the pointer.
type entry struct {
	id       uuid.UUID
	snap     Snapshot
	etag     string // hide-acked view
	etagFull string
	lastUsed atomic.Int64
	// changedAt is when a change notification started patching this
	// answer (zero for answers loaded from PostgreSQL): a woken long-poll
	// measures its fan-out latency from it.
	changedAt time.Time
}

func newEntry(id uuid.UUID, snap Snapshot) *entry {
	e := &entry{id: id, snap: snap}
	e.etag = ETag(snap.Status, false, e.view(false))
	e.etagFull = ETag(snap.Status, true, e.view(true))
	e.lastUsed.Store(time.Now().UnixNano())
	return e
}

// view is the answer for one mode: every object (full) or the ones not
// acknowledged yet.
func (e *entry) view(full bool) []stack.DeploymentObject {
	out := make([]stack.DeploymentObject, 0, len(e.snap.Objects))
	if e.snap.Status != agent.StatusActive {
		return out
	}
	for _, o := range e.snap.Objects {
		if full || !o.Acked {
			out = append(out, o.DeploymentObject)
		}
	}
	return out
}

func (e *entry) hasStack(id uuid.UUID) bool {
	if slices.Contains(e.snap.Stacks, id) {
		return true
	}
	for _, o := range e.snap.Objects {
		if o.StackID == id {
			return true
		}
	}
	return false
}

// concerns reports whether change c may alter this agent's answer.
func (e *entry) concerns(c Change) bool {
	switch c.Kind {
	case ChangeAgent, ChangeAck:
		return c.ID == e.id
	case ChangeStack:
		return e.hasStack(c.ID)
	case ChangeLabel:
		return slices.Contains(e.snap.Labels, c.Key)
	case ChangeAnnotation:
		return slices.Contains(e.snap.AnnotationKeys, c.Key)
	}
	return true
}

// withHead returns e with stack obj.StackID's object set to obj, or e
// itself when that changes nothing (or obj is older than what e holds).
func (e *entry) withHead(obj stack.DeploymentObject) *entry {
	objs := make([]Object, 0, len(e.snap.Objects)+1)
	for _, o := range e.snap.Objects {
		if o.StackID == obj.StackID {
			if o.SequenceID >= obj.SequenceID {
				return e
			}
			continue
		}
		objs = append(objs, o)
	}
	objs = append(objs, Object{DeploymentObject: obj})
	slices.SortFunc(objs, func(a, b Object) int { return int(a.SequenceID - b.SequenceID) })
	snap := e.snap
	snap.Objects = objs
	return newEntry(e.id, snap)
}

// withAck returns e with object id acknowledged, or e when it holds no such
// unacknowledged object.
func (e *entry) withAck(id uuid.UUID) *entry {
	for k, o := range e.snap.Objects {
		if o.ID == id && !o.Acked {
			objs := slices.Clone(e.snap.Objects)
			objs[k].Acked = true
			snap := e.snap
			snap.Objects = objs
			return newEntry(e.id, snap)
		}
	}
	return e
}

// View is one agent's current answer.
type View struct {
	e *entry
	i *Index
}

// Result answers a request in the given mode.
func (v View) Result(full bool, ifNoneMatch string) Result {
	etag := v.e.etag
	if full {
		etag = v.e.etagFull
	}
	if etag == ifNoneMatch {
		return Result{ETag: etag, NotModified: true}
	}
	objs := v.e.view(full)
	return Result{Objects: objs, ETag: etag, Body: v.i.body(etag, objs)}
}

// body returns the JSON of objs, encoded once per distinct answer: agents
// sharing stacks share the bytes.
func (i *Index) body(etag string, objs []stack.DeploymentObject) []byte {
	i.mu.Lock()
	b, ok := i.bodies[etag]
	i.mu.Unlock()
	if ok {
		return b
	}
	b, err := json.Marshal(objs)
	if err != nil {
		return nil
	}
	i.mu.Lock()
	if len(i.bodies) >= 4096 {
		clear(i.bodies)
	}
	i.bodies[etag] = b
	i.mu.Unlock()
	return b
}

// Get returns the agent's current answer: from memory when the index holds
// it and is trusted, otherwise loaded (once, however many requests ask).
func (i *Index) Get(ctx context.Context, agentID uuid.UUID) (View, error) {
	i.mu.Lock()
	if e := i.entries[agentID]; e != nil && i.trusted {
		i.mu.Unlock()
		e.lastUsed.Store(time.Now().UnixNano())
		i.stats.Hits.Add(1)
		return View{e: e, i: i}, nil
	}
	i.mu.Unlock()
	v, err, _ := i.group.Do(agentID.String(), func() (any, error) {
		// Loads are shared: one caller's cancellation must not fail the rest.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return i.load(ctx, agentID)
	})
	if err != nil {
		return View{}, err
	}
	return View{e: v.(*entry), i: i}, nil
}

// load reads the agent from PostgreSQL and stores the result unless a
// change that concerns it was applied while it was being read; then it
// reads again, so a stored entry is never older than a change it missed.
func (i *Index) load(ctx context.Context, agentID uuid.UUID) (*entry, error) {
	var e *entry
	for attempt := 0; attempt < 4; attempt++ {
		i.mu.Lock()
		seq, epoch, trusted := i.seq, i.epoch, i.trusted
		i.mu.Unlock()

		snap, err := i.readState(ctx, agentID)
		if err != nil {
			if errors.Is(err, domain.ErrNotFound) {
				i.mu.Lock()
				i.drop(agentID)
				i.mu.Unlock()
			}
			return nil, err
		}
		e = newEntry(agentID, snap)
		i.mu.Lock()
		if !trusted || !i.trusted {
			i.mu.Unlock()
			return e, nil
		}
		if i.epoch == epoch && !i.conflicts(seq, e) {
			i.put(e)
			i.mu.Unlock()
			return e, nil
		}
		i.mu.Unlock()
	}
	// Changes keep arriving for this agent: answer with the freshest read,
	// uncached.
	return e, nil
}

func (i *Index) readState(ctx context.Context, agentID uuid.UUID) (Snapshot, error) {
	t := time.NewTimer(i.loadWait)
	defer t.Stop()
	select {
	case i.loadSem <- struct{}{}:
	case <-t.C:
		i.stats.Shed.Add(1)
		return Snapshot{}, ErrOverloaded
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
	defer func() { <-i.loadSem }()
	i.stats.Loads.Add(1)
	return i.store.AgentState(ctx, agentID)
}

// conflicts reports whether a change applied after seq concerns e (or
// whether so many were applied that it cannot tell). Caller holds mu.
func (i *Index) conflicts(seq uint64, e *entry) bool {
	if i.seq-seq > uint64(len(i.recent)) {
		return true
	}
	for s := seq + 1; s <= i.seq; s++ {
		if e.concerns(i.recent[s%uint64(len(i.recent))].c) {
			return true
		}
	}
	return false
}

// put caches e and wakes the agent's long-polls when its answer moved.
// Caller holds mu.
func (i *Index) put(e *entry) {
	old := i.entries[e.id]
	i.entries[e.id] = e
	if old != nil && (old.etag != e.etag || old.etagFull != e.etagFull) {
		i.wake(e.id)
	}
}

// drop forgets the agent and wakes its long-polls, which reload. Caller
// holds mu.
func (i *Index) drop(id uuid.UUID) {
	if _, ok := i.entries[id]; ok {
		delete(i.entries, id)
		i.stats.Drops.Add(1)
	}
	i.wake(id)
}

func (i *Index) wake(id uuid.UUID) {
	for ch := range i.waiters[id] {
		select {
		case ch <- struct{}{}:
			i.stats.Wakes.Add(1)
		default:
		}
	}
}

func (i *Index) record(c Change) {
	i.seq++
	i.recent[i.seq%uint64(len(i.recent))] = record{seq: i.seq, c: c}
}

// Subscribe returns a channel that receives when the agent's answer may
// have changed; ok=false while notifications are not trusted (poll).
func (i *Index) Subscribe(agentID uuid.UUID) (<-chan struct{}, func(), bool) {
	ch := make(chan struct{}, 1)
	i.mu.Lock()
	ws := i.waiters[agentID]
	if ws == nil {
		ws = map[chan struct{}]struct{}{}
		i.waiters[agentID] = ws
		i.startHold(agentID, i.clock())
	}
	ws[ch] = struct{}{}
	ok := i.trusted
	i.mu.Unlock()
	return ch, func() {
		i.mu.Lock()
		// A set is deleted only when empty, so ch is in the current one.
		if ws := i.waiters[agentID]; ws != nil {
			delete(ws, ch)
			if len(ws) == 0 {
				delete(i.waiters, agentID)
				if h := i.holds[agentID]; h != nil {
					h.released = i.clock()
				}
			}
		}
		i.mu.Unlock()
	}, ok
}

// HoldGrace is how long after its last long-poll ended an agent still
// counts as connected: an agent answers a change, then polls again, and
// that gap is not a disconnection. A new long-poll within the grace keeps
// the original connection time.
const HoldGrace = 10 * time.Second

// hold is one agent's run of long-polls on this replica.
type hold struct {
	since    time.Time
	released time.Time // zero while a long-poll is held
}

// startHold records that agentID holds a long-poll again (i.mu held).
func (i *Index) startHold(agentID uuid.UUID, now time.Time) {
	h := i.holds[agentID]
	if h == nil || now.Sub(h.released) > HoldGrace && !h.released.IsZero() {
		h = &hold{since: now}
		i.holds[agentID] = h
	}
	h.released = time.Time{}
}

// Holding returns the agents connected to this replica now, each with the
// time its run of long-polls began: those holding a long-poll, and those
// whose last one ended less than HoldGrace ago. Older runs are forgotten.
func (i *Index) Holding() map[uuid.UUID]time.Time {
	i.mu.Lock()
	now := i.clock()
	defer i.mu.Unlock()
	out := make(map[uuid.UUID]time.Time, len(i.holds))
	for id, h := range i.holds {
		if !h.released.IsZero() && now.Sub(h.released) > HoldGrace {
			delete(i.holds, id)
			continue
		}
		out[id] = h.since
	}
	return out
}

// SetWakeObserver registers fn to receive, for every held long-poll woken
// by a patched answer, the time from the change notification's arrival to
// that answer being ready: the replica's own share of propagation, whatever
// the clients' side costs. Set it before serving.
func (i *Index) SetWakeObserver(fn func(time.Duration)) { i.onWake = fn }

// observeWake reports a woken long-poll's new answer.
func (v View) observeWake() {
	if v.i.onWake != nil && !v.e.changedAt.IsZero() {
		v.i.onWake(time.Since(v.e.changedAt))
	}
}

// Waiting is the number of held long-polls.
func (i *Index) Waiting() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	n := 0
	for _, ws := range i.waiters {
		n += len(ws)
	}
	return n
}

// SetTrusted turns the index on (notifications flow) or off. Turning it on
// resynchronises (anything may have changed while off); turning it off wakes
// every long-poll so it falls back to polling.
func (i *Index) SetTrusted(ctx context.Context, on bool) {
	i.mu.Lock()
	was := i.trusted
	i.trusted = on
	if !on {
		i.epoch++
		clear(i.entries)
		for id := range i.waiters {
			i.wake(id)
		}
	}
	i.mu.Unlock()
	if on && !was {
		i.Resync(ctx)
	}
}

// Apply applies one change notification, in the order they were published.
func (i *Index) Apply(ctx context.Context, c Change) {
	at := time.Now()
	switch c.Kind {
	case ChangeAll:
		i.Resync(ctx)
	case ChangeStack:
		i.applyStack(ctx, c, at)
	default:
		i.mu.Lock()
		defer i.mu.Unlock()
		i.record(c)
		if c.Kind == ChangeAck {
			if e := i.entries[c.ID]; e != nil {
				if ne := e.withAck(c.Object); ne != e {
					i.stats.Patches.Add(1)
					ne.changedAt = at
					i.put(ne)
				}
			}
			return
		}
		if c.Kind == ChangeAgent {
			i.drop(c.ID)
			return
		}
		for id, e := range i.entries {
			if e.concerns(c) {
				i.drop(id)
			}
		}
	}
}

// applyStack patches every agent holding the stack with its new head
// object, read once, instead of reloading each of them; a deleted stack
// (deletion markers depend on each agent's registration time) drops them.
func (i *Index) applyStack(ctx context.Context, c Change, at time.Time) {
	i.mu.Lock()
	i.record(c)
	var affected []*entry
	for _, e := range i.entries {
		if e.concerns(c) {
			affected = append(affected, e)
		}
	}
	i.mu.Unlock()
	if len(affected) == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	obj, ok, err := i.store.StackHead(hctx, c.ID)
	cancel()
	if err != nil {
		i.log.Warn("target-state index: reading stack head failed; dropping its agents", "stack_id", c.ID, "error", err)
	}
	if err != nil || !ok {
		i.mu.Lock()
		defer i.mu.Unlock()
		for _, e := range affected {
			if i.entries[e.id] != nil {
				i.drop(e.id)
			}
		}
		return
	}
	// The new answers are computed outside the lock (entries are
	// immutable): with 10,000 agents on one stack that is the bulk of the
	// work, and holding the lock for it would stall every request of the
	// replica, not only the ones the change concerns.
	type patch struct{ old, ne *entry }
	patches := make([]patch, 0, len(affected))
	for _, e := range affected {
		if ne := e.withHead(obj); ne != e {
			ne.changedAt = at
			patches = append(patches, patch{e, ne})
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, p := range patches {
		cur := i.entries[p.old.id]
		if cur == nil {
			continue
		}
		if cur != p.old {
			// Replaced meanwhile (an ack, a reload): patch what is there now.
			if p.ne = cur.withHead(obj); p.ne == cur {
				continue
			}
			p.ne.changedAt = at
		}
		i.stats.Patches.Add(1)
		i.put(p.ne)
	}
}

// Resync marks every entry unknown: each is reloaded (a few at a time) and
// its long-polls woken only if its answer changed. It is how the index
// recovers from a lost notification without a thundering herd.
func (i *Index) Resync(ctx context.Context) {
	i.stats.Resyncs.Add(1)
	i.mu.Lock()
	i.epoch++
	old := i.entries
	i.entries = make(map[uuid.UUID]*entry, len(old))
	// Agents with held long-polls but no entry: wake them to reload.
	for id := range i.waiters {
		if _, ok := old[id]; !ok {
			i.wake(id)
		}
	}
	i.mu.Unlock()
	if len(old) == 0 {
		return
	}
	go func() {
		sem := make(chan struct{}, 4)
		var wg sync.WaitGroup
		for id, prev := range old {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				v, err := i.Get(ctx, id)
				if err != nil || v.e.etag != prev.etag || v.e.etagFull != prev.etagFull {
					i.mu.Lock()
					i.wake(id)
					i.mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}()
}

// Janitor drops entries idle longer than IdleAfter that nobody waits on,
// until ctx ends.
func (i *Index) Janitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			i.sweep(now)
		}
	}
}

func (i *Index) sweep(now time.Time) {
	cutoff := now.Add(-i.idle).UnixNano()
	i.mu.Lock()
	defer i.mu.Unlock()
	for id, e := range i.entries {
		if e.lastUsed.Load() < cutoff && len(i.waiters[id]) == 0 {
			delete(i.entries, id)
		}
	}
}
