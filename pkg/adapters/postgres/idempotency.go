package postgres

import (
	"context"
	"time"

	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
)

// IdempotencyKeys stores the responses replayed for repeated
// Idempotency-Key requests (docs/idempotency.md).
type IdempotencyKeys struct{ s *Store }

// NewIdempotencyKeys returns the idempotency-key repository over s.
func NewIdempotencyKeys(s *Store) *IdempotencyKeys { return &IdempotencyKeys{s: s} }

var _ idempotency.KeyRepository = (*IdempotencyKeys)(nil)

// LockIdempotencyKey takes a transaction-scoped advisory lock on the key,
// without waiting. The lock id hashes the schema too, so tenants sharing a
// database do not contend; a 64-bit hash collision only makes one request
// wait for a retry (409), never mixes responses (rows are looked up by
// their full key).
func (r *IdempotencyKeys) LockIdempotencyKey(ctx context.Context, scope, key string) (bool, error) {
	var ok bool
	// Schema and scope hold no spaces; the key seeds nothing, so any key
	// is safe.
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT pg_try_advisory_xact_lock(hashtextextended($2,
		hashtextextended('brokkr-idempotency ' || current_schema() || ' ' || $1, 0)))`,
		scope, key)
	return ok, mapErr(err)
}

type idempotencyRow struct {
	Scope       string    `db:"scope"`
	Key         string    `db:"key"`
	Fingerprint []byte    `db:"fingerprint"`
	Method      string    `db:"method"`
	Path        string    `db:"path"`
	StatusCode  int       `db:"status_code"`
	ContentType string    `db:"content_type"`
	Body        []byte    `db:"body"`
	CreatedAt   time.Time `db:"created_at"`
}

// GetIdempotencyKey returns the stored record for (scope, key).
func (r *IdempotencyKeys) GetIdempotencyKey(ctx context.Context, scope, key string) (idempotency.Record, bool, error) {
	var row idempotencyRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT scope, key, fingerprint, method, path, status_code, content_type,
		body, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key)
	if isNoRows(err) {
		return idempotency.Record{}, false, nil
	}
	if err != nil {
		return idempotency.Record{}, false, mapErr(err)
	}
	return idempotency.Record{Scope: row.Scope, Key: row.Key, Fingerprint: row.Fingerprint, Method: row.Method,
		Path: row.Path, CreatedAt: row.CreatedAt,
		Response: idempotency.Response{Status: row.StatusCode, ContentType: row.ContentType, Body: row.Body}}, true, nil
}

// SaveIdempotencyKey stores rec (in the caller's transaction).
func (r *IdempotencyKeys) SaveIdempotencyKey(ctx context.Context, rec idempotency.Record) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO idempotency_keys
		(scope, key, fingerprint, method, path, status_code, content_type, body)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		rec.Scope, rec.Key, rec.Fingerprint, rec.Method, rec.Path, rec.Status, rec.ContentType, rec.Body)
	return mapErr(err)
}

// PurgeIdempotencyKeys deletes up to batch keys created before cutoff,
// skipping rows another replica is deleting. It stays on Store: the
// scheduler's housekeeping (pkg/app/maintenance) calls it with the other
// retention purges.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	res, err := s.q(ctx).ExecContext(ctx, `DELETE FROM idempotency_keys WHERE (scope, key) IN (
		SELECT scope, key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2
		FOR UPDATE SKIP LOCKED)`, cutoff, batch)
	if err != nil {
		return 0, mapErr(err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
