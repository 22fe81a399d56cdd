package testsupport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
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

// Lookup is an in-memory fake's "SELECT … WHERE id = $1": m[k], or notFound
// when there is no such row. The fake holds its own lock around it.
func Lookup[K comparable, V any](m map[K]V, k K, notFound error) (V, error) {
	v, ok := m[k]
	if !ok {
		return v, notFound
	}
	return v, nil
}

// Clock is an in-memory fake's now(): each reading is one microsecond
// (PostgreSQL's resolution) after the one before, so rows a test creates in
// a row are ordered by time as the database would order them, even when the
// wall clock has not moved. The zero value is ready and safe for concurrent
// use.
type Clock struct{ n atomic.Int64 }

// Now returns the next reading.
func (c *Clock) Now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond).Add(time.Duration(c.n.Add(1)) * time.Microsecond)
}
