package pgtest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
)

func TestNewIsMigratedAndIsolated(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	t.Run("group", func(t *testing.T) {
		for i := 0; i < 6; i++ {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				db := pgtest.New(t)
				var n int
				if err := db.Get(&n, `SELECT count(*) FROM agents`); err != nil {
					t.Fatalf("not migrated: %v", err)
				}
				if n != 0 {
					t.Fatalf("database not fresh: %d agents", n)
				}
				if _, err := db.Exec(`INSERT INTO agents (name, cluster_name) VALUES ('a', 'c')`); err != nil {
					t.Fatal(err)
				}
				v, dirty, err := postgres.NewMigrator(db, "").Version(context.Background())
				if err != nil || dirty || v == 0 {
					t.Fatalf("version %d dirty %v err %v", v, dirty, err)
				}
				var name string
				if err := db.Get(&name, `SELECT current_database()`); err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				names = append(names, name)
				mu.Unlock()
			})
		}
	})
	// Every database is gone once its test ended.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, n := range names {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, n).Scan(&ok); err != nil || ok {
			t.Fatalf("%s still exists (%v)", n, err)
		}
	}
}

func TestNewEmpty(t *testing.T) {
	url := pgtest.NewEmpty(t)
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`); err != nil || n != 0 {
		t.Fatalf("empty database has %d tables (%v)", n, err)
	}
	if err := postgres.NewMigrator(db, "").Up(context.Background()); err != nil {
		t.Fatal(err)
	}
}
