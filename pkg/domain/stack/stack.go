// Package stack holds stacks and their immutable, sequence-numbered
// deployment objects.
package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

// Stack groups Kubernetes resources delivered together. GeneratorID nil is a
// system stack owned by the admin (docs/compatibility.md#system-stacks).
type Stack struct {
	ID          uuid.UUID  `json:"id"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	DeletedAt   *time.Time `json:"deleted_at"`
	Name        string     `json:"name"`
	Description *string    `json:"description"`
	GeneratorID *uuid.UUID `json:"generator_id"`
	// DependsOn lists the stacks whose latest object must be applied and
	// healthy on an agent before this stack's objects reach it
	// (docs/dependencies.md); always an array on the wire.
	DependsOn []uuid.UUID `json:"depends_on"`
}

// stackJSON is Stack's wire form.
type stackJSON Stack

// MarshalJSON answers a system stack's generator_id as the system
// generator's id rather than null: 0.9.1 clients read it as a UUID
// (docs/compatibility.md#system-stacks). Storage keeps NULL.
func (s Stack) MarshalJSON() ([]byte, error) {
	w := stackJSON(s)
	if w.GeneratorID == nil {
		id := generator.SystemID
		w.GeneratorID = &id
	}
	if w.DependsOn == nil {
		w.DependsOn = []uuid.UUID{}
	}
	return json.Marshal(w)
}

// UnmarshalJSON reverses MarshalJSON: the system generator's id reads back
// as a system stack.
func (s *Stack) UnmarshalJSON(b []byte) error {
	var w stackJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.GeneratorID != nil && *w.GeneratorID == generator.SystemID {
		w.GeneratorID = nil
	}
	*s = Stack(w)
	return nil
}

// OwnedBy reports whether generator id owns the stack.
func (s Stack) OwnedBy(id uuid.UUID) bool { return s.GeneratorID != nil && *s.GeneratorID == id }

// DeploymentObject is one immutable version of a stack's YAML.
type DeploymentObject struct {
	ID               uuid.UUID  `json:"id"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	DeletedAt        *time.Time `json:"deleted_at"`
	SequenceID       int64      `json:"sequence_id"`
	StackID          uuid.UUID  `json:"stack_id"`
	YAMLContent      string     `json:"yaml_content"`
	YAMLChecksum     string     `json:"yaml_checksum"`
	SubmittedAt      time.Time  `json:"submitted_at"`
	IsDeletionMarker bool       `json:"is_deletion_marker"`
	// RolledBackFrom is set on an object made by a rollback: the stack's
	// latest object when it was rolled back (docs/rollouts.md#rollback).
	// Absent otherwise.
	RolledBackFrom *uuid.UUID `json:"rolled_back_from,omitempty"`
}

// Checksum is the lowercase hex SHA-256 of the YAML, as the original computes.
func Checksum(yaml string) string {
	sum := sha256.Sum256([]byte(yaml))
	return hex.EncodeToString(sum[:])
}
