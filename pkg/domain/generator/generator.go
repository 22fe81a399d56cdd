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

// SystemGeneratorName names the singleton system generator: it carries the
// stacks every agent receives and every agent is registered with it.
const SystemGeneratorName = "__system__"

// SystemID is the system generator's fixed id (created by migration
// 0011_generator_registrations). Fixed so that a system stack, stored with
// no generator, answers it in generator_id without a lookup.
var SystemID = uuid.MustParse("00000000-0000-4000-8000-000000000001")

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
	// IsSystem is true only for the system generator, which is hidden from
	// listings and cannot be changed or deleted.
	IsSystem bool    `json:"is_system"`
	PakHash  *string `json:"-"`
}

// Tenant is one entry of GET /paks: a named PAK owner (a generator other
// than the system generator) reduced to its identity, 0.9.1's PakSummary.
// It carries no secret and no hash.
type Tenant struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
}
