package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
)

// Store implements the repositories every use case declares. A transaction
// opened by InTx travels in the context, so repository methods called with
// that context join it: one transaction per use case without the use case
// seeing SQL.
type Store struct {
	db *sqlx.DB
	// onOutboxCommit runs after a commit that wrote outbox events (the
	// webhook relay's "right after commit" trigger); nil means nobody
	// listens and the relay's periodic sweep alone moves events on.
	onOutboxCommit func(ctx context.Context)
	// beats groups heartbeats into one commit per batch.
	beats *heartbeats
	// registrationRequired is the consent boundary
	// (broker.require_generator_registration, pkg/app/registrations
	// Boundary): set once at start-up, before any request.
	registrationRequired bool
}

// SetRegistrationBoundary switches the consent boundary on or off: when on,
// a stack is associated with an agent only if the agent is registered with
// the stack's generator, and explicit targets are added or removed only
// for such stacks. Call before serving.
func (s *Store) SetRegistrationBoundary(b registrations.Boundary) {
	s.registrationRequired = b.Required
}

// OnOutboxCommit registers fn to run after every committed transaction that
// wrote outbox events (and after an Emit outside a transaction). fn must
// not block: it runs on the request path.
func (s *Store) OnOutboxCommit(fn func(ctx context.Context)) { s.onOutboxCommit = fn }

// emittedKey marks, inside InTx, that the transaction wrote an event.
type emittedKey struct{}

// NewStore wraps a pool.
func NewStore(db *sqlx.DB) *Store { return &Store{db: db, beats: &heartbeats{db: db}} }

// DB exposes the pool for adapters that need it (readiness, benchmarks).
func (s *Store) DB() *sqlx.DB { return s.db }

type txKey struct{}

// txHolder is the transaction a context carries. It is marked finished at
// commit or rollback, so work deferred until after the commit
// (aftercommit) with a context captured inside the transaction reads
// through the pool instead of a closed transaction.
type txHolder struct {
	tx       *sqlx.Tx
	finished atomic.Bool
}

// txFrom returns the open transaction ctx carries, if any.
func txFrom(ctx context.Context) (*sqlx.Tx, bool) {
	h, ok := ctx.Value(txKey{}).(*txHolder)
	if !ok || h.finished.Load() {
		return nil, false
	}
	return h.tx, true
}

type querier interface {
	sqlx.ExtContext
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
}

// q returns the transaction in ctx, or the pool.
func (s *Store) q(ctx context.Context) querier {
	if tx, ok := txFrom(ctx); ok {
		return tx
	}
	return s.db
}

// InTx runs fn in one transaction; a nested call joins the outer one.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := txFrom(ctx); ok {
		return fn(ctx)
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	emitted := new(bool)
	holder := &txHolder{tx: tx}
	defer holder.finished.Store(true)
	txCtx := context.WithValue(context.WithValue(ctx, txKey{}, holder), emittedKey{}, emitted)
	if err := fn(txCtx); err != nil {
		_ = tx.Rollback()
		return err
	}
	holder.finished.Store(true)
	if err := tx.Commit(); err != nil {
		return mapErr(fmt.Errorf("commit: %w", err))
	}
	if *emitted && s.onOutboxCommit != nil {
		s.onOutboxCommit(ctx)
	}
	return nil
}

// mapErr turns constraint violations into domain errors so a client mistake
// never becomes a 500 (docs/compatibility.md#client-errors-never-500).
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	// Not reaching PostgreSQL at all (refused, down, not accepting
	// connections) is a dependency failure: 503, never a 500.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return domain.Unavailable("database unavailable", err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		// The codes are 0.9.1's database-mapped ones (docs/error-codes.md).
		case "23505":
			return &domain.Error{Kind: domain.ErrConflict, Code: "unique_violation", Msg: "already exists", Cause: err}
		case "23503":
			return &domain.Error{Kind: domain.ErrUnprocessable, Code: "foreign_key_violation", Msg: "referenced entity does not exist", Cause: err}
		case "22001":
			return &domain.Error{Kind: domain.ErrInvalid, Msg: "value too long", Cause: err}
		case "23514":
			return &domain.Error{Kind: domain.ErrInvalid, Code: "check_violation", Msg: "invalid value", Cause: err}
		case "23502":
			return &domain.Error{Kind: domain.ErrInvalid, Code: "not_null_violation", Msg: "invalid value", Cause: err}
		case "22P02":
			return &domain.Error{Kind: domain.ErrInvalid, Msg: "invalid value", Cause: err}
		case "22021", "22P05":
			// NUL or bytes that are not UTF-8: refused at the HTTP edge, so
			// this is a backstop for other callers.
			return &domain.Error{Kind: domain.ErrInvalid, Msg: "text must be valid UTF-8 without NUL", Cause: err}
		case "22003":
			return &domain.Error{Kind: domain.ErrUnprocessable, Msg: "number out of range", Cause: err}
		}
	}
	return err
}

// notFound maps sql.ErrNoRows to a domain 404 with its stable code and msg
// (docs/error-codes.md).
func notFound(err error, code, msg string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return domain.NotFoundCode(code, msg)
	}
	return mapErr(err)
}

// Audit writes one audit entry (inside the caller's transaction).
func (s *Store) Audit(ctx context.Context, e audit.Entry) error {
	var details any
	if len(e.Details) > 0 {
		details = string(e.Details)
	}
	_, err := s.q(ctx).ExecContext(ctx, `INSERT INTO audit_logs
		(actor_type, actor_id, action, resource_type, resource_id, details, ip_address, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)`,
		e.ActorType, e.ActorID, e.Action, e.ResourceType, e.ResourceID, details, e.IPAddress, e.UserAgent)
	return mapErr(err)
}

// Emit appends a domain event to the outbox (inside the caller's transaction).
func (s *Store) Emit(ctx context.Context, ev event.Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = s.q(ctx).ExecContext(ctx,
		`INSERT INTO outbox_events (id, event_type, payload, created_at) VALUES ($1, $2, $3::jsonb, $4)`,
		ev.ID, ev.Type, string(payload), ev.Timestamp)
	if err != nil {
		return mapErr(err)
	}
	if emitted, ok := ctx.Value(emittedKey{}).(*bool); ok {
		*emitted = true
	} else if s.onOutboxCommit != nil {
		s.onOutboxCommit(ctx)
	}
	return nil
}
