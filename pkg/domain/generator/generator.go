// Package generator holds the generator aggregate: a CI/CD identity that owns
// stacks and templates. The JSON tags are the api's wire format, kept on the
// type on purpose (docs/architecture.md#persistence).
package generator

import (
	"time"

	"github.com/google/uuid"
)

// AdminGeneratorName is the generator created at first start and linked to
// the admin PAK, as in the original.
const AdminGeneratorName = "admin-generator"

// Generator is a CI/CD identity.
type Generator struct {
	ID           uuid.UUID  `json:"id"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	DeletedAt    *time.Time `json:"deleted_at"`
	Name         string     `json:"name"`
	Description  *string    `json:"description"`
	LastActiveAt *time.Time `json:"last_active_at"`
	IsActive     bool       `json:"is_active"`
	PakHash      *string    `json:"-"`
}
