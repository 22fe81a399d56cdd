package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/workorders/workorderstest"
)

type pgAgents struct{ s *postgres.Store }

func (f pgAgents) Agent(t *testing.T, active bool, labels []string, annotations map[string]string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	status := "ACTIVE"
	if !active {
		status = "INACTIVE"
	}
	var id uuid.UUID
	if err := f.s.DB().GetContext(ctx, &id, `INSERT INTO agents (name, cluster_name, status) VALUES ($1, 'c', $2) RETURNING id`,
		"agent-"+uuid.NewString(), status); err != nil {
		t.Fatal(err)
	}
	for _, l := range labels {
		if _, err := f.s.DB().ExecContext(ctx, `INSERT INTO agent_labels (agent_id, label) VALUES ($1, $2)`, id, l); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range annotations {
		if _, err := f.s.DB().ExecContext(ctx, `INSERT INTO agent_annotations (agent_id, key, value) VALUES ($1, $2, $3)`, id, k, v); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func TestWorkOrderContract(t *testing.T) {
	t.Parallel()
	workorderstest.RunWorkOrderContract(t, func(t *testing.T) workorderstest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		w := postgres.NewWorkOrders(s)
		return workorderstest.Subject{Orders: w, Claims: w, Log: w, Agents: w, Retries: w, Fixtures: pgAgents{s}}
	})
}

func TestScheduleContract(t *testing.T) {
	t.Parallel()
	workorderstest.RunScheduleContract(t, func(t *testing.T) workorderstest.ScheduleSubject {
		s := postgres.NewStore(pgtest.New(t))
		sc := postgres.NewSchedules(s)
		return workorderstest.ScheduleSubject{Schedules: sc, Runs: sc, Orders: postgres.NewWorkOrders(s)}
	})
}
