// Package identity describes who is calling: the principal a PAK resolves to.
package identity

import "github.com/google/uuid"

// Role is one of the three kinds of principal.
type Role string

const (
	RoleAdmin     Role = "admin"
	RoleAgent     Role = "agent"
	RoleGenerator Role = "generator"
	// RoleSystem is used only as an audit actor type (background jobs, CLI).
	RoleSystem Role = "system"
)

// Principal is the authenticated caller. ID is uuid.Nil for the admin.
type Principal struct {
	Role Role      `json:"role"`
	ID   uuid.UUID `json:"id"`
}

// Admin is the admin principal.
var Admin = Principal{Role: RoleAdmin}

// Agent returns the principal of agent id.
func Agent(id uuid.UUID) Principal { return Principal{Role: RoleAgent, ID: id} }

// Generator returns the principal of generator id.
func Generator(id uuid.UUID) Principal { return Principal{Role: RoleGenerator, ID: id} }

// IsAdmin reports whether the caller is the admin.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// IsAgent reports whether the caller is agent id.
func (p Principal) IsAgent(id uuid.UUID) bool { return p.Role == RoleAgent && p.ID == id }

// IsGenerator reports whether the caller is generator id.
func (p Principal) IsGenerator(id uuid.UUID) bool { return p.Role == RoleGenerator && p.ID == id }

// AuthPayload is the original's verify response: {admin, agent, generator,
// readonly}. ReadOnly is 0.9.1's flag for its console's ephemeral read-only
// PAK; this broker issues no read-only credential, so it is always false
// (docs/compatibility.md#auth-pak-readonly).
type AuthPayload struct {
	Admin     bool       `json:"admin"`
	Agent     *uuid.UUID `json:"agent"`
	Generator *uuid.UUID `json:"generator"`
	ReadOnly  bool       `json:"readonly"`
}

// Payload renders the principal in the original's shape.
func (p Principal) Payload() AuthPayload {
	out := AuthPayload{Admin: p.IsAdmin()}
	id := p.ID
	switch p.Role {
	case RoleAgent:
		out.Agent = &id
	case RoleGenerator:
		out.Generator = &id
	}
	return out
}

// ActorID is the id recorded in audit logs (nil for admin and system).
func (p Principal) ActorID() *uuid.UUID {
	if p.ID == uuid.Nil {
		return nil
	}
	id := p.ID
	return &id
}
