package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	migratepg "github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/migrations"
)

// Migrator runs the embedded migrations against one database/schema.
type Migrator struct {
	db     *sqlx.DB
	schema string
}

// NewMigrator returns a Migrator for db (opened with Open, so search_path
// already points at the tenant schema).
func NewMigrator(db *sqlx.DB, schema string) *Migrator { return &Migrator{db: db, schema: schema} }

func (m *Migrator) instance(ctx context.Context) (*migrate.Migrate, func(), error) {
	src, err := iofs.New(migrations.FS, migrations.Dir)
	if err != nil {
		return nil, nil, err
	}
	conn, err := m.db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	cfg := &migratepg.Config{MigrationsTable: "schema_migrations"}
	if m.schema != "" {
		cfg.SchemaName = m.schema
	}
	drv, err := migratepg.WithConnection(ctx, conn, cfg)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	mg, err := migrate.NewWithInstance("iofs", src, "postgres", drv)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return mg, func() { _, _ = mg.Close() }, nil
}

// Up applies every pending migration. golang-migrate takes a PostgreSQL
// advisory lock, so concurrent replicas starting together are safe.
func (m *Migrator) Up(ctx context.Context) error {
	mg, done, err := m.instance(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := mg.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down rolls back one migration step.
func (m *Migrator) Down(ctx context.Context) error {
	mg, done, err := m.instance(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := mg.Steps(-1); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Version reports the applied version and whether it is dirty.
func (m *Migrator) Version(ctx context.Context) (uint, bool, error) {
	mg, done, err := m.instance(ctx)
	if err != nil {
		return 0, false, err
	}
	defer done()
	v, dirty, err := mg.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	return v, dirty, err
}
