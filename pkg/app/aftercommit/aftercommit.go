// Package aftercommit lets side effects that must follow a commit (waking
// long-polls through Redis, arming a retry timer) wait for the commit of a
// transaction opened further up the call chain.
//
// Use cases run their side effects right after their own InTx returns. That
// is after the commit, unless a caller wrapped the use case in an outer
// transaction (the api's Idempotency-Key handling does, so the stored
// response commits with the effect): then the use case's InTx only joined,
// and "after InTx" is before the commit. The outer transaction's owner
// calls Defer; side effects go through Do, which queues them until the
// owner runs (commit) or drops (rollback) them.
package aftercommit

import (
	"context"
	"sync"
)

type key struct{}

// Queue holds the side effects deferred inside one outer transaction.
type Queue struct {
	mu   sync.Mutex
	fns  []func()
	done bool
}

// Defer returns a context under which Do queues instead of running, and the
// queue to Run after the commit or Drop after a rollback.
func Defer(ctx context.Context) (context.Context, *Queue) {
	q := &Queue{}
	return context.WithValue(ctx, key{}, q), q
}

// Do runs fn now, or queues it when ctx carries an open Queue.
func Do(ctx context.Context, fn func()) {
	if q, ok := ctx.Value(key{}).(*Queue); ok {
		q.mu.Lock()
		if !q.done {
			q.fns = append(q.fns, fn)
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
	}
	fn()
}

// Run runs the queued side effects in order; later Do calls run at once.
func (q *Queue) Run() {
	q.mu.Lock()
	fns := q.fns
	q.fns, q.done = nil, true
	q.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Drop forgets the queued side effects (their transaction rolled back).
func (q *Queue) Drop() {
	q.mu.Lock()
	q.fns, q.done = nil, true
	q.mu.Unlock()
}
