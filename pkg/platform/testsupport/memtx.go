package testsupport

import (
	"context"
	"sync"
)

// snapshotTxKey marks a context inside SnapshotTx for one fake (its lock),
// so a fake's nested call joins its outer transaction while another fake
// still takes its own snapshot.
type snapshotTxKey struct{ l sync.Locker }

// SnapshotTx is an in-memory fake's InTx: it takes a snapshot of the fake's
// state (under l), runs fn and, when fn fails, restores the snapshot (under
// l), as a rolled-back transaction leaves nothing behind. snapshot returns
// the function that restores what it captured. A nested call joins the
// outer one.
func SnapshotTx(ctx context.Context, l sync.Locker, snapshot func() (restore func()),
	fn func(ctx context.Context) error) error {
	key := snapshotTxKey{l}
	if ctx.Value(key) != nil {
		return fn(ctx)
	}
	l.Lock()
	restore := snapshot()
	l.Unlock()
	if err := fn(context.WithValue(ctx, key, true)); err != nil {
		l.Lock()
		restore()
		l.Unlock()
		return err
	}
	return nil
}
