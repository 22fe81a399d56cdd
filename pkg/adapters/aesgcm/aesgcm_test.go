package aesgcm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func mustCipher(t *testing.T, key []byte) *Cipher {
	t.Helper()
	c, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSealOpenRoundTrip(t *testing.T) {
	c := mustCipher(t, RandomKey())
	for _, pt := range []string{"", "https://hooks.slack.com/services/T00/B00/XXX", strings.Repeat("x", 4096)} {
		blob := c.SealString(pt)
		if blob[0] != 0x01 || len(blob) != 1+12+len(pt)+16 {
			t.Fatalf("blob layout: version %#x, length %d for %d plaintext bytes", blob[0], len(blob), len(pt))
		}
		if pt != "" && bytes.Contains(blob, []byte(pt)) {
			t.Fatal("ciphertext contains the plaintext")
		}
		got, err := c.OpenString(blob)
		if err != nil || got != pt {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	}
	// Fresh nonce per seal.
	if bytes.Equal(c.SealString("same"), c.SealString("same")) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestOpenRejectsTamperingAndWrongKey(t *testing.T) {
	c := mustCipher(t, RandomKey())
	other := mustCipher(t, RandomKey())
	blob := c.SealString("Bearer token")
	if _, err := other.Open(blob); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong key: %v", err)
	}
	for i := 1; i < len(blob); i++ {
		bad := bytes.Clone(blob)
		bad[i] ^= 0x80
		if _, err := c.Open(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipping byte %d was not detected: %v", i, err)
		}
	}
	for _, short := range [][]byte{nil, {0x01}, blob[:20]} {
		if _, err := c.Open(short); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("short blob %x: %v", short, err)
		}
	}
	if strings.Contains(ErrDecrypt.Error(), "Bearer") {
		t.Fatal("the error must not mention the plaintext")
	}
}

// legacySeal writes the original's older format: nonce(16) ‖ data XOR
// SHA-256(key ‖ nonce) repeated, optionally behind a 0x00 version byte.
func legacySeal(key, nonce, pt []byte, versioned bool) []byte {
	h := sha256.Sum256(append(bytes.Clone(key), nonce...))
	out := bytes.Clone(nonce)
	for i, b := range pt {
		out = append(out, b^h[i%len(h)])
	}
	if versioned {
		return append([]byte{0x00}, out...)
	}
	return out
}

func TestOpenReadsLegacyFormat(t *testing.T) {
	key := RandomKey()
	c := mustCipher(t, key)
	nonce := bytes.Repeat([]byte{0x42}, 16)
	pt := []byte("https://example.com/a/very/long/path/that/is/longer/than/thirty-two/bytes")
	for _, versioned := range []bool{true, false} {
		got, err := c.Open(legacySeal(key, nonce, pt, versioned))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("legacy (versioned=%v): %q, %v", versioned, got, err)
		}
	}
}

func TestKeys(t *testing.T) {
	if _, err := ParseKey(strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.Repeat("ab", 31), strings.Repeat("ab", 33)} {
		_, err := ParseKey(bad)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Error("a 16-byte key must be refused (AES-256 only)")
	}
	k := RandomKey()
	c := mustCipher(t, k)
	fp := c.Fingerprint()
	if len(fp) != 16 || strings.Contains(fp, string(k)) {
		t.Errorf("fingerprint %q", fp)
	}
	if mustCipher(t, k).Fingerprint() != fp || mustCipher(t, RandomKey()).Fingerprint() == fp {
		t.Error("fingerprints must identify keys")
	}
}
