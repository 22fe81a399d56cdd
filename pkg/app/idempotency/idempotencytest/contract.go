package idempotencytest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// RunKeyRepositoryContract checks the rules every KeyRepository keeps
// together with the Transactor whose transactions it joins.
func RunKeyRepositoryContract(t *testing.T, newRepo func(t *testing.T) (journal.Transactor, idempotency.KeyRepository)) {
	ctx := context.Background()
	rec := func(key string) idempotency.Record {
		return idempotency.Record{Scope: "admin", Key: key, Fingerprint: []byte{1, 2, 3}, Method: "POST", Path: "/api/v1/stacks?x=1",
			Response: idempotency.Response{Status: 201, ContentType: "application/json", Body: []byte(`sealed`)}}
	}

	t.Run("a committed record reads back", func(t *testing.T) {
		tx, keys := newRepo(t)
		if _, ok, err := keys.GetIdempotencyKey(ctx, "admin", "k"); ok || err != nil {
			t.Fatalf("missing key: %v %v", ok, err)
		}
		if err := tx.InTx(ctx, func(ctx context.Context) error { return keys.SaveIdempotencyKey(ctx, rec("k")) }); err != nil {
			t.Fatal(err)
		}
		got, ok, err := keys.GetIdempotencyKey(ctx, "admin", "k")
		want := rec("k")
		if !ok || err != nil || got.Method != want.Method || got.Path != want.Path || got.Status != 201 ||
			got.ContentType != want.ContentType || !bytes.Equal(got.Body, want.Body) ||
			!bytes.Equal(got.Fingerprint, want.Fingerprint) || got.CreatedAt.IsZero() {
			t.Fatalf("read back %+v %v %v", got, ok, err)
		}
		if _, ok, _ := keys.GetIdempotencyKey(ctx, "generator:x", "k"); ok {
			t.Fatal("keys are scoped")
		}
	})

	t.Run("a rolled-back save leaves nothing", func(t *testing.T) {
		tx, keys := newRepo(t)
		boom := errors.New("boom")
		err := tx.InTx(ctx, func(ctx context.Context) error {
			if err := keys.SaveIdempotencyKey(ctx, rec("k")); err != nil {
				return err
			}
			if _, ok, _ := keys.GetIdempotencyKey(ctx, "admin", "k"); !ok {
				t.Error("the transaction sees its own record")
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, ok, _ := keys.GetIdempotencyKey(ctx, "admin", "k"); ok {
			t.Fatal("rolled back, yet stored")
		}
	})

	t.Run("a key is stored once", func(t *testing.T) {
		tx, keys := newRepo(t)
		save := func() error {
			return tx.InTx(ctx, func(ctx context.Context) error { return keys.SaveIdempotencyKey(ctx, rec("k")) })
		}
		if err := save(); err != nil {
			t.Fatal(err)
		}
		if err := save(); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("second save: %v, want conflict", err)
		}
	})

	t.Run("a key longer than the column is refused as invalid", func(t *testing.T) {
		tx, keys := newRepo(t)
		err := tx.InTx(ctx, func(ctx context.Context) error {
			return keys.SaveIdempotencyKey(ctx, rec(strings.Repeat("k", idempotency.MaxKeyLen+1)))
		})
		if !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("long key: %v", err)
		}
	})

	t.Run("a lock excludes other transactions until its own ends", func(t *testing.T) {
		tx, keys := newRepo(t)
		other := func(key string) bool {
			t.Helper()
			got := make(chan bool, 1)
			go func() {
				var ok bool
				_ = tx.InTx(ctx, func(ctx context.Context) error {
					var err error
					ok, err = keys.LockIdempotencyKey(ctx, "admin", key)
					return err
				})
				got <- ok
			}()
			return <-got
		}
		err := tx.InTx(ctx, func(ctx context.Context) error {
			if ok, err := keys.LockIdempotencyKey(ctx, "admin", "k"); !ok || err != nil {
				t.Fatalf("first lock: %v %v", ok, err)
			}
			if other("k") {
				t.Error("another transaction took a held lock")
			}
			if !other("other-key") {
				t.Error("another key is free")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !other("k") {
			t.Fatal("the lock outlived its transaction")
		}
	})
}
