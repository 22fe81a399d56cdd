package authn

import (
	"context"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// Credentials is the PAK life cycle that agents and generators share:
// issue one at creation, swap it on rotation, and revoke the old one in
// every replica's cache once the row no longer holds it.
type Credentials struct {
	Issuer PAKIssuer
	Inval  Invalidator
}

// Issue makes a new PAK and its hash; a failure is 503 with msg (the
// create and rotate routes word it differently).
func (c Credentials) Issue(ctx context.Context, msg string) (secret.String, string, error) {
	pak, hash, err := c.Issuer.Issue(ctx)
	if err != nil {
		return "", "", domain.Unavailable(msg, err)
	}
	return pak, hash, nil
}

// Revoke forgets hash ("" is none) in every replica's verification cache.
// A failed publish only delays revocation until the cache TTL; the row is
// already changed, so the request itself has succeeded.
func (c Credentials) Revoke(ctx context.Context, hash string) {
	if hash == "" {
		return
	}
	_ = c.Inval.Invalidate(ctx, hash)
}

// Rotate issues a new PAK, lets store put its hash in place (returning the
// hash it replaced, in the caller's transaction) and revokes the old one.
func (c Credentials) Rotate(ctx context.Context, store func(ctx context.Context, hash string) (old string, err error)) (secret.String, error) {
	pak, hash, err := c.Issue(ctx, "Failed to create new PAK")
	if err != nil {
		return "", err
	}
	old, err := store(ctx, hash)
	if err != nil {
		return "", err
	}
	c.Revoke(ctx, old)
	return pak, nil
}

// RotateRecord rotates the PAK of one agent or generator record: inTx runs
// update (which swaps the stored hash, returning the record and the hash it
// replaced) and audit in one transaction; the old hash is revoked after.
func RotateRecord[T any](ctx context.Context, c Credentials, inTx func(context.Context, func(context.Context) error) error,
	update func(ctx context.Context, hash string) (T, string, error), audit func(ctx context.Context, v T) error) (T, secret.String, error) {
	var out T
	pak, err := c.Rotate(ctx, func(ctx context.Context, hash string) (old string, err error) {
		err = inTx(ctx, func(ctx context.Context) error {
			var err error
			if out, old, err = update(ctx, hash); err != nil {
				return err
			}
			return audit(ctx, out)
		})
		return old, err
	})
	if err != nil {
		var zero T
		return zero, "", err
	}
	return out, pak, nil
}
