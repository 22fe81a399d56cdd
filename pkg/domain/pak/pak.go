// Package pak implements Brokkr's prefixed API keys (PAKs), the credential of
// admins, agents and generators: `<prefix>_<short>_<long>`, for example
// `brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8`.
//
// The format and the stored hash are those of the original (the
// prefixed-api-key crate): only the lowercase hex SHA-256 of the long token
// is stored, so hashes pinned for the original (BROKKR__BROKER__PAK_HASH)
// keep working.
package pak

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mr-tron/base58"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// MaxLen bounds an accepted PAK (after an optional "Bearer " prefix).
// Default PAKs are about 50 bytes; the bound leaves room for the longest
// configurable ones while keeping garbage from being hashed.
const MaxLen = 512

// maxTokenBytes bounds the configured random lengths, so a bad config cannot
// produce PAKs that ParseHeader would reject.
const maxTokenBytes = 128

// Config is the PAK generation configuration (BROKKR__PAK__*).
type Config struct {
	Prefix           string
	ShortTokenPrefix string
	ShortTokenLength int
	LongTokenLength  int
}

// DefaultConfig is the original's default: brokkr_BR<6 chars>_<long>.
var DefaultConfig = Config{Prefix: "brokkr", ShortTokenPrefix: "BR", ShortTokenLength: 8, LongTokenLength: 24}

// ErrMalformed is returned by ParseHeader for anything that is not a PAK.
var ErrMalformed = errors.New("malformed PAK")

// Validate checks that cfg generates PAKs that ParseHeader accepts; the
// message names the offending key.
func (c Config) Validate() error {
	switch {
	case c.Prefix == "" || !visible(c.Prefix):
		return fmt.Errorf("pak.prefix must be non-empty visible ASCII without '_', got %q", c.Prefix)
	case !visible(c.ShortTokenPrefix) && c.ShortTokenPrefix != "":
		return fmt.Errorf("pak.short_token_prefix must be visible ASCII without '_', got %q", c.ShortTokenPrefix)
	case c.ShortTokenLength < 1 || c.ShortTokenLength > maxTokenBytes:
		return fmt.Errorf("pak.short_token_length must be between 1 and %d, got %d", maxTokenBytes, c.ShortTokenLength)
	case c.LongTokenLength < 8 || c.LongTokenLength > maxTokenBytes:
		return fmt.Errorf("pak.long_token_length must be between 8 and %d, got %d", maxTokenBytes, c.LongTokenLength)
	case len(c.Prefix)+c.ShortTokenLength+2*c.LongTokenLength+2 > MaxLen:
		return fmt.Errorf("pak: prefix and token lengths give PAKs longer than %d bytes", MaxLen)
	}
	return nil
}

// Generate creates a PAK from rnd: short = ShortTokenPrefix followed by the
// base58 of ShortTokenLength random bytes, truncated to ShortTokenLength
// characters in total; long = base58 of LongTokenLength random bytes. hash
// is Hash(long).
func Generate(cfg Config, rnd io.Reader) (pak string, hash string, err error) {
	if err := cfg.Validate(); err != nil {
		return "", "", err
	}
	short := make([]byte, cfg.ShortTokenLength)
	if _, err := io.ReadFull(rnd, short); err != nil {
		return "", "", fmt.Errorf("pak: read random bytes: %w", err)
	}
	long := make([]byte, cfg.LongTokenLength)
	if _, err := io.ReadFull(rnd, long); err != nil {
		return "", "", fmt.Errorf("pak: read random bytes: %w", err)
	}
	shortToken := cfg.ShortTokenPrefix + base58.Encode(short)
	if len(shortToken) > cfg.ShortTokenLength {
		shortToken = shortToken[:cfg.ShortTokenLength]
	}
	longToken := base58.Encode(long)
	return cfg.Prefix + "_" + shortToken + "_" + longToken, Hash(longToken), nil
}

// Hash is the stored form of a PAK: lowercase hex SHA-256 of the long token.
func Hash(long string) string {
	sum := sha256.Sum256([]byte(long))
	return hex.EncodeToString(sum[:])
}

// Equal compares two hashes in constant time (for equal lengths).
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// IsHash reports whether s is a well-formed stored hash: 64 hex characters.
// Callers lower-case pinned hashes before storing them.
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// ParseHeader extracts the long token from an Authorization header value:
// an optional case-insensitive "Bearer " prefix, then exactly three
// '_'-separated non-empty parts of visible ASCII, the third being base58.
// The prefix and the short token are checked by the verifier when they
// were recorded at issue (the original checks neither). Malformed input is
// an error, never a panic.
func ParseHeader(value string) (string, error) {
	_, long, err := Parse(value)
	return long, err
}

// Parse is ParseHeader returning the public part too: "<prefix>_<short>",
// everything before the long token, which verification compares with the
// one recorded at issue.
func Parse(value string) (public, long string, err error) {
	v := strings.TrimSpace(value)
	if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
		v = strings.TrimSpace(v[7:])
	}
	if v == "" || len(v) > MaxLen {
		return "", "", ErrMalformed
	}
	first := strings.IndexByte(v, '_')
	if first <= 0 {
		return "", "", ErrMalformed
	}
	rest := v[first+1:]
	second := strings.IndexByte(rest, '_')
	if second <= 0 {
		return "", "", ErrMalformed
	}
	prefix, short, long := v[:first], rest[:second], rest[second+1:]
	if long == "" || !visible(prefix) || !visible(short) || !isBase58(long) {
		return "", "", ErrMalformed
	}
	return v[:first+1+second], long, nil
}

// visible reports whether s is printable ASCII without space and '_'.
func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c > '~' || c == '_' {
			return false
		}
	}
	return true
}

const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Char = func() (t [256]bool) {
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = true
	}
	return t
}()

func isBase58(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base58Char[s[i]] {
			return false
		}
	}
	return true
}

// Issuer generates PAKs from crypto/rand. It implements the use cases'
// PAKIssuer port in the auth service.
type Issuer struct {
	Cfg Config
}

// NewIssuer returns an Issuer after validating cfg.
func NewIssuer(cfg Config) (*Issuer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Issuer{Cfg: cfg}, nil
}

// Issue generates a new PAK and its hash.
func (i Issuer) Issue(ctx context.Context) (secret.String, string, error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	p, h, err := Generate(i.Cfg, rand.Reader)
	if err != nil {
		return "", "", err
	}
	return secret.String(p), h, nil
}
