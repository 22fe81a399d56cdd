// Package audit describes audit-log entries: who did what to which resource.
package audit

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Entry is one immutable audit record.
type Entry struct {
	ID           uuid.UUID       `json:"id"`
	Timestamp    time.Time       `json:"timestamp"`
	ActorType    string          `json:"actor_type"`
	ActorID      *uuid.UUID      `json:"actor_id"`
	Action       string          `json:"action"`
	ResourceType string          `json:"resource_type"`
	ResourceID   *uuid.UUID      `json:"resource_id"`
	Details      json.RawMessage `json:"details"`
	IPAddress    *string         `json:"ip_address,omitempty"`
	UserAgent    *string         `json:"user_agent,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
}

// Filter selects audit entries. Action ending in "*" is a prefix match.
type Filter struct {
	ActorType    string
	ActorID      *uuid.UUID
	Action       string
	ResourceType string
	ResourceID   *uuid.UUID
	From, To     *time.Time
	Limit        int
	Offset       int
}

// Actions written by the broker.
const (
	ActionAgentCreated        = "agent.created"
	ActionAgentUpdated        = "agent.updated"
	ActionAgentDeleted        = "agent.deleted"
	ActionPakRotated          = "pak.rotated"
	ActionPakCreated          = "pak.created"
	ActionStackCreated        = "stack.created"
	ActionStackUpdated        = "stack.updated"
	ActionStackDeleted        = "stack.deleted"
	ActionGeneratorCreated    = "generator.created"
	ActionGeneratorUpdated    = "generator.updated"
	ActionGeneratorDeleted    = "generator.deleted"
	ActionAuthFailed          = "auth.failed"
	ActionTemplateCreated     = "template.created"
	ActionDiagnosticRequested = "diagnostic.requested"
	ActionTemplateUpdated     = "template.updated"
	ActionTemplateDeleted     = "template.deleted"
	ActionConfigReloaded      = "config.reloaded"
	// Label, annotation, target and deployment-object writes are audited too;
	// the original records none of them (docs/compatibility.md#audit: every
	// action is audited).
	ActionLabelAdded        = "label.added"
	ActionLabelRemoved      = "label.removed"
	ActionAnnotationAdded   = "annotation.added"
	ActionAnnotationRemoved = "annotation.removed"
	ActionTargetAdded       = "target.added"
	ActionTargetRemoved     = "target.removed"
	ActionAgentRegistered   = "registration.created"
	ActionAgentDeregistered = "registration.deleted"
	ActionDeploymentCreated = "deployment.created"
	ActionAgentEventCreated = "agent_event.created"
)
