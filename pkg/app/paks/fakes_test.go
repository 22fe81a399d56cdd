package paks

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
)

type memLookup struct {
	mu         sync.Mutex
	admin      string
	agents     map[string]uuid.UUID
	generators map[string]uuid.UUID
	shorts     map[string]string // hash → recorded public part
	calls      int
	err        error
}

func (m *memLookup) RecordShortToken(_ context.Context, hash, public string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shorts == nil {
		m.shorts = map[string]string{}
	}
	m.shorts[hash] = public
	return nil
}

func (m *memLookup) LookupPAK(_ context.Context, hash string) (Match, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.err != nil {
		return Match{}, m.err
	}
	out := Match{AdminHash: m.admin, ShortToken: m.shorts[hash]}
	if id, ok := m.agents[hash]; ok {
		out.AgentID = &id
	}
	if id, ok := m.generators[hash]; ok {
		out.GeneratorID = &id
	}
	return out, nil
}

// memCounter is a fixed-window counter on a fake clock.
type memCounter struct {
	mu     sync.Mutex
	now    time.Time
	counts map[string]int64
	ends   map[string]time.Time
	err    error
}

func newMemCounter() *memCounter {
	return &memCounter{now: time.Unix(0, 0), counts: map[string]int64{}, ends: map[string]time.Time{}}
}

func (m *memCounter) expire(key string) {
	if end, ok := m.ends[key]; ok && !m.now.Before(end) {
		delete(m.ends, key)
		delete(m.counts, key)
	}
}

func (m *memCounter) Failures(_ context.Context, key string) (int64, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, 0, m.err
	}
	m.expire(key)
	return m.counts[key], m.ends[key].Sub(m.now), nil
}

func (m *memCounter) AddFailure(_ context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, 0, m.err
	}
	m.expire(key)
	if _, ok := m.ends[key]; !ok {
		m.ends[key] = m.now.Add(window)
	}
	m.counts[key]++
	return m.counts[key], m.ends[key].Sub(m.now), nil
}

func (m *memCounter) advance(d time.Duration) { m.mu.Lock(); m.now = m.now.Add(d); m.mu.Unlock() }

// memAdminStore keeps the admin state in memory; InTx serialises like the
// advisory lock and rolls back on error.
type memAdminStore struct {
	journaltest.Recorder
	txMu        sync.Mutex
	initialized bool
	adminHash   string
	genHash     string
	hasGen      bool
}

func (m *memAdminStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	m.txMu.Lock()
	defer m.txMu.Unlock()
	init, admin, gen, hasGen, rewind := m.initialized, m.adminHash, m.genHash, m.hasGen, m.Mark()
	if err := fn(ctx); err != nil {
		m.initialized, m.adminHash, m.genHash, m.hasGen = init, admin, gen, hasGen
		rewind()
		return err
	}
	return nil
}

func (m *memAdminStore) LockBootstrap(context.Context) error         { return nil }
func (m *memAdminStore) IsInitialized(context.Context) (bool, error) { return m.initialized, nil }
func (m *memAdminStore) MarkInitialized(context.Context) error       { m.initialized = true; return nil }
func (m *memAdminStore) SetAdminHash(_ context.Context, h string) (string, error) {
	prev := m.adminHash
	m.adminHash, m.genHash, m.hasGen = h, h, true
	return prev, nil
}

type memInvalidator struct {
	mu     sync.Mutex
	hashes []string
}

func (m *memInvalidator) Invalidate(_ context.Context, hashes ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hashes = append(m.hashes, hashes...)
	return nil
}
