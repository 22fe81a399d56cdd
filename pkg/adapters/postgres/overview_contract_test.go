package postgres_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/overview/overviewtest"
)

// fleetWorld creates agents with plain SQL; a failing agent gets a
// failing deployment health on an object of its own stack.
type fleetWorld struct{ db *sqlx.DB }

func (w fleetWorld) Agent(t *testing.T, a overviewtest.Agent) uuid.UUID {
	t.Helper()
	status := "ACTIVE"
	if a.Inactive {
		status = "INACTIVE"
	}
	var heartbeat *time.Time
	if a.HeartbeatAgo != nil {
		hb := time.Now().Add(-*a.HeartbeatAgo)
		heartbeat = &hb
	}
	var id uuid.UUID
	if err := w.db.Get(&id, `INSERT INTO agents (name, cluster_name, status, last_heartbeat, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, a.Name, a.Cluster, status, heartbeat, time.Now().Add(-a.CreatedAgo)); err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Labels {
		w.db.MustExec(`INSERT INTO agent_labels (agent_id, label) VALUES ($1, $2)`, id, l)
	}
	if a.Failing {
		pw := pgWorld(w)
		obj := pw.Object(t, pw.Stack(t))
		w.db.MustExec(`INSERT INTO deployment_health (agent_id, deployment_object_id, status, checked_at) VALUES ($1, $2, 'failing', now())`, id, obj)
	}
	return id
}

func TestOverviewFleetContract(t *testing.T) {
	overviewtest.RunFleetContract(t, func(t *testing.T) overviewtest.Repos {
		db := pgtest.New(t)
		return overviewtest.Repos{Read: postgres.NewOverview(postgres.NewStore(db)), World: fleetWorld{db}}
	})
}
