// Package pakstest holds an in-memory implementation of the auth service's
// PAK ports (Lookup, ShortTokenStore, AdminStore) and the contract every
// implementation must meet, run against both the memory one and PostgreSQL
// (pkg/adapters/postgres).
package pakstest

import (
	"context"
	"sort"
	"sync"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

var (
	_ paks.Lookup          = (*Memory)(nil)
	_ paks.ShortTokenStore = (*Memory)(nil)
	_ paks.AdminStore      = (*Memory)(nil)
	_ paks.TenantLister    = (*Memory)(nil)
)

// Memory keeps PAK hashes in memory with the lookup's precedence and
// filters: the admin hash, then a live agent with a non-empty hash, then a
// live, active generator; SetAdminHash also keeps the admin-generator's
// hash, as the table's upsert does.
type Memory struct {
	mu          sync.Mutex
	admin       string
	agents      []holder
	generators  []holder
	adminGen    uuid.UUID
	shorts      map[string]string
	initialized bool
}

type holder struct {
	id      uuid.UUID
	name    string
	hash    string
	live    bool
	enabled bool
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{shorts: map[string]string{}} }

// AddAgent seeds an agent holding hash.
func (m *Memory) AddAgent(hash string, live bool) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.agents = append(m.agents, holder{id: id, hash: hash, live: live, enabled: true})
	return id
}

// AddGenerator seeds a generator holding hash.
func (m *Memory) AddGenerator(hash string, live, active bool) uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := uuid.New()
	m.generators = append(m.generators, holder{id: id, name: "g-" + id.String(), hash: hash, live: live, enabled: active})
	return id
}

func first(hs []holder, hash string) *uuid.UUID {
	for _, h := range hs {
		if h.live && h.enabled && h.hash != "" && h.hash == hash {
			id := h.id
			return &id
		}
	}
	return nil
}

func (m *Memory) LookupPAK(_ context.Context, hash string) (paks.Match, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return paks.Match{AdminHash: m.admin, AgentID: first(m.agents, hash), GeneratorID: first(m.generators, hash),
		ShortToken: m.shorts[hash]}, nil
}

func (m *Memory) RecordShortToken(_ context.Context, hash, short string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shorts[hash] = short
	return nil
}

func (m *Memory) LockBootstrap(context.Context) error { return nil }

func (m *Memory) IsInitialized(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.initialized, nil
}

func (m *Memory) MarkInitialized(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.initialized = true
	return nil
}

func (m *Memory) SetAdminHash(_ context.Context, hash string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.admin
	m.admin = hash
	for i, g := range m.generators {
		if g.id == m.adminGen && g.live {
			m.generators[i].hash = hash
			return prev, nil
		}
	}
	m.adminGen = uuid.New()
	m.generators = append(m.generators, holder{id: m.adminGen, name: generator.AdminGeneratorName, hash: hash, live: true, enabled: true})
	return prev, nil
}

// ListTenants lists the live generators (active or not) by name; the
// memory store holds no system generator.
func (m *Memory) ListTenants(context.Context) ([]generator.Tenant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []generator.Tenant{}
	for _, g := range m.generators {
		if g.live {
			out = append(out, generator.Tenant{ID: g.id, Name: g.name})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
