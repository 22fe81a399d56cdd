// Package secret provides a string type that never reveals its value when
// formatted, logged or marshalled, so a PAK or key cannot leak by accident.
package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what every rendering of a non-empty String shows.
const Redacted = "[REDACTED]"

// String holds a secret. Use Reveal to get the value where it is really needed.
type String string

// Reveal returns the plain value.
func (s String) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s String) IsZero() bool { return s == "" }

func (s String) display() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// String implements fmt.Stringer.
func (s String) String() string { return s.display() }

// GoString implements fmt.GoStringer (the %#v verb).
func (s String) GoString() string { return fmt.Sprintf("secret.String(%q)", s.display()) }

// Format makes every verb (%s, %v, %q, %x, %d ...) print the redacted form.
func (s String) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.display())
	default:
		fmt.Fprint(f, s.display())
	}
}

// LogValue implements slog.LogValuer.
func (s String) LogValue() slog.Value { return slog.StringValue(s.display()) }

// MarshalJSON writes the redacted form.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.display()) }

// MarshalText writes the redacted form (used by TOML/YAML encoders and koanf dumps).
func (s String) MarshalText() ([]byte, error) { return []byte(s.display()), nil }

// UnmarshalText accepts the plain value, so config loaders can fill it.
func (s *String) UnmarshalText(b []byte) error { *s = String(b); return nil }
