package journaltest

import (
	"context"
	"slices"
	"sync"

	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
)

// Recorder is the journal of an in-memory fake whose InTx restores a
// snapshot (testsupport.SnapshotTx): Audit and Emit keep an entry at once,
// and the fake's snapshot calls Mark, whose rewind drops what was kept after
// it. Embed it; the zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	audits []audit.Entry
	events []event.Event
}

// Audit keeps e.
func (r *Recorder) Audit(_ context.Context, e audit.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.audits = append(r.audits, e)
	return nil
}

// Emit keeps ev.
func (r *Recorder) Emit(_ context.Context, ev event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return nil
}

// Audits returns the audit entries kept so far, oldest first.
func (r *Recorder) Audits() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.audits)
}

// Events returns the events kept so far, oldest first.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Mark returns what drops every entry kept after this call.
func (r *Recorder) Mark() (rewind func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	na, ne := len(r.audits), len(r.events)
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.audits, r.events = r.audits[:na], r.events[:ne]
	}
}
