// Package idempotencytest holds an in-memory idempotency-key store and the
// contract suite that both it and the PostgreSQL adapter must pass.
package idempotencytest

import (
	"context"
	"sync"
	"time"

	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

type txKey struct{}

type tx struct {
	saved map[string]idempotency.Record
	locks []string
}

// Memory implements journal.Transactor and idempotency.KeyRepository as
// PostgreSQL does: a lock is held until its transaction ends and is not
// granted to another one meanwhile; a saved record becomes visible to
// others at commit and disappears with a rollback; (scope, key) is unique.
type Memory struct {
	mu      sync.Mutex
	records map[string]idempotency.Record
	locks   map[string]*tx
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{records: map[string]idempotency.Record{}, locks: map[string]*tx{}}
}

var (
	_ journal.Transactor        = (*Memory)(nil)
	_ idempotency.KeyRepository = (*Memory)(nil)
)

func id(scope, key string) string { return scope + "\x00" + key }

// InTx runs fn in a transaction; a nested call joins the outer one.
func (m *Memory) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*tx); ok {
		return fn(ctx)
	}
	t := &tx{saved: map[string]idempotency.Record{}}
	err := fn(context.WithValue(ctx, txKey{}, t))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range t.locks {
		delete(m.locks, k)
	}
	if err != nil {
		return err
	}
	for k, r := range t.saved {
		if _, dup := m.records[k]; dup {
			return domain.Conflict("already exists")
		}
		m.records[k] = r
	}
	return nil
}

// LockIdempotencyKey implements KeyRepository; outside a transaction the
// lock ends at once (as a transaction-scoped lock in autocommit does).
func (m *Memory) LockIdempotencyKey(ctx context.Context, scope, key string) (bool, error) {
	t, _ := ctx.Value(txKey{}).(*tx)
	m.mu.Lock()
	defer m.mu.Unlock()
	k := id(scope, key)
	if holder, held := m.locks[k]; held {
		return holder == t, nil
	}
	if t != nil {
		m.locks[k] = t
		t.locks = append(t.locks, k)
	}
	return true, nil
}

// GetIdempotencyKey implements KeyRepository: committed records, and the
// caller's own transaction's.
func (m *Memory) GetIdempotencyKey(ctx context.Context, scope, key string) (idempotency.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := ctx.Value(txKey{}).(*tx); ok {
		if r, ok := t.saved[id(scope, key)]; ok {
			return r, true, nil
		}
	}
	r, ok := m.records[id(scope, key)]
	return r, ok, nil
}

// SaveIdempotencyKey implements KeyRepository.
func (m *Memory) SaveIdempotencyKey(ctx context.Context, r idempotency.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := id(r.Scope, r.Key)
	t, inTx := ctx.Value(txKey{}).(*tx)
	if _, dup := m.records[k]; dup {
		return domain.Conflict("already exists")
	}
	if inTx {
		if _, dup := t.saved[k]; dup {
			return domain.Conflict("already exists")
		}
	}
	if len(r.Key) > idempotency.MaxKeyLen {
		return domain.Invalid("value too long")
	}
	r.CreatedAt = time.Now()
	if inTx {
		t.saved[k] = r
	} else {
		m.records[k] = r
	}
	return nil
}
