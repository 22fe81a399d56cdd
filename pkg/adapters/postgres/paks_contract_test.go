package postgres_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/paks/pakstest"
)

func TestPAKContract(t *testing.T) {
	pakstest.RunPAKContract(t, func(t *testing.T) pakstest.Subject {
		db := pgtest.New(t)
		s := postgres.NewStore(db)
		paks := postgres.NewPAKs(s)
		ins := func(t *testing.T, q string, args ...any) uuid.UUID {
			var id uuid.UUID
			if err := db.Get(&id, q, args...); err != nil {
				t.Fatal(err)
			}
			return id
		}
		return pakstest.Subject{Lookup: paks, Shorts: paks, Admin: paks, Tenants: paks, Tx: s,
			AddAgent: func(t *testing.T, h string, live bool) uuid.UUID {
				return ins(t, `INSERT INTO agents (name, cluster_name, pak_hash, deleted_at)
					VALUES ($1, 'c', $2, CASE WHEN $3 THEN NULL ELSE now() END) RETURNING id`, "a-"+uuid.NewString(), h, live)
			},
			AddGenerator: func(t *testing.T, h string, live, active bool) uuid.UUID {
				return ins(t, `INSERT INTO generators (name, pak_hash, is_active, deleted_at)
					VALUES ($1, $2, $3, CASE WHEN $4 THEN NULL ELSE now() END) RETURNING id`, "g-"+uuid.NewString(), h, active, live)
			}}
	})
}
