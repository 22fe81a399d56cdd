// Package journaltest is an in-memory journal for use-case tests: a
// Transactor that runs the function (and, like a transaction, keeps the
// audit entries and events it recorded only when the function succeeds) and
// a Recorder that remembers what was written.
package journaltest

import (
	"context"
	"sync"

	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
)

// Journal implements journal.Transactor and journal.Recorder.
type Journal struct {
	mu      sync.Mutex
	entries []audit.Entry
	events  []event.Event
	// AuditErr, when set, fails every Audit (a broken database).
	AuditErr error
}

type txKey struct{}

type pending struct {
	entries []audit.Entry
	events  []event.Event
}

// InTx runs fn; what fn recorded is kept only when it returns nil. A nested
// call joins the outer one.
func (j *Journal) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*pending); ok {
		return fn(ctx)
	}
	p := &pending{}
	if err := fn(context.WithValue(ctx, txKey{}, p)); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, p.entries...)
	j.events = append(j.events, p.events...)
	return nil
}

// Audit records e (at commit when inside InTx).
func (j *Journal) Audit(ctx context.Context, e audit.Entry) error {
	if j.AuditErr != nil {
		return j.AuditErr
	}
	if p, ok := ctx.Value(txKey{}).(*pending); ok {
		p.entries = append(p.entries, e)
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
	return nil
}

// Emit records ev (at commit when inside InTx).
func (j *Journal) Emit(ctx context.Context, ev event.Event) error {
	if p, ok := ctx.Value(txKey{}).(*pending); ok {
		p.events = append(p.events, ev)
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, ev)
	return nil
}

// Entries returns the committed audit entries.
func (j *Journal) Entries() []audit.Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]audit.Entry(nil), j.entries...)
}

// Events returns the committed events.
func (j *Journal) Events() []event.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]event.Event(nil), j.events...)
}

// Actions returns the committed audit entries' actions, in order.
func (j *Journal) Actions() []string {
	var out []string
	for _, e := range j.Entries() {
		out = append(out, e.Action)
	}
	return out
}

// EventTypes returns the committed events' types, in order.
func (j *Journal) EventTypes() []string {
	var out []string
	for _, e := range j.Events() {
		out = append(out, e.Type)
	}
	return out
}
