package agent

import (
	"time"

	"github.com/google/uuid"
)

// Registration is an agent's consent to receive a generator's stacks
// (docs/compatibility.md#generator-registration); 0.9.1's
// AgentGeneratorRegistration on the wire.
type Registration struct {
	ID           uuid.UUID `json:"id"`
	AgentID      uuid.UUID `json:"agent_id"`
	GeneratorID  uuid.UUID `json:"generator_id"`
	RegisteredAt time.Time `json:"registered_at"`
}
