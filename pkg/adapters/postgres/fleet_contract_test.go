package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/fleet/fleettest"
)

// fleetPG creates, with plain SQL, the rows each fleet signal counts.
type fleetPG struct{ db *sqlx.DB }

func (w fleetPG) AddAgent(t *testing.T, a fleettest.AgentSpec) uuid.UUID {
	t.Helper()
	status := "ACTIVE"
	if a.Inactive {
		status = "INACTIVE"
	}
	var hb *time.Time
	if a.HeartbeatAgo != nil {
		h := time.Now().Add(-*a.HeartbeatAgo)
		hb = &h
	}
	var id uuid.UUID
	if err := w.db.Get(&id, `INSERT INTO agents (name, cluster_name, status, last_heartbeat) VALUES ($1, $2, $3, $4)
		RETURNING id`, a.Name, a.Cluster, status, hb); err != nil {
		t.Fatal(err)
	}
	return id
}

// targeted returns a new object, the head of a new stack targeted at agentID.
func (w fleetPG) targeted(t *testing.T, agentID uuid.UUID) uuid.UUID {
	t.Helper()
	pw := pgWorld(w)
	st := pw.Stack(t)
	w.db.MustExec(`INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, agentID, st)
	// An older object of the same stack never counts: only the head does.
	pw.Object(t, st)
	return pw.Object(t, st)
}

func (w fleetPG) PendingObjects(t *testing.T, agentID uuid.UUID, n int) {
	for range n {
		w.targeted(t, agentID)
	}
}

func (w fleetPG) AckedObject(t *testing.T, agentID uuid.UUID) {
	obj := w.targeted(t, agentID)
	w.db.MustExec(`INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES ($1, $2, 'DEPLOY', 'SUCCESS')`, agentID, obj)
}

func (w fleetPG) WorkOrders(t *testing.T, agentID uuid.UUID, pending, claimed int) {
	for range pending {
		var wo uuid.UUID
		if err := w.db.Get(&wo, `INSERT INTO work_orders (work_type, yaml_content) VALUES ('build', 'x') RETURNING id`); err != nil {
			t.Fatal(err)
		}
		w.db.MustExec(`INSERT INTO work_order_targets (work_order_id, agent_id) VALUES ($1, $2)`, wo, agentID)
	}
	for range claimed {
		w.db.MustExec(`INSERT INTO work_orders (work_type, yaml_content, status, claimed_by, claimed_at)
			VALUES ('build', 'x', 'CLAIMED', $1, now())`, agentID)
	}
}

func (w fleetPG) Health(t *testing.T, agentID uuid.UUID, status string) {
	pw := pgWorld(w)
	obj := pw.Object(t, pw.Stack(t))
	w.db.MustExec(`INSERT INTO deployment_health (agent_id, deployment_object_id, status, checked_at) VALUES ($1, $2, $3, now())`,
		agentID, obj, status)
}

func (w fleetPG) Events(t *testing.T, agentID uuid.UUID, n int, latest time.Time) {
	pw := pgWorld(w)
	obj := pw.Object(t, pw.Stack(t))
	for i := range n {
		w.db.MustExec(`INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status, created_at)
			VALUES ($1, $2, 'DEPLOY', 'FAILURE', $3)`, agentID, obj, latest.Add(-time.Duration(i)*time.Minute))
	}
	// A deleted event never counts, however recent.
	w.db.MustExec(`INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status, created_at, deleted_at)
		VALUES ($1, $2, 'DEPLOY', 'FAILURE', $3, now())`, agentID, obj, latest.Add(time.Hour))
}

func (w fleetPG) Registers(t *testing.T, agentIDs ...uuid.UUID) uuid.UUID {
	t.Helper()
	var g uuid.UUID
	if err := w.db.Get(&g, `INSERT INTO generators (name) VALUES ($1) RETURNING id`, "g-"+uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	for _, a := range agentIDs {
		w.db.MustExec(`INSERT INTO agent_generator_registrations (agent_id, generator_id) VALUES ($1, $2)`, a, g)
	}
	return g
}

func TestFleetContract(t *testing.T) {
	fleettest.RunContract(t, func(t *testing.T) fleettest.Repos {
		db := pgtest.New(t)
		return fleettest.Repos{Repo: postgres.NewFleet(postgres.NewStore(db)), World: fleetPG{db}}
	})
}

// countingTracer counts the statements sent to PostgreSQL.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestFleetQueryCount holds the fleet record to grouped queries: listing
// the whole fleet costs the same number of statements with 3 agents as
// with 60 (one for the agents, one per signal), whatever each agent has.
func TestFleetQueryCount(t *testing.T) {
	count := func(agents int) int64 {
		cfg, err := pgx.ParseConfig(pgtest.NewURL(t))
		if err != nil {
			t.Fatal(err)
		}
		tr := &countingTracer{}
		cfg.Tracer = tr
		db := postgres.OpenDB(*cfg)
		t.Cleanup(func() { _ = db.Close() })
		w := fleetPG{db}
		for i := range agents {
			id := w.AddAgent(t, fleettest.AgentSpec{Name: fmt.Sprintf("a%03d", i), Cluster: "c"})
			w.PendingObjects(t, id, 1)
			w.WorkOrders(t, id, 1, 1)
			w.Health(t, id, "failing")
			w.Events(t, id, 1, time.Now())
		}
		repo := postgres.NewFleet(postgres.NewStore(db))
		ctx := context.Background()
		before := tr.n.Load()
		list, err := repo.Agents(ctx, nil)
		if err != nil || len(list) != agents {
			t.Fatalf("Agents: %d %v", len(list), err)
		}
		sig, err := repo.Signals(ctx)
		if err != nil || len(sig) != agents {
			t.Fatalf("Signals: %d %v", len(sig), err)
		}
		return tr.n.Load() - before
	}
	small, large := count(3), count(60)
	if small != large || small != 6 {
		t.Fatalf("statements for 3 agents: %d, for 60: %d; want 6 for both (agents + 5 grouped signals)", small, large)
	}
}
