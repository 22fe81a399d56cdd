// Package health describes deployment health as agents report it: one
// status per (agent, deployment object), and how statuses aggregate.
package health

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Status values, from best to worst.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
	Failing  = "failing"
	Unknown  = "unknown"
)

// Valid reports whether s is one of the four statuses.
func Valid(s string) bool {
	switch s {
	case Healthy, Degraded, Failing, Unknown:
		return true
	}
	return false
}

// Record is the latest health of one deployment object on one agent.
type Record struct {
	ID                 uuid.UUID       `json:"id"`
	AgentID            uuid.UUID       `json:"agent_id"`
	DeploymentObjectID uuid.UUID       `json:"deployment_object_id"`
	Status             string          `json:"status"`
	Summary            json.RawMessage `json:"summary"`
	CheckedAt          time.Time       `json:"checked_at"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
}

// Overall aggregates statuses by severity: failing, else degraded, else
// healthy, else unknown (also for none).
func Overall(statuses ...string) string {
	var degraded, healthy bool
	for _, s := range statuses {
		switch s {
		case Failing:
			return Failing
		case Degraded:
			degraded = true
		case Healthy:
			healthy = true
		}
	}
	switch {
	case degraded:
		return Degraded
	case healthy:
		return Healthy
	}
	return Unknown
}
