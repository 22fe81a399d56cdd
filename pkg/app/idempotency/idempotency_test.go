package idempotency

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/domain"
)

// fakeStore keeps committed records and tracks the open transaction; the
// real adapter is tested through the api (services/api/internal/httpapi).
type fakeStore struct {
	records  map[string]Record
	pending  map[string]Record
	locked   map[string]bool
	inTx     bool
	commits  int
	rollback int
}

func newFake() *fakeStore {
	return &fakeStore{records: map[string]Record{}, locked: map[string]bool{}}
}

func (f *fakeStore) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	f.inTx, f.pending = true, map[string]Record{}
	defer func() { f.inTx = false }()
	if err := fn(ctx); err != nil {
		f.rollback++
		return err
	}
	for k, r := range f.pending {
		f.records[k] = r
	}
	f.commits++
	return nil
}

func (f *fakeStore) LockIdempotencyKey(_ context.Context, scope, key string) (bool, error) {
	return !f.locked[scope+"/"+key], nil
}

func (f *fakeStore) GetIdempotencyKey(_ context.Context, scope, key string) (Record, bool, error) {
	r, ok := f.records[scope+"/"+key]
	return r, ok, nil
}

func (f *fakeStore) SaveIdempotencyKey(_ context.Context, r Record) error {
	f.pending[r.Scope+"/"+r.Key] = r
	return nil
}

// xorSealer is a reversible stand-in for AES-GCM.
type xorSealer struct{}

func (xorSealer) Seal(p []byte) []byte {
	out := make([]byte, len(p))
	for i, b := range p {
		out[i] = b ^ 0x5a
	}
	return out
}

func (s xorSealer) Open(b []byte) ([]byte, error) { return s.Seal(b), nil }

func req(key, body string) Request {
	return Request{Scope: "admin", Key: key, Method: "POST", Path: "/api/v1/stacks", Body: []byte(body)}
}

func TestDo(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	svc := NewService(f, f, xorSealer{})
	runs := 0
	var effectSawCommit []bool
	ok := func(ctx context.Context) Response {
		runs++
		if !f.inTx {
			t.Fatal("run outside the transaction")
		}
		aftercommit.Do(ctx, func() { effectSawCommit = append(effectSawCommit, !f.inTx && f.commits > 0) })
		return Response{Status: 200, ContentType: "application/json", Body: []byte(`{"id":1}`)}
	}

	out, err := svc.Do(ctx, req("k", `{"a":1}`), ok)
	if err != nil || !out.Stored || out.Replayed || runs != 1 {
		t.Fatalf("first: %+v %v runs=%d", out, err, runs)
	}
	if len(effectSawCommit) != 1 || !effectSawCommit[0] {
		t.Fatalf("post-commit effect ran before the commit or not at all: %v", effectSawCommit)
	}
	if bytes.Contains(f.records["admin/k"].Body, []byte(`"id"`)) {
		t.Fatal("stored body is not sealed")
	}

	out, err = svc.Do(ctx, req("k", `{"a":1}`), ok)
	if err != nil || !out.Replayed || runs != 1 || string(out.Body) != `{"id":1}` || out.Status != 200 || out.ContentType != "application/json" {
		t.Fatalf("replay: %+v %v runs=%d", out, err, runs)
	}

	_, err = svc.Do(ctx, req("k", `{"a":2}`), ok)
	if !errors.Is(err, domain.ErrKeyReused) || runs != 1 {
		t.Fatalf("other body: %v runs=%d", err, runs)
	}

	f.locked["admin/busy"] = true
	_, err = svc.Do(ctx, req("busy", `{}`), ok)
	if !errors.Is(err, domain.ErrInFlight) || runs != 1 {
		t.Fatalf("held key: %v runs=%d", err, runs)
	}

	for _, bad := range []string{"", strings.Repeat("x", 256), "tab\there", "é"} {
		if _, err := svc.Do(ctx, req(bad, `{}`), ok); !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("key %q: %v", bad, err)
		}
	}
}

func TestDoDoesNotStoreFailures(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	svc := NewService(f, f, xorSealer{})
	ran := false
	out, err := svc.Do(ctx, req("k", `{}`), func(ctx context.Context) Response {
		aftercommit.Do(ctx, func() { ran = true })
		return Response{Status: 409, Body: []byte(`{"error":"exists"}`)}
	})
	if err != nil || out.Stored || out.Status != 409 || f.rollback != 1 || len(f.records) != 0 {
		t.Fatalf("failure: %+v %v rollbacks=%d records=%d", out, err, f.rollback, len(f.records))
	}
	if ran {
		t.Fatal("a post-commit effect of a rolled-back request ran")
	}

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("a handler panic was swallowed")
			}
		}()
		_, _ = svc.Do(ctx, req("p", `{}`), func(context.Context) Response { panic("boom") })
	}()
	if f.rollback != 2 || len(f.records) != 0 {
		t.Fatalf("panic: rollbacks=%d records=%d", f.rollback, len(f.records))
	}
}

func TestFingerprintSeparatesFields(t *testing.T) {
	a := Fingerprint("POST", "/a", []byte("b"))
	if bytes.Equal(a, Fingerprint("POST", "/ab", nil)) || bytes.Equal(a, Fingerprint("PATCH", "/a", []byte("b"))) {
		t.Fatal("different requests share a fingerprint")
	}
	if !bytes.Equal(a, Fingerprint("POST", "/a", []byte("b"))) {
		t.Fatal("fingerprint is not deterministic")
	}
}
