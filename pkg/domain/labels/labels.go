// Package labels holds the labels and annotations that agents and stacks
// carry (matching ones associate a stack with an agent:
// docs/compatibility.md#stack-association), and validates the label and
// annotation strings shared by agents, stacks and templates.
package labels

import (
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Label is one label of an owner (an agent or a stack, OwnerID its id).
type Label struct {
	ID      uuid.UUID
	OwnerID uuid.UUID
	Label   string
}

// Annotation is one key/value annotation of an owner. An agent has one
// value per key; a stack's keys may repeat.
type Annotation struct {
	ID      uuid.UUID
	OwnerID uuid.UUID
	Key     string
	Value   string
}

// MaxLen is the column limit for labels, annotation keys and values.
const MaxLen = 64

// ValidateLabel applies the original's rules with its messages.
func ValidateLabel(l string) error {
	return validate(l, "Label", "invalid_label")
}

// ValidateAnnotation checks an annotation key and value.
func ValidateAnnotation(key, value string) error {
	if err := validate(key, "Annotation key", "invalid_annotation"); err != nil {
		return err
	}
	return validate(value, "Annotation value", "invalid_annotation")
}

// validate checks one value; code is 0.9.1's (docs/error-codes.md).
func validate(s, what, code string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return domain.InvalidCode(code, what+" cannot be empty")
	case len(s) > MaxLen:
		return domain.InvalidCode(code, what+" cannot exceed 64 characters")
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return domain.InvalidCode(code, what+" cannot contain whitespace")
	}
	return nil
}
