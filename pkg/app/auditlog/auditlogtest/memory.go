// Package auditlogtest holds an in-memory audit trail for use-case tests
// and the contract both it and the PostgreSQL adapter must keep.
package auditlogtest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
)

var _ auditlog.Store = (*Memory)(nil)

// Memory keeps audit entries as the audit_logs table would: each written
// entry gets an id and the time of writing.
type Memory struct {
	mu      sync.Mutex
	entries []audit.Entry
}

// Audit writes e (the journal's side of the trail).
func (m *Memory) Audit(_ context.Context, e audit.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e.ID = uuid.New()
	e.Timestamp = time.Now()
	e.CreatedAt = e.Timestamp
	m.entries = append(m.entries, e)
	return nil
}

// QueryAudit lists the entries matching f, newest first, with their total.
func (m *Memory) QueryAudit(_ context.Context, f audit.Filter) ([]audit.Entry, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var match []audit.Entry
	for _, e := range m.entries {
		if matches(e, f) {
			match = append(match, e)
		}
	}
	slices.SortStableFunc(match, func(a, b audit.Entry) int { return b.Timestamp.Compare(a.Timestamp) })
	total := len(match)
	if f.Offset >= len(match) {
		return []audit.Entry{}, total, nil
	}
	match = match[f.Offset:]
	if f.Limit < len(match) {
		match = match[:f.Limit]
	}
	return match, total, nil
}

func matches(e audit.Entry, f audit.Filter) bool {
	switch {
	case f.ActorType != "" && e.ActorType != f.ActorType,
		f.ActorID != nil && (e.ActorID == nil || *e.ActorID != *f.ActorID),
		f.ResourceType != "" && e.ResourceType != f.ResourceType,
		f.ResourceID != nil && (e.ResourceID == nil || *e.ResourceID != *f.ResourceID),
		f.From != nil && e.Timestamp.Before(*f.From),
		f.To != nil && !e.Timestamp.Before(*f.To):
		return false
	}
	if f.Action == "" {
		return true
	}
	// "agent.*" is the prefix "agent."; "agent*" the prefix "agent".
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		return strings.HasPrefix(e.Action, prefix)
	}
	return e.Action == f.Action
}
