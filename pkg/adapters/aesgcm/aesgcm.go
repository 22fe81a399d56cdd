// Package aesgcm encrypts webhook URLs, auth headers and signing secrets at
// rest with AES-256-GCM in the original broker's format
// (docs/webhooks.md#encryption-key): version byte 0x01 ‖ 12-byte random nonce ‖
// ciphertext ‖ 16-byte tag, no associated data. It also reads the original's
// legacy format so a database moved over from the original keeps working.
package aesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	// KeySize is the AES-256 key length in bytes (64 hex characters).
	KeySize = 32
	// versionGCM marks the current format.
	versionGCM = 0x01
	// versionLegacy marks the original's earlier XOR format.
	versionLegacy = 0x00
	nonceSize     = 12
	legacyNonce   = 16
)

// ErrDecrypt is returned for any blob that does not decrypt under the key.
// It carries no detail: the caller must not learn (or log) anything about
// the plaintext.
var ErrDecrypt = errors.New("webhook secret cannot be decrypted with the configured key")

// Cipher seals and opens secrets with one key. It is safe for concurrent use.
type Cipher struct {
	key  []byte
	aead cipher.AEAD
}

// New returns a Cipher for a 32-byte key.
func New(key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("aesgcm: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := make([]byte, KeySize)
	copy(k, key)
	return &Cipher{key: k, aead: aead}, nil
}

// ParseKey decodes a 64-character hex key. The error never contains the key.
func ParseKey(hexKey string) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimSpace(hexKey))
	if err != nil || len(b) != KeySize {
		return nil, errors.New("aesgcm: the key must be 64 hexadecimal characters (32 bytes)")
	}
	return b, nil
}

// RandomKey returns a fresh random 32-byte key.
func RandomKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic("aesgcm: no randomness: " + err.Error())
	}
	return k
}

// Fingerprint identifies the key in logs without revealing it: the hex of
// the first 8 bytes of SHA-256(key), as the original logs it.
func (c *Cipher) Fingerprint() string {
	sum := sha256.Sum256(c.key)
	return hex.EncodeToString(sum[:8])
}

// Seal encrypts plaintext into the versioned format.
func (c *Cipher) Seal(plaintext []byte) []byte {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+c.aead.Overhead())
	out[0] = versionGCM
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		panic("aesgcm: no randomness: " + err.Error())
	}
	return c.aead.Seal(out, out[1:1+nonceSize], plaintext, nil)
}

// SealString encrypts a string.
func (c *Cipher) SealString(s string) []byte { return c.Seal([]byte(s)) }

// Open decrypts a blob written by Seal, or by the original in its legacy
// format: a version byte 0x00, or any other first byte than 0x01 when the
// blob is at least 16 bytes, is nonce(16) ‖ data XORed with SHA-256(key ‖
// nonce) repeated, as the original wrote it. The legacy format is not authenticated,
// so a wrong key there yields garbage rather than an error; the caller
// validates the result (a URL must still parse).
func (c *Cipher) Open(blob []byte) ([]byte, error) {
	if len(blob) > 0 && blob[0] == versionGCM {
		if len(blob) < 1+nonceSize+c.aead.Overhead() {
			return nil, ErrDecrypt
		}
		pt, err := c.aead.Open(nil, blob[1:1+nonceSize], blob[1+nonceSize:], nil)
		if err != nil {
			return nil, ErrDecrypt
		}
		return pt, nil
	}
	if len(blob) > 0 && blob[0] == versionLegacy && len(blob) >= 1+legacyNonce {
		return c.openLegacy(blob[1:]), nil
	}
	if len(blob) >= legacyNonce {
		return c.openLegacy(blob), nil
	}
	return nil, ErrDecrypt
}

// OpenString decrypts to a string.
func (c *Cipher) OpenString(blob []byte) (string, error) {
	b, err := c.Open(blob)
	return string(b), err
}

func (c *Cipher) openLegacy(b []byte) []byte {
	nonce, data := b[:legacyNonce], b[legacyNonce:]
	h := sha256.New()
	h.Write(c.key)
	h.Write(nonce)
	stream := h.Sum(nil)
	out := make([]byte, len(data))
	for i := range data {
		out[i] = data[i] ^ stream[i%len(stream)]
	}
	return out
}
