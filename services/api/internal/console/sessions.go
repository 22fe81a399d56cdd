package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Session is what a console cookie maps to on the server: the principal the
// PAK resolved to at login, the stored hash of that PAK (the same SHA-256
// the database holds, so its rotation or revocation can end the session)
// and the session's CSRF token. The PAK itself is never stored.
type Session struct {
	Role    identity.Role `json:"role"`
	ID      uuid.UUID     `json:"id"`
	PAKHash string        `json:"pak_hash"`
	CSRF    string        `json:"csrf"`
	Created time.Time     `json:"created"`
}

// Principal is the identity the session acts as.
func (s Session) Principal() identity.Principal { return identity.Principal{Role: s.Role, ID: s.ID} }

// ErrNoSession: the cookie names no live session.
var ErrNoSession = errors.New("console: no session")

// ErrRevoked: the PAK was rotated, deleted or deactivated while the
// sign-in was under way; no session is started.
var ErrRevoked = errors.New("console: PAK revoked")

// Sessions keeps console sessions server-side.
type Sessions interface {
	Create(ctx context.Context, s Session) (token string, err error)
	Get(ctx context.Context, token string) (Session, error)
	Delete(ctx context.Context, token string) error
	// Revoke ends every session started with the PAK of hash (it was
	// rotated, or its identity deleted or deactivated) and refuses new ones
	// for RevokeWindow.
	Revoke(ctx context.Context, pakHash string) error
}

// RevokeWindow is how long Create refuses a revoked PAK's hash: longer than
// a sign-in in flight (the PAK verified before its revocation, the session
// not yet stored) and than other replicas take to drop the PAK from their
// auth caches. A generator reactivated within it signs in a minute later.
const RevokeWindow = time.Minute

// RedisSessions stores sessions in Redis under the hash of the cookie's
// token (so a Redis dump does not hold usable cookies) with an idle TTL
// renewed on use and an absolute lifetime. An index per PAK hash lists the
// sessions it started, so a rotation ends them without any per-request
// check: a revoked session's key is simply gone.
type RedisSessions struct {
	client  goredis.UniversalClient
	prefix  string
	idle    time.Duration
	maxAge  time.Duration
	nowFunc func() time.Time
}

// NewRedisSessions returns the store of one tenant (schema).
func NewRedisSessions(client goredis.UniversalClient, tenant string, idle, maxAge time.Duration) *RedisSessions {
	if tenant == "" {
		tenant = "public"
	}
	return &RedisSessions{client: client, prefix: "brokkr:" + tenant + ":console:session:", idle: idle, maxAge: maxAge,
		nowFunc: time.Now}
}

func (r *RedisSessions) key(token string) string {
	sum := sha256.Sum256([]byte(token))
	return r.prefix + hex.EncodeToString(sum[:])
}

// indexKey lists the session keys started with the PAK of hash;
// revokedKey marks a hash revoked for RevokeWindow.
func (r *RedisSessions) indexKey(pakHash string) string   { return r.prefix + "pak:" + pakHash }
func (r *RedisSessions) revokedKey(pakHash string) string { return r.prefix + "revoked:" + pakHash }

// createScript stores a session and indexes it under its PAK hash unless
// the hash was just revoked (atomic, so a revocation either sees the new
// session in the index or is seen by the sign-in).
var createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`)

// randomToken returns n random bytes, base64url encoded.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create stores s under a new random token and returns the token.
func (r *RedisSessions) Create(ctx context.Context, s Session) (string, error) {
	token, err := randomToken(32)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	if s.PAKHash == "" {
		return "", errors.New("console: a session needs its PAK hash")
	}
	ok, err := createScript.Run(ctx, r.client, []string{r.key(token), r.indexKey(s.PAKHash), r.revokedKey(s.PAKHash)},
		data, r.idle.Milliseconds(), r.maxAge.Milliseconds()).Int()
	if err != nil {
		return "", fmt.Errorf("console: store session: %w", err)
	}
	if ok == 0 {
		return "", ErrRevoked
	}
	return token, nil
}

// Get returns the live session of token and renews its idle TTL.
func (r *RedisSessions) Get(ctx context.Context, token string) (Session, error) {
	if token == "" || len(token) > 128 {
		return Session{}, ErrNoSession
	}
	data, err := r.client.GetEx(ctx, r.key(token), r.idle).Bytes()
	if errors.Is(err, goredis.Nil) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("console: read session: %w", err)
	}
	var s Session
	if err := json.Unmarshal(data, &s); err != nil || s.PAKHash == "" {
		// Unreadable, or from before sessions recorded their PAK: such a
		// session could not be revoked, so it is not honoured.
		_ = r.client.Del(ctx, r.key(token)).Err()
		return Session{}, ErrNoSession
	}
	if r.nowFunc().Sub(s.Created) > r.maxAge {
		_ = r.client.Del(ctx, r.key(token)).Err()
		return Session{}, ErrNoSession
	}
	return s, nil
}

// Delete ends the session (logout).
func (r *RedisSessions) Delete(ctx context.Context, token string) error {
	return r.client.Del(ctx, r.key(token)).Err()
}

// Revoke marks pakHash revoked for RevokeWindow, then deletes every session
// its index lists (the mark first: a sign-in that stores its session after
// the deletion is refused by the mark).
func (r *RedisSessions) Revoke(ctx context.Context, pakHash string) error {
	if pakHash == "" {
		return nil
	}
	if err := r.client.Set(ctx, r.revokedKey(pakHash), "1", RevokeWindow).Err(); err != nil {
		return fmt.Errorf("console: revoke sessions: %w", err)
	}
	keys, err := r.client.SMembers(ctx, r.indexKey(pakHash)).Result()
	if err != nil {
		return fmt.Errorf("console: revoke sessions: %w", err)
	}
	keys = append(keys, r.indexKey(pakHash))
	if err := r.client.Del(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("console: revoke sessions: %w", err)
	}
	return nil
}
