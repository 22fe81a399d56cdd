package template

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/google/uuid"
)

// Template is a stack template at one version. The id is stable across
// versions (docs/compatibility.md#template-versions); GeneratorID nil is a
// system template.
type Template struct {
	ID               uuid.UUID  `json:"id"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
	DeletedAt        *time.Time `json:"deleted_at"`
	GeneratorID      *uuid.UUID `json:"generator_id"`
	Name             string     `json:"name"`
	Description      *string    `json:"description"`
	Version          int        `json:"version"`
	TemplateContent  string     `json:"template_content"`
	ParametersSchema string     `json:"parameters_schema"`
	Checksum         string     `json:"checksum"`
}

// IsSystem reports whether the admin owns the template.
func (t Template) IsSystem() bool { return t.GeneratorID == nil }

// OwnedBy reports whether generator id owns the template.
func (t Template) OwnedBy(id uuid.UUID) bool { return t.GeneratorID != nil && *t.GeneratorID == id }

// Version is one immutable version of a template.
type Version struct {
	TemplateID       uuid.UUID `json:"template_id"`
	Version          int       `json:"version"`
	CreatedAt        time.Time `json:"created_at"`
	Description      *string   `json:"description"`
	TemplateContent  string    `json:"template_content"`
	ParametersSchema string    `json:"parameters_schema"`
	Checksum         string    `json:"checksum"`
}

// Label is one template label.
type Label struct {
	ID         uuid.UUID `json:"id"`
	TemplateID uuid.UUID `json:"template_id"`
	Label      string    `json:"label"`
	CreatedAt  time.Time `json:"created_at"`
}

// TemplateAnnotation is one template annotation (one value per key).
type TemplateAnnotation struct {
	ID         uuid.UUID `json:"id"`
	TemplateID uuid.UUID `json:"template_id"`
	Key        string    `json:"key"`
	Value      string    `json:"value"`
	CreatedAt  time.Time `json:"created_at"`
}

// Provenance records which template version and parameters produced a
// deployment object.
type Provenance struct {
	DeploymentObjectID uuid.UUID `json:"deployment_object_id"`
	TemplateID         uuid.UUID `json:"template_id"`
	TemplateVersion    int       `json:"template_version"`
	Parameters         []byte    `json:"template_parameters"`
}

// Checksum is the SHA-256 hex of the template source.
func Checksum(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}
