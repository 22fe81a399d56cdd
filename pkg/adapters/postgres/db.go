// Package postgres is the PostgreSQL adapter: connection pool, migrations and
// the sqlx repositories behind the use cases' ports. No SQL lives elsewhere.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/jmoiron/sqlx/reflectx"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

var schemaName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)

// ValidSchema reports whether name is a safe tenant schema name: an ASCII
// letter, then letters, digits or underscores, at most 63 bytes (PostgreSQL
// would silently truncate longer names).
func ValidSchema(name string) bool { return schemaName.MatchString(name) }

// Options configures Open.
type Options struct {
	URL          string
	Schema       string
	MaxOpenConns int
	// MaxIdleConns (capped at MaxOpenConns), ConnMaxIdle and ConnMaxLifetime
	// let the pool shrink after a burst; zero values keep database/sql's
	// defaults except MaxIdleConns, which then is min(4, MaxOpenConns).
	MaxIdleConns    int
	ConnMaxIdle     time.Duration
	ConnMaxLifetime time.Duration
}

// Open connects to PostgreSQL. With a Schema, the schema is created if absent
// and every pooled connection runs with search_path=<schema> (no public
// fallback, so tenant isolation is real).
func Open(ctx context.Context, opts Options) (*sqlx.DB, error) {
	if opts.Schema != "" && !ValidSchema(opts.Schema) {
		return nil, fmt.Errorf("invalid schema name %q", opts.Schema)
	}
	cfg, err := pgx.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if opts.Schema != "" {
		if err := createSchema(ctx, opts.URL, opts.Schema); err != nil {
			return nil, err
		}
		cfg.RuntimeParams["search_path"] = opts.Schema
	}
	db := OpenDB(*cfg)
	// A bounded pool: max_open_conns per process is what the capacity guide
	// adds up against PostgreSQL's max_connections. Requests beyond it wait
	// for a connection (bounded by the api's in-flight limit), never fail.
	maxConns := opts.MaxOpenConns
	if maxConns <= 0 {
		maxConns = config.Defaults().Database.MaxOpenConns
	}
	idle := opts.MaxIdleConns
	if idle <= 0 {
		idle = 4
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(min(idle, maxConns))
	idleTime := opts.ConnMaxIdle
	if idleTime <= 0 {
		idleTime = time.Minute
	}
	db.SetConnMaxIdleTime(idleTime)
	db.SetConnMaxLifetime(opts.ConnMaxLifetime)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return db, nil
}

// OpenDB is the pool every repository expects, without connecting yet:
// timestamps scan in UTC and columns map to struct fields by columnName.
// Open uses it; anything else that builds a pool for a Store (a test with
// its own pgx configuration) must too.
func OpenDB(cfg pgx.ConnConfig) *sqlx.DB {
	db := sqlx.NewDb(stdlib.OpenDB(cfg, stdlib.OptionAfterConnect(scanTimestamptzAsUTC)), "pgx")
	db.Mapper = reflectx.NewMapperFunc("db", columnName)
	return db
}

// columnName is the column a struct field without a db tag reads:
// CreatedAt → created_at, GeneratorID → generator_id, YAMLContent →
// yaml_content (a run of capitals is one word). It lets repositories scan
// straight into domain types, which carry no db tags
// (docs/architecture.md#persistence).
func columnName(field string) string {
	rs := []rune(field)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			wordEnds := unicode.IsLower(prev) || unicode.IsDigit(prev)
			acronymEnds := unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if wordEnds || acronymEnds {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// scanTimestamptzAsUTC makes timestamptz values come back in UTC whatever
// the process's local time zone, so every timestamp the API renders ends in
// "Z" (docs/compatibility.md#timestamps).
func scanTimestamptzAsUTC(_ context.Context, conn *pgx.Conn) error {
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
	return nil
}

func createSchema(ctx context.Context, dsn, schema string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Close(ctx)
	// The name is validated above; identifiers cannot be bound as parameters.
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

// WithDatabase returns rawURL with its database name replaced.
func WithDatabase(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Ping checks the pool; used by /readyz.
func Ping(ctx context.Context, db *sqlx.DB) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// isNoRows reports whether err means an empty result.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// OpenConfigured opens the pool a service's configuration describes, for
// the services' Wire graphs. An unreachable database is exit code 69
// (docs/configuration.md#exit-codes); the cleanup closes the pool.
func OpenConfigured(ctx context.Context, cfg config.Settings) (*sqlx.DB, func(), error) {
	db, err := Open(ctx, Options{URL: cfg.Database.URL, Schema: cfg.Database.Schema, MaxOpenConns: cfg.Database.MaxOpenConns,
		MaxIdleConns: cfg.Database.MaxIdleConns, ConnMaxIdle: time.Duration(cfg.Database.ConnMaxIdleSeconds) * time.Second,
		ConnMaxLifetime: time.Duration(cfg.Database.ConnMaxLifetimeSeconds) * time.Second})
	if err != nil {
		return nil, nil, lifecycle.WithCode(lifecycle.ExitUnavailable, err)
	}
	return db, func() { _ = db.Close() }, nil
}
