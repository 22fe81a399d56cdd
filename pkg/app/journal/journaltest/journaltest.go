// Package journaltest is an in-memory journal.Transactor and
// journal.Recorder for use-case tests: audit entries and events written
// inside InTx are kept only when fn succeeds, as a rolled-back transaction
// keeps nothing.
package journaltest

import (
	"context"
	"sync"

	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
)

type txKey struct{}

type pending struct {
	audits []audit.Entry
	events []event.Event
}

// Journal records what use cases commit. The zero value is ready.
type Journal struct {
	mu   sync.Mutex
	kept Recorder // what was committed
	// AuditErr, when set, fails every Audit (a broken database).
	AuditErr error
	// Commits and Rollbacks count outermost transactions.
	Commits, Rollbacks int
}

// InTx runs fn; what fn recorded is kept only when it returns nil. A nested
// call joins the outer transaction.
func (j *Journal) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*pending); ok {
		return fn(ctx)
	}
	p := &pending{}
	if err := fn(context.WithValue(ctx, txKey{}, p)); err != nil {
		j.mu.Lock()
		j.Rollbacks++
		j.mu.Unlock()
		return err
	}
	for _, e := range p.audits {
		_ = j.kept.Audit(ctx, e)
	}
	for _, ev := range p.events {
		_ = j.kept.Emit(ctx, ev)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Commits++
	return nil
}

// Audit keeps e (at commit when inside InTx).
func (j *Journal) Audit(ctx context.Context, e audit.Entry) error {
	if j.AuditErr != nil {
		return j.AuditErr
	}
	if p, ok := ctx.Value(txKey{}).(*pending); ok {
		p.audits = append(p.audits, e)
		return nil
	}
	return j.kept.Audit(ctx, e)
}

// Emit keeps ev (at commit when inside InTx).
func (j *Journal) Emit(ctx context.Context, ev event.Event) error {
	if p, ok := ctx.Value(txKey{}).(*pending); ok {
		p.events = append(p.events, ev)
		return nil
	}
	return j.kept.Emit(ctx, ev)
}

// Audits returns the committed audit entries, oldest first.
func (j *Journal) Audits() []audit.Entry { return j.kept.Audits() }

// Actions returns the committed audit actions, oldest first.
func (j *Journal) Actions() []string {
	var out []string
	for _, e := range j.Audits() {
		out = append(out, e.Action)
	}
	return out
}

// Events returns the committed events, oldest first.
func (j *Journal) Events() []event.Event { return j.kept.Events() }

// EventTypes returns the committed event types, oldest first.
func (j *Journal) EventTypes() []string {
	var out []string
	for _, e := range j.Events() {
		out = append(out, e.Type)
	}
	return out
}
