package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

// bootstrapLockKey is the advisory lock that serialises the first-start
// admin bootstrap of concurrently starting replicas ("brokkr" + "boot").
const bootstrapLockKey int64 = 0x62726f6b6b72_01

// adminGeneratorDescription is the original's description of admin-generator.
const adminGeneratorDescription = "Linked to Admin PAK"

var (
	_ paks.Lookup          = (*PAKs)(nil)
	_ paks.AdminStore      = (*PAKs)(nil)
	_ paks.ShortTokenStore = (*PAKs)(nil)
	_ paks.TenantLister    = (*PAKs)(nil)
)

// PAKs is the repository of pre-authentication keys: the lookup of a hash
// across admin, agents and generators, the short tokens of issued PAKs and
// the first-start admin bootstrap.
type PAKs struct{ s *Store }

// NewPAKs returns the PAK repository on s.
func NewPAKs(s *Store) *PAKs { return &PAKs{s: s} }

// LookupPAK resolves a PAK hash in one round trip, in the original's order
// of precedence: the first admin_role row's hash (the caller compares it in
// constant time), then a live agent, then a live generator holding the hash.
// The agent and generator probes use the partial pak_hash indexes.
func (r *PAKs) LookupPAK(ctx context.Context, hash string) (paks.Match, error) {
	var row struct {
		AdminHash   *string    `db:"admin_hash"`
		AgentID     *uuid.UUID `db:"agent_id"`
		GeneratorID *uuid.UUID `db:"generator_id"`
		ShortToken  *string    `db:"short_token"`
	}
	// A deactivated generator (is_active = false) does not authenticate
	// until an admin reactivates it.
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT
		(SELECT pak_hash FROM admin_role ORDER BY created_at, id LIMIT 1) AS admin_hash,
		(SELECT id FROM agents
		  WHERE pak_hash = $1 AND deleted_at IS NULL AND pak_hash <> ''
		  ORDER BY created_at LIMIT 1) AS agent_id,
		(SELECT id FROM generators
		  WHERE pak_hash = $1 AND deleted_at IS NULL AND pak_hash IS NOT NULL AND is_active
		  ORDER BY created_at LIMIT 1) AS generator_id,
		(SELECT short_token FROM pak_short_tokens WHERE pak_hash = $1) AS short_token`, hash)
	if err != nil {
		return paks.Match{}, mapErr(err)
	}
	m := paks.Match{AgentID: row.AgentID, GeneratorID: row.GeneratorID}
	if row.AdminHash != nil {
		m.AdminHash = *row.AdminHash
	}
	if row.ShortToken != nil {
		m.ShortToken = *row.ShortToken
	}
	return m, nil
}

// RecordShortToken remembers the short token of an issued PAK.
func (r *PAKs) RecordShortToken(ctx context.Context, hash, short string) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO pak_short_tokens (pak_hash, short_token) VALUES ($1, $2)
		ON CONFLICT (pak_hash) DO UPDATE SET short_token = EXCLUDED.short_token`, hash, short)
	return mapErr(err)
}

// LockBootstrap takes the transaction-scoped bootstrap advisory lock. It
// must run inside InTx.
func (r *PAKs) LockBootstrap(ctx context.Context) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, bootstrapLockKey)
	return mapErr(err)
}

// IsInitialized reports whether the first-start bootstrap has run.
func (r *PAKs) IsInitialized(ctx context.Context) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM app_initialization)`)
	return ok, mapErr(err)
}

// MarkInitialized records the first-start bootstrap.
func (r *PAKs) MarkInitialized(ctx context.Context) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO app_initialization DEFAULT VALUES`)
	return mapErr(err)
}

// SetAdminHash stores hash as the admin PAK hash: in the first admin_role
// row (inserted when there is none) and in the live admin-generator
// (inserted when absent, as the original's upsert). It returns the previous
// admin hash, "" when there was none.
func (r *PAKs) SetAdminHash(ctx context.Context, hash string) (string, error) {
	var previous string
	err := r.s.InTx(ctx, func(ctx context.Context) error {
		var row struct {
			ID      uuid.UUID `db:"id"`
			PakHash string    `db:"pak_hash"`
		}
		err := r.s.q(ctx).GetContext(ctx, &row,
			`SELECT id, pak_hash FROM admin_role ORDER BY created_at, id LIMIT 1 FOR UPDATE`)
		switch {
		case isNoRows(err):
			_, err = r.s.q(ctx).ExecContext(ctx, `INSERT INTO admin_role (pak_hash) VALUES ($1)`, hash)
		case err == nil:
			previous = row.PakHash
			_, err = r.s.q(ctx).ExecContext(ctx, `UPDATE admin_role SET pak_hash = $2 WHERE id = $1`, row.ID, hash)
		}
		if err != nil {
			return mapErr(err)
		}
		_, err = r.s.q(ctx).ExecContext(ctx, `INSERT INTO generators (name, description, pak_hash, is_active)
			VALUES ($1, $2, $3, true)
			ON CONFLICT (name) WHERE deleted_at IS NULL
			DO UPDATE SET pak_hash = EXCLUDED.pak_hash`,
			generator.AdminGeneratorName, adminGeneratorDescription, hash)
		return mapErr(err)
	})
	return previous, err
}

// ListTenants lists the live generators other than the system generator as
// {id, name}, by name (GET /paks). It reads neither hash nor PAK.
func (r *PAKs) ListTenants(ctx context.Context) ([]generator.Tenant, error) {
	rows := []struct {
		ID   uuid.UUID `db:"id"`
		Name string    `db:"name"`
	}{}
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT id, name FROM generators
		WHERE deleted_at IS NULL AND NOT is_system ORDER BY name, id`)
	out := make([]generator.Tenant, len(rows))
	for i, row := range rows {
		out[i] = generator.Tenant{ID: row.ID, Name: row.Name}
	}
	return out, mapErr(err)
}
