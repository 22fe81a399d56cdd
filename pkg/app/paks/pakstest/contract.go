package pakstest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

// Subject is one implementation of the PAK ports, with seeding.
type Subject struct {
	Lookup paks.Lookup
	Shorts paks.ShortTokenStore
	Admin  paks.AdminStore
	Tx     journal.Transactor
	// Tenants lists the named PAK owners (GET /paks).
	Tenants paks.TenantLister
	// AddAgent and AddGenerator seed holders of a hash.
	AddAgent     func(t *testing.T, hash string, live bool) uuid.UUID
	AddGenerator func(t *testing.T, hash string, live, active bool) uuid.UUID
}

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hashC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

// RunPAKContract checks the lookup's precedence and filters, short tokens
// and the admin bootstrap state.
func RunPAKContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	t.Run("lookup", func(t *testing.T) {
		s := newSubject(t)
		m, err := s.Lookup.LookupPAK(ctx, hashA)
		if err != nil || m.AdminHash != "" || m.AgentID != nil || m.GeneratorID != nil || m.ShortToken != "" {
			t.Fatalf("empty store: %+v, %v", m, err)
		}
		agentID := s.AddAgent(t, hashA, true)
		s.AddAgent(t, hashB, false) // deleted
		genID := s.AddGenerator(t, hashC, true, true)
		s.AddGenerator(t, hashB, true, false) // deactivated
		s.AddAgent(t, "", true)               // mid-creation: never matches
		m, _ = s.Lookup.LookupPAK(ctx, hashA)
		if m.AgentID == nil || *m.AgentID != agentID || m.GeneratorID != nil {
			t.Fatalf("agent hash: %+v", m)
		}
		m, _ = s.Lookup.LookupPAK(ctx, hashC)
		if m.GeneratorID == nil || *m.GeneratorID != genID || m.AgentID != nil {
			t.Fatalf("generator hash: %+v", m)
		}
		if m, _ = s.Lookup.LookupPAK(ctx, hashB); m.AgentID != nil || m.GeneratorID != nil {
			t.Fatalf("a deleted agent or inactive generator matched: %+v", m)
		}
		if m, _ = s.Lookup.LookupPAK(ctx, ""); m.AgentID != nil {
			t.Fatalf("the empty hash matched: %+v", m)
		}
	})
	t.Run("tenants", func(t *testing.T) {
		s := newSubject(t)
		live := s.AddGenerator(t, hashA, true, true)
		inactive := s.AddGenerator(t, hashB, true, false)
		deleted := s.AddGenerator(t, hashC, false, true)
		s.AddAgent(t, hashA, true)
		got, err := s.Tenants.ListTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uuid.UUID]bool{}
		for i, g := range got {
			seen[g.ID] = true
			if g.Name == "" {
				t.Fatalf("tenant %s without a name", g.ID)
			}
			if i > 0 && got[i-1].Name > g.Name {
				t.Fatalf("not ordered by name: %+v", got)
			}
		}
		if !seen[live] || !seen[inactive] || seen[deleted] || seen[generator.SystemID] || len(got) != 2 {
			t.Fatalf("tenants %+v: want the live generators (active or not), not the deleted or system one", got)
		}
	})
	t.Run("short tokens", func(t *testing.T) {
		s := newSubject(t)
		if err := s.Shorts.RecordShortToken(ctx, hashA, "brokkr_BR1"); err != nil {
			t.Fatal(err)
		}
		if err := s.Shorts.RecordShortToken(ctx, hashA, "brokkr_BR2"); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Lookup.LookupPAK(ctx, hashA); m.ShortToken != "brokkr_BR2" {
			t.Fatalf("short token %q, want the last recorded", m.ShortToken)
		}
		if m, _ := s.Lookup.LookupPAK(ctx, hashB); m.ShortToken != "" {
			t.Fatalf("another hash's short token: %q", m.ShortToken)
		}
	})
	t.Run("admin", func(t *testing.T) {
		s := newSubject(t)
		err := s.Tx.InTx(ctx, func(ctx context.Context) error {
			if err := s.Admin.LockBootstrap(ctx); err != nil {
				return err
			}
			done, err := s.Admin.IsInitialized(ctx)
			if err != nil || done {
				t.Fatalf("IsInitialized = %v, %v", done, err)
			}
			prev, err := s.Admin.SetAdminHash(ctx, hashA)
			if err != nil || prev != "" {
				t.Fatalf("first SetAdminHash = %q, %v", prev, err)
			}
			return s.Admin.MarkInitialized(ctx)
		})
		if err != nil {
			t.Fatal(err)
		}
		if done, _ := s.Admin.IsInitialized(ctx); !done {
			t.Fatal("not initialized after MarkInitialized")
		}
		m, _ := s.Lookup.LookupPAK(ctx, hashA)
		if m.AdminHash != hashA || m.GeneratorID == nil {
			t.Fatalf("after bootstrap: %+v; want the admin hash and admin-generator holding it", m)
		}
		gen := *m.GeneratorID
		prev, err := s.Admin.SetAdminHash(ctx, hashB)
		if err != nil || prev != hashA {
			t.Fatalf("rotation = %q, %v", prev, err)
		}
		m, _ = s.Lookup.LookupPAK(ctx, hashB)
		if m.AdminHash != hashB || m.GeneratorID == nil || *m.GeneratorID != gen {
			t.Fatalf("after rotation: %+v; want the same admin-generator with the new hash", m)
		}
		if m, _ = s.Lookup.LookupPAK(ctx, hashA); m.GeneratorID != nil {
			t.Fatalf("the old admin hash still names a generator: %+v", m)
		}
	})
}
