package console

import (
	"context"
	"log/slog"
	"time"
)

// Revoker ends console sessions when PAKs stop being valid. It has the
// shape of the auth cache (Invalidate, InvalidateAll) so it is fed by the
// same invalidations: the ones this replica publishes after a rotation,
// deletion or deactivation (synchronously, before the request answers) and
// the ones every replica receives through Redis, the auth service's admin
// rotation included.
type Revoker struct {
	Sessions Sessions
	Hub      *Hub
	Log      *slog.Logger
}

// Invalidate deletes the sessions signed in with these PAK hashes and ends
// their live streams on this replica.
func (r Revoker) Invalidate(pakHashes ...string) {
	if r.Hub != nil {
		r.Hub.Revoke(pakHashes...)
	}
	if r.Sessions == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, h := range pakHashes {
		if err := r.Sessions.Revoke(ctx, h); err != nil && r.Log != nil {
			// Redis is down: so are the sessions; they are revoked by the
			// other replicas' copy of the message or end at their timeout.
			r.Log.WarnContext(ctx, "console: revoking the sessions of a rotated PAK failed", "error", err)
		}
	}
}

// InvalidateAll keeps sessions: it is sent on a configuration reload and
// after the invalidation stream reconnects, neither of which revokes a PAK.
func (Revoker) InvalidateAll() {}
