// Package pgtest gives tests a fresh, migrated PostgreSQL database of their
// own on the real server (docs/architecture.md#tests), dropped when the test ends.
//
// The migrations run once per migration set into a template database named
// after a hash of the embedded SQL files; every test database is a copy of
// it (CREATE DATABASE ... TEMPLATE), which takes a few tens of
// milliseconds instead of running the migrations again. Several test
// processes (go test runs packages in parallel) and several checkouts with
// different migrations can share one server safely.
//
// BROKKR_TEST_PG_URL overrides the server (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); it must
// name a role allowed to create databases. With -short, tests that need
// PostgreSQL are skipped.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/migrations"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
)

// EnvURL names the environment variable that overrides the server URL.
const EnvURL = "BROKKR_TEST_PG_URL"

// DefaultURL is the local development server.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// MaxOpenConns bounds each test pool: many test databases share one server
// whose max_connections is usually 100.
const MaxOpenConns = 8

const (
	templatePrefix = "brokkr_tmpl_"
	buildPrefix    = "brokkr_tmplbuild_"
	testPrefix     = "brokkr_test_"
	// templateLockKey serialises template builds across processes.
	templateLockKey int64 = 0x62726f6b6b72_02
)

// AdminURL is the URL of the server's maintenance database.
func AdminURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// New returns a pool on a fresh, migrated database; the pool is closed and
// the database dropped when t ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	url := NewURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxOpenConns: MaxOpenConns})
	if err != nil {
		t.Fatalf("pgtest: open test database: %v", err)
	}
	// Registered after NewURL's cleanup, so it runs first (LIFO).
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// NewURL creates a fresh, migrated database and returns its URL (for code
// that opens its own pool, e.g. with a tenant schema). It is dropped when t
// ends, even if connections are still open.
func NewURL(t testing.TB) string {
	t.Helper()
	tmpl := template(t)
	return create(t, "TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
}

// NewEmpty creates a fresh database without any migration (for migration
// tests) and returns its URL; it is dropped when t ends.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return create(t, "TEMPLATE template0")
}

func create(t testing.TB, from string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: PostgreSQL tests skipped with -short")
	}
	name := testPrefix + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := adminConn(ctx, t)
	defer conn.Close(ctx)
	if err := createDatabase(ctx, conn, name, from); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { drop(t, name) })
	url, err := postgres.WithDatabase(AdminURL(), name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return url
}

// createDatabase retries while the template is briefly busy (another
// process's CREATE DATABASE from the same template can hold it).
func createDatabase(ctx context.Context, conn *pgx.Conn, name, from string) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" "+from)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "55006" { // object_in_use
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(20+attempt*10) * time.Millisecond):
		}
	}
	return err
}

func drop(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Logf("pgtest: drop %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Logf("pgtest: drop %s: %v", name, err)
	}
}

func adminConn(ctx context.Context, t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("pgtest: cannot reach PostgreSQL at %s (set %s, or start tools/devenv): %v", redact(AdminURL()), EnvURL, err)
	}
	return conn
}

var (
	tmplOnce sync.Once
	tmplName string
	tmplErr  error
)

// template returns the name of the migrated template database for the
// embedded migrations, building it once per migration set.
func template(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: PostgreSQL tests skipped with -short")
	}
	tmplOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		tmplName, tmplErr = ensureTemplate(ctx)
	})
	if tmplErr != nil {
		t.Fatalf("pgtest: %v", tmplErr)
	}
	return tmplName
}

func ensureTemplate(ctx context.Context) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := templatePrefix + sum
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", fmt.Errorf("cannot reach PostgreSQL at %s (set %s, or start tools/devenv): %w", redact(AdminURL()), EnvURL, err)
	}
	defer conn.Close(ctx)
	if ok, err := exists(ctx, conn, name); err != nil || ok {
		return name, err
	}
	// Session lock: held across the build, released by Close even if this
	// process dies half-way.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("lock template build: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", templateLockKey) }()
	if ok, err := exists(ctx, conn, name); err != nil || ok {
		return name, err
	}
	// Build under a temporary name and rename when complete, so a crashed
	// build never passes for a template. Leftovers of crashed builds are
	// ours to remove: only the lock holder builds.
	var stale []string
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", buildPrefix+"%")
	if err == nil {
		stale, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return "", err
	}
	for _, s := range stale {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s}.Sanitize()+" WITH (FORCE)")
	}
	build := buildPrefix + sum
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{build}.Sanitize()+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if err := migrate(ctx, build); err != nil {
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{build}.Sanitize()+" WITH (FORCE)")
		return "", err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{build}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("publish template: %w", err)
	}
	return name, nil
}

func migrate(ctx context.Context, dbName string) error {
	url, err := postgres.WithDatabase(AdminURL(), dbName)
	if err != nil {
		return err
	}
	db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxOpenConns: 2})
	if err != nil {
		return fmt.Errorf("open template: %w", err)
	}
	defer db.Close()
	if err := postgres.NewMigrator(db, "").Up(ctx); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

func exists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&ok)
	return ok, err
}

// migrationsHash identifies the migration set: names and contents of every
// embedded file.
func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides a password in a URL for error messages.
func redact(raw string) string {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil || cfg.Password == "" {
		return raw
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
