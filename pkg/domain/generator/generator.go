// Package generator holds the generator aggregate: a CI/CD identity that owns
// stacks and templates.
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
	ID           uuid.UUID  `json:"id" db:"id"`
	CreatedAt    time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at" db:"updated_at"`
	DeletedAt    *time.Time `json:"deleted_at" db:"deleted_at"`
	Name         string     `json:"name" db:"name"`
	Description  *string    `json:"description" db:"description"`
	LastActiveAt *time.Time `json:"last_active_at" db:"last_active_at"`
	IsActive     bool       `json:"is_active" db:"is_active"`
	PakHash      *string    `json:"-" db:"pak_hash"`
}
