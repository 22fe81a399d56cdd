package postgres_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth/deploymenthealthtest"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics/diagnosticstest"
)

// pgWorld creates the rows health records and diagnostic requests refer
// to, with plain SQL.
type pgWorld struct{ db *sqlx.DB }

func (w pgWorld) Agent(t *testing.T) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.db.Get(&id, `INSERT INTO agents (name, cluster_name) VALUES ($1, 'c') RETURNING id`, "a-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func (w pgWorld) Stack(t *testing.T) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.db.Get(&id, `INSERT INTO stacks (name) VALUES ($1) RETURNING id`, "s-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func (w pgWorld) Object(t *testing.T, stackID uuid.UUID) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := w.db.Get(&id, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum) VALUES ($1, $2, md5($2))
		RETURNING id`, stackID, "kind: ConfigMap # "+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func (w pgWorld) DeleteObject(t *testing.T, id uuid.UUID) {
	t.Helper()
	w.db.MustExec(`UPDATE deployment_objects SET deleted_at = now() WHERE id = $1`, id)
}

func TestDeploymentHealthContract(t *testing.T) {
	deploymenthealthtest.RunRecordRepositoryContract(t, func(t *testing.T) deploymenthealthtest.Repos {
		db := pgtest.New(t)
		s := postgres.NewStore(db)
		return deploymenthealthtest.Repos{Records: postgres.NewDeploymentHealth(s), Refs: postgres.NewExistence(s), World: pgWorld{db}}
	})
}

func TestDiagnosticsContract(t *testing.T) {
	diagnosticstest.RunRequestRepositoryContract(t, func(t *testing.T) diagnosticstest.Repos {
		db := pgtest.New(t)
		s := postgres.NewStore(db)
		return diagnosticstest.Repos{Requests: postgres.NewDiagnostics(s), Refs: postgres.NewExistence(s), World: pgWorld{db}}
	})
}
