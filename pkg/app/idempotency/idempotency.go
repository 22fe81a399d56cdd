// Package idempotency gives retried writes exactly-once effects: the first
// request with an Idempotency-Key runs and its response is stored in the
// same transaction as its effect; a retry with the same key and the same
// request gets that response back and changes nothing (docs/idempotency.md).
//
// Concurrency: a key with a stored response is answered from it. Otherwise
// the transaction takes a transaction-scoped lock on (scope, key). A second
// request with the key while the first is running does not get the lock
// and is told so at once (ErrInFlight, 409) instead of waiting; once the
// first commits, its stored response is visible to the next attempt. A crash rolls the transaction back, which releases the
// lock and leaves neither the effect nor a stored response behind.
package idempotency

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// MaxKeyLen bounds a key, as the column does.
const MaxKeyLen = 255

// Request identifies one attempt: who sends it, with which key, and what.
type Request struct {
	// Scope is the caller's identity (ScopeOf).
	Scope  string
	Key    string
	Method string
	// Path is the request path with its query string.
	Path string
	Body []byte
}

// Response is what the handler answered.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Record is a stored key with its response in the clear (the store seals
// nothing itself: the Service seals Body before saving).
type Record struct {
	Scope       string
	Key         string
	Fingerprint []byte
	Method      string
	Path        string
	Response
	CreatedAt time.Time
}

// KeyRepository stores idempotency records; every method joins the
// transaction the context carries.
type KeyRepository interface {
	// LockIdempotencyKey takes a lock on (scope, key) held until the
	// current transaction ends; false when another transaction holds it.
	LockIdempotencyKey(ctx context.Context, scope, key string) (bool, error)
	// GetIdempotencyKey returns the stored record; ok is false when none.
	GetIdempotencyKey(ctx context.Context, scope, key string) (r Record, ok bool, err error)
	// SaveIdempotencyKey stores r in the current transaction.
	SaveIdempotencyKey(ctx context.Context, r Record) error
}

// Sealer encrypts stored response bodies at rest: a create's response may
// hold a PAK that is shown once and must not sit in the database in clear.
type Sealer interface {
	Seal(plaintext []byte) []byte
	Open(blob []byte) ([]byte, error)
}

// Service runs requests under their idempotency keys.
type Service struct {
	tx   journal.Transactor
	keys KeyRepository
	seal Sealer
}

// NewService wires the service.
func NewService(tx journal.Transactor, keys KeyRepository, seal Sealer) *Service {
	return &Service{tx: tx, keys: keys, seal: seal}
}

// ScopeOf names the identity keys are scoped to.
func ScopeOf(p identity.Principal) string {
	if p.ID == [16]byte{} {
		return string(p.Role)
	}
	return string(p.Role) + ":" + p.ID.String()
}

// ValidateKey checks a header value: 1 to 255 printable ASCII characters.
func ValidateKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return domain.Invalid(fmt.Sprintf("Idempotency-Key must be 1 to %d characters", MaxKeyLen))
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return domain.Invalid("Idempotency-Key must be printable ASCII")
		}
	}
	return nil
}

// Fingerprint identifies a request's content: method, path and body.
func Fingerprint(method, path string, body []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(body)
	return h.Sum(nil)
}

// Outcome is what Do led to.
type Outcome struct {
	Response
	// Replayed: the response is the stored one; run was not called.
	Replayed bool
	// Stored: run succeeded (2xx) and its response was committed with its
	// effect. A non-2xx answer is rolled back and not stored, so a retry
	// runs again (there was no effect to protect).
	Stored bool
}

// errNotStored rolls back an attempt whose answer is not a success.
var errNotStored = errors.New("idempotency: response not stored")

// Do runs run under req's key in one transaction that also stores the
// response. run must do its writes through ctx (the use cases' InTx joins
// the transaction it carries) and defer post-commit side effects with
// aftercommit.Do, which Do runs after the commit.
func (s *Service) Do(ctx context.Context, req Request, run func(ctx context.Context) Response) (Outcome, error) {
	if err := ValidateKey(req.Key); err != nil {
		return Outcome{}, err
	}
	fp := Fingerprint(req.Method, req.Path, req.Body)
	ctx, after := aftercommit.Defer(ctx)
	var out Outcome
	var panicked any
	err := s.tx.InTx(ctx, func(ctx context.Context) error {
		// A stored key never changes until it expires, so it is answered
		// without the lock: concurrent retries of a finished request all
		// get the replay, none a 409.
		rec, found, err := s.keys.GetIdempotencyKey(ctx, req.Scope, req.Key)
		if err != nil {
			return err
		}
		if !found {
			ok, err := s.keys.LockIdempotencyKey(ctx, req.Scope, req.Key)
			if err != nil {
				return err
			}
			if !ok {
				return &domain.Error{Kind: domain.ErrInFlight,
					Msg: "A request with this Idempotency-Key is still in progress; retry later"}
			}
			// The holder may have committed between the read and the lock.
			if rec, found, err = s.keys.GetIdempotencyKey(ctx, req.Scope, req.Key); err != nil {
				return err
			}
		}
		if found {
			if subtle.ConstantTimeCompare(rec.Fingerprint, fp) != 1 {
				return &domain.Error{Kind: domain.ErrKeyReused,
					Msg: "Idempotency-Key was already used for a different request"}
			}
			body, err := s.seal.Open(rec.Body)
			if err != nil {
				return &domain.Error{Kind: domain.ErrKeyReused,
					Msg: "The stored response for this Idempotency-Key cannot be read (the encryption key changed); use a new key", Cause: err}
			}
			rec.Response.Body = body
			out = Outcome{Response: rec.Response, Replayed: true}
			return nil
		}
		resp, p := runSafely(ctx, run)
		if p != nil {
			panicked = p
			return errNotStored
		}
		out = Outcome{Response: resp}
		if resp.Status < 200 || resp.Status > 299 {
			return errNotStored
		}
		sealed := resp
		sealed.Body = s.seal.Seal(resp.Body)
		if err := s.keys.SaveIdempotencyKey(ctx, Record{Scope: req.Scope, Key: req.Key, Fingerprint: fp,
			Method: req.Method, Path: req.Path, Response: sealed}); err != nil {
			return err
		}
		out.Stored = true
		return nil
	})
	if panicked != nil {
		after.Drop()
		panic(panicked)
	}
	if errors.Is(err, errNotStored) {
		after.Drop()
		return out, nil
	}
	if err != nil {
		after.Drop()
		return Outcome{}, err
	}
	after.Run()
	return out, nil
}

func runSafely(ctx context.Context, run func(ctx context.Context) Response) (resp Response, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return run(ctx), nil
}
