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
// PAK resolved to at login and the session's CSRF token. The PAK itself is
// never stored.
type Session struct {
	Role    identity.Role `json:"role"`
	ID      uuid.UUID     `json:"id"`
	CSRF    string        `json:"csrf"`
	Created time.Time     `json:"created"`
}

// Principal is the identity the session acts as.
func (s Session) Principal() identity.Principal { return identity.Principal{Role: s.Role, ID: s.ID} }

// ErrNoSession: the cookie names no live session.
var ErrNoSession = errors.New("console: no session")

// Sessions keeps console sessions server-side.
type Sessions interface {
	Create(ctx context.Context, s Session) (token string, err error)
	Get(ctx context.Context, token string) (Session, error)
	Delete(ctx context.Context, token string) error
}

// RedisSessions stores sessions in Redis under the hash of the cookie's
// token (so a Redis dump does not hold usable cookies) with an idle TTL
// renewed on use and an absolute lifetime.
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
	if err := r.client.Set(ctx, r.key(token), data, r.idle).Err(); err != nil {
		return "", fmt.Errorf("console: store session: %w", err)
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
	if err := json.Unmarshal(data, &s); err != nil {
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
