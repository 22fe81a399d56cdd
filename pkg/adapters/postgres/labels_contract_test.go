package postgres_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/labeling/labelingtest"
)

// The label repositories of both owner tables meet the same contract as the
// in-memory one the use-case tests use.
func TestLabelsContract(t *testing.T) {
	t.Run("agents", func(t *testing.T) {
		labelingtest.RunRepositoryContract(t, func(t *testing.T) labelingtest.Subject {
			db := pgtest.New(t)
			return labelingtest.Subject{Repo: postgres.NewAgentLabels(postgres.NewStore(db)),
				NewOwner: func(t *testing.T) uuid.UUID {
					return insertRow(t, db, `INSERT INTO agents (name, cluster_name) VALUES ($1, 'c') RETURNING id`)
				},
				UniqueKeys: true}
		})
	})
	t.Run("stacks", func(t *testing.T) {
		labelingtest.RunRepositoryContract(t, func(t *testing.T) labelingtest.Subject {
			db := pgtest.New(t)
			return labelingtest.Subject{Repo: postgres.NewStackLabels(postgres.NewStore(db)),
				NewOwner: func(t *testing.T) uuid.UUID {
					return insertRow(t, db, `INSERT INTO stacks (name) VALUES ($1) RETURNING id`)
				}}
		})
	})
}

// insertRow runs an INSERT … RETURNING id whose $1 is a fresh name.
func insertRow(t *testing.T, db *sqlx.DB, q string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := db.Get(&id, q, "n-"+uuid.NewString()[:8]); err != nil {
		t.Fatal(err)
	}
	return id
}
