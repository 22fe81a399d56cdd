package paks

import (
	"context"
	"fmt"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// ShortTokenStore records the public part of an issued PAK ("<prefix>_<short
// token>") by its hash.
type ShortTokenStore interface {
	RecordShortToken(ctx context.Context, hash, public string) error
}

// RecordingIssuer issues PAKs with next and records each one's public part
// ("<prefix>_<short token>") before handing it out, so that Verifier can
// refuse a PAK whose prefix or short token was swapped (`x_y_<long>` for
// `brokkr_BRabc123_<long>`).
type RecordingIssuer struct {
	next  authn.PAKIssuer
	store ShortTokenStore
}

// NewRecordingIssuer wraps next.
func NewRecordingIssuer(next authn.PAKIssuer, store ShortTokenStore) *RecordingIssuer {
	return &RecordingIssuer{next: next, store: store}
}

var _ authn.PAKIssuer = (*RecordingIssuer)(nil)

// Issue implements authn.PAKIssuer.
func (r *RecordingIssuer) Issue(ctx context.Context) (secret.String, string, error) {
	p, hash, err := r.next.Issue(ctx)
	if err != nil {
		return "", "", err
	}
	public, _, err := pak.Parse(p.Reveal())
	if err != nil {
		return "", "", fmt.Errorf("issued PAK does not parse: %w", err)
	}
	if err := r.store.RecordShortToken(ctx, hash, public); err != nil {
		return "", "", fmt.Errorf("recording the short token: %w", err)
	}
	return p, hash, nil
}
