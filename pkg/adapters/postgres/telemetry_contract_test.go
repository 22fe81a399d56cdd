package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry/telemetrytest"
)

type pgTelemetryFixtures struct {
	s *postgres.Store
	pgFixtures
}

func (f pgTelemetryFixtures) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := f.s.DB().ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func (f pgTelemetryFixtures) Stack(t *testing.T) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := f.s.DB().GetContext(context.Background(), &id,
		`INSERT INTO stacks (name) VALUES ($1) RETURNING id`, "tel-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f pgTelemetryFixtures) Associate(t *testing.T, agentID, stackID uuid.UUID) {
	f.exec(t, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, agentID, stackID)
}

func (f pgTelemetryFixtures) DeleteStack(t *testing.T, stackID uuid.UUID) {
	f.exec(t, `UPDATE stacks SET deleted_at = now() WHERE id = $1`, stackID)
}

func (f pgTelemetryFixtures) Age(t *testing.T, stackID uuid.UUID, d time.Duration) {
	for _, table := range []string{"stack_pod_logs", "stack_k8s_events"} {
		f.exec(t, `UPDATE `+table+` SET created_at = created_at - make_interval(secs => $2) WHERE stack_id = $1`, stackID, d.Seconds())
	}
}

func (f pgTelemetryFixtures) Count(t *testing.T, stackID uuid.UUID) (logs, events int) {
	t.Helper()
	ctx := context.Background()
	if err := f.s.DB().GetContext(ctx, &logs, `SELECT count(*) FROM stack_pod_logs WHERE stack_id = $1`, stackID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DB().GetContext(ctx, &events, `SELECT count(*) FROM stack_k8s_events WHERE stack_id = $1`, stackID); err != nil {
		t.Fatal(err)
	}
	return logs, events
}

func TestTelemetryContract(t *testing.T) {
	t.Parallel()
	telemetrytest.RunTelemetryContract(t, func(t *testing.T) telemetrytest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		r := postgres.NewTelemetry(s)
		return telemetrytest.Subject{Store: r, Purger: r, Fixtures: pgTelemetryFixtures{s: s, pgFixtures: pgFixtures{s}}}
	})
}
