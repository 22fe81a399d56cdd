package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping/housekeepingtest"
)

type pgHousekeepingFixtures struct {
	s *postgres.Store
	pgFixtures
	pgAgents
}

func (f pgHousekeepingFixtures) AuditEntry(t *testing.T, createdAt time.Time) {
	t.Helper()
	if _, err := f.s.DB().ExecContext(context.Background(), `INSERT INTO audit_logs (actor_type, action, resource_type, created_at)
		VALUES ('system', 'test', 'test', $1)`, createdAt); err != nil {
		t.Fatal(err)
	}
}

func (f pgHousekeepingFixtures) AuditCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.s.DB().GetContext(context.Background(), &n, `SELECT count(*) FROM audit_logs`); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f pgHousekeepingFixtures) DiagnosticRequest(t *testing.T, status string, createdAt, expiresAt time.Time, completedAt *time.Time) uuid.UUID {
	t.Helper()
	agentID, objectID := f.pgAgents.Agent(t, true, nil, nil), f.DeploymentObject(t)
	var id uuid.UUID
	if err := f.s.DB().GetContext(context.Background(), &id, `INSERT INTO diagnostic_requests
		(agent_id, deployment_object_id, status, created_at, expires_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		agentID, objectID, status, createdAt, expiresAt, completedAt); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f pgHousekeepingFixtures) DiagnosticStatus(t *testing.T, id uuid.UUID) (string, bool) {
	t.Helper()
	var status string
	err := f.s.DB().GetContext(context.Background(), &status, `SELECT status FROM diagnostic_requests WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return status, true
}

func TestHousekeepingContract(t *testing.T) {
	t.Parallel()
	housekeepingtest.RunHousekeepingContract(t, func(t *testing.T) housekeepingtest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		h := postgres.NewHousekeeping(s)
		return housekeepingtest.Subject{Diagnostics: h, Audit: h,
			Fixtures: pgHousekeepingFixtures{s: s, pgFixtures: pgFixtures{s}, pgAgents: pgAgents{s}}}
	})
}
