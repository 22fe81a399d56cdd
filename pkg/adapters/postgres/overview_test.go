package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/overview"
)

// TestFleetQueries: sorting, filters, paging, counts and summaries of the
// console's fleet against real PostgreSQL.
func TestFleetQueries(t *testing.T) {
	db := pgtest.New(t)
	s := postgres.NewStore(db)
	ctx := context.Background()
	// a-online (fresh heartbeat), b-stale, c-never, d-inactive, e-failing (fresh, FAILURE event).
	db.MustExec(`INSERT INTO agents (name, cluster_name, status, last_heartbeat, created_at) VALUES
		('a-online', 'zeta', 'ACTIVE', now() - interval '5 seconds', now() - interval '5 days'),
		('b-stale', 'alpha', 'ACTIVE', now() - interval '1 hour', now() - interval '4 days'),
		('c-never', 'mid', 'ACTIVE', NULL, now() - interval '3 days'),
		('d-inactive', 'mid', 'INACTIVE', now() - interval '3 seconds', now() - interval '2 days'),
		('e-failing', 'beta', 'ACTIVE', now() - interval '10 seconds', now() - interval '1 day')`)
	id := func(name string) uuid.UUID {
		var out uuid.UUID
		if err := db.Get(&out, `SELECT id FROM agents WHERE name = $1`, name); err != nil {
			t.Fatal(err)
		}
		return out
	}
	db.MustExec(`INSERT INTO agent_labels (agent_id, label) VALUES ($1, 'env:prod'), ($2, 'env:prod'), ($3, 'env:dev')`,
		id("a-online"), id("e-failing"), id("b-stale"))
	var stackID uuid.UUID
	if err := db.Get(&stackID, `INSERT INTO stacks (name) VALUES ('web') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	db.MustExec(`INSERT INTO stack_labels (stack_id, label) VALUES ($1, 'env:prod')`, stackID)
	var objs []uuid.UUID
	for i := range 3 {
		var o uuid.UUID
		if err := db.Get(&o, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum) VALUES ($1, $2, md5($2)) RETURNING id`,
			stackID, "kind: ConfigMap # "+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	latest := objs[2]
	db.MustExec(`INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES
		($1, $3, 'DEPLOY', 'SUCCESS'), ($2, $3, 'DEPLOY', 'FAILURE')`, id("a-online"), id("e-failing"), latest)
	db.MustExec(`INSERT INTO deployment_health (agent_id, deployment_object_id, status, checked_at) VALUES ($1, $2, 'healthy', now())`,
		id("a-online"), latest)

	q := overview.FleetQuery{Sort: overview.SortName, Limit: 50, StaleAfter: 5 * time.Minute}
	names := func(q overview.FleetQuery) []string {
		t.Helper()
		rows, err := postgres.NewOverview(s).Fleet(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.Name)
		}
		return out
	}
	cases := []struct {
		name string
		mod  func(q *overview.FleetQuery)
		want []string
	}{
		{"by name", func(*overview.FleetQuery) {}, []string{"a-online", "b-stale", "c-never", "d-inactive", "e-failing"}},
		{"by name desc", func(q *overview.FleetQuery) { q.Desc = true }, []string{"e-failing", "d-inactive", "c-never", "b-stale", "a-online"}},
		{"by cluster", func(q *overview.FleetQuery) { q.Sort = overview.SortCluster }, []string{"b-stale", "e-failing", "c-never", "d-inactive", "a-online"}},
		{"by heartbeat, never first", func(q *overview.FleetQuery) { q.Sort = overview.SortHeartbeat }, []string{"c-never", "b-stale", "e-failing", "a-online", "d-inactive"}},
		{"by created desc", func(q *overview.FleetQuery) { q.Sort, q.Desc = overview.SortCreated, true }, []string{"e-failing", "d-inactive", "c-never", "b-stale", "a-online"}},
		{"page 2", func(q *overview.FleetQuery) { q.Limit, q.Offset = 2, 2 }, []string{"c-never", "d-inactive"}},
		{"text", func(q *overview.FleetQuery) { q.Text = "MID" }, []string{"c-never", "d-inactive"}},
		{"text is literal", func(q *overview.FleetQuery) { q.Text = "%" }, nil},
		{"label", func(q *overview.FleetQuery) { q.Label = "env:prod" }, []string{"a-online", "e-failing"}},
		{"online", func(q *overview.FleetQuery) { q.State = overview.StateOnline }, []string{"a-online", "e-failing"}},
		{"stale", func(q *overview.FleetQuery) { q.State = overview.StateStale }, []string{"b-stale"}},
		{"never", func(q *overview.FleetQuery) { q.State = overview.StateNever }, []string{"c-never"}},
		{"inactive", func(q *overview.FleetQuery) { q.State = overview.StateInactive }, []string{"d-inactive"}},
		{"failing", func(q *overview.FleetQuery) { q.State = overview.StateFailing }, []string{"e-failing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			qq := q
			tc.mod(&qq)
			if got := names(qq); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if n, err := postgres.NewOverview(s).CountFleet(ctx, overview.FleetQuery{Label: "env:prod", StaleAfter: time.Minute}); err != nil || n != 2 {
		t.Errorf("CountFleet(label) = %d, %v", n, err)
	}
	counts, err := postgres.NewOverview(s).FleetCounts(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := (overview.Counts{Total: 5, Online: 2, Stale: 1, Never: 1, Inactive: 1, Failing: 1}); counts != want {
		t.Errorf("counts %+v, want %+v", counts, want)
	}

	rows, err := postgres.NewOverview(s).Fleet(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]overview.AgentRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	now := time.Now()
	for name, want := range map[string]struct {
		objects, applied, failing, healthy int
		state                              string
	}{
		"a-online":   {1, 1, 0, 1, overview.RowHealthy},
		"e-failing":  {1, 0, 1, 0, overview.RowFailing},
		"b-stale":    {0, 0, 0, 0, overview.RowStale},
		"c-never":    {0, 0, 0, 0, overview.RowPending},
		"d-inactive": {0, 0, 0, 0, overview.RowInactive},
	} {
		r := byName[name]
		if r.Objects != want.objects || r.Applied != want.applied || r.Failing != want.failing || r.Healthy != want.healthy {
			t.Errorf("%s: objects %d applied %d failing %d healthy %d, want %+v", name, r.Objects, r.Applied, r.Failing, r.Healthy, want)
		}
		if st := r.State(now, 5*time.Minute); st != want.state {
			t.Errorf("%s: state %s, want %s", name, st, want.state)
		}
	}
	if l := byName["a-online"].Labels; !slices.Equal(l, []string{"env:prod"}) {
		t.Errorf("labels %v", l)
	}

	// A later SUCCESS on the failed object clears the failure.
	db.MustExec(`INSERT INTO agent_events (agent_id, deployment_object_id, event_type, status) VALUES ($1, $2, 'DEPLOY', 'SUCCESS')`,
		id("e-failing"), latest)
	if got := names(overview.FleetQuery{Sort: overview.SortName, State: overview.StateFailing, Limit: 50, StaleAfter: time.Minute}); got != nil {
		t.Errorf("failing after a later SUCCESS: %v", got)
	}

	// The agent's stacks say why; the stack's objects come newest first.
	as, err := postgres.NewOverview(s).AgentStacks(ctx, id("a-online"))
	if err != nil || len(as) != 1 || as[0].ByTarget || !slices.Equal(as[0].ByLabel, []string{"env:prod"}) || !as[0].Applied ||
		as[0].ObjectID == nil || *as[0].ObjectID != latest || as[0].Health == nil || *as[0].Health != "healthy" {
		t.Fatalf("AgentStacks: %+v, %v", as, err)
	}
	objRows, total, err := postgres.NewOverview(s).StackObjects(ctx, stackID, 2, 0)
	if err != nil || total != 3 || len(objRows) != 2 || objRows[0].ID != latest || objRows[0].Applied != 2 || objRows[0].Failed != 1 {
		t.Fatalf("StackObjects: %+v total %d, %v", objRows, total, err)
	}
	agentsOn, err := postgres.NewOverview(s).ObjectAgents(ctx, latest, 10)
	if err != nil || len(agentsOn) != 2 {
		t.Fatalf("ObjectAgents: %+v, %v", agentsOn, err)
	}
	for _, a := range agentsOn {
		if a.EventStatus != "SUCCESS" {
			t.Errorf("latest word of %s: %s", a.AgentName, a.EventStatus)
		}
	}
}
