package postgres_test

import (
	"context"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
)

// TestSchemaTenantsAreIsolated: two tenants on one database each get their
// own tables, migrations and data; neither sees the other's rows.
func TestSchemaTenantsAreIsolated(t *testing.T) {
	url := pgtest.NewEmpty(t)
	ctx := context.Background()
	open := func(schema string) *postgres.Store {
		db, err := postgres.Open(ctx, postgres.Options{URL: url, Schema: schema, MaxOpenConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if err := postgres.NewMigrator(db, schema).Up(ctx); err != nil {
			t.Fatalf("migrate %s: %v", schema, err)
		}
		v, dirty, err := postgres.NewMigrator(db, schema).Version(ctx)
		if err != nil || dirty || v == 0 {
			t.Fatalf("version in %s: %d dirty=%v err=%v", schema, v, dirty, err)
		}
		return postgres.NewStore(db)
	}
	a, b := open("tenant_a"), open("tenant_b")

	ag := agent.Agent{Name: "only-in-a", ClusterName: "c", Status: agent.StatusActive}
	if err := postgres.NewAgents(a).CreateAgent(ctx, &ag); err != nil {
		t.Fatal(err)
	}
	if got, _ := postgres.NewAgents(a).ListAgents(ctx); len(got) != 1 {
		t.Fatalf("tenant a sees %d agents, want 1", len(got))
	}
	if got, _ := postgres.NewAgents(b).ListAgents(ctx); len(got) != 0 {
		t.Fatalf("tenant b sees %d agents, want 0", len(got))
	}
	var tables int
	if err := a.DB().GetContext(ctx, &tables, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'agents'`); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatal("tenant migrations leaked tables into public")
	}
}

func TestOpenRejectsBadSchema(t *testing.T) {
	for _, s := range []string{"1abc", "a-b", "a b", "a;drop", string(make([]byte, 64))} {
		if _, err := postgres.Open(context.Background(), postgres.Options{URL: "postgres://x@127.0.0.1:1/x", Schema: s}); err == nil {
			t.Errorf("schema %q accepted", s)
		}
	}
	if !postgres.ValidSchema("tenant_1") || postgres.ValidSchema("x"+string(make([]byte, 63))) {
		t.Error("ValidSchema boundaries wrong")
	}
}

// TestMigrationsDownAndUp: every down migration reverses its up.
func TestMigrationsDownAndUp(t *testing.T) {
	url := pgtest.NewEmpty(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := postgres.NewMigrator(db, "")
	if err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	// Step down until no version is left: numbers may have gaps (they are
	// reserved per change and merged in any order).
	for steps := 0; ; steps++ {
		v, _, _ := m.Version(ctx)
		if v == 0 {
			break
		}
		if steps > 100 {
			t.Fatal("migrating down never reached version 0")
		}
		if err := m.Down(ctx); err != nil {
			t.Fatalf("down from %d: %v", v, err)
		}
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d tables left after migrating down", n)
	}
	if err := m.Up(ctx); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
