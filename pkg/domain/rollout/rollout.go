package rollout

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// Rollout states (docs/rollouts.md#states). Progressing, paused and halted
// are unfinished: the object reaches only the agents of released waves.
const (
	StateProgressing = "progressing"
	StatePaused      = "paused"
	StateHalted      = "halted"
	StateComplete    = "complete"
	StateRolledBack  = "rolled_back"
	StateAborted     = "aborted"
	StateSuperseded  = "superseded"
)

// Unfinished reports whether a rollout in state may still release agents.
func Unfinished(state string) bool {
	return state == StateProgressing || state == StatePaused || state == StateHalted
}

// Rollout is the record of one deployment object rolled out in waves.
type Rollout struct {
	ID                 uuid.UUID  `json:"id"`
	StackID            uuid.UUID  `json:"stack_id"`
	DeploymentObjectID uuid.UUID  `json:"deployment_object_id"`
	SequenceID         int64      `json:"sequence_id"`
	PreviousObjectID   *uuid.UUID `json:"previous_object_id"`
	Policy             Policy     `json:"policy"`
	State              string     `json:"state"`
	// CurrentWave is the index of the wave being released; -1 before the
	// agents are assigned.
	CurrentWave int        `json:"current_wave"`
	Reason      *string    `json:"reason"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

// Agent is one agent's progress in a rollout, plus what it reported for
// the object (filled when the rollout is advanced).
type Agent struct {
	AgentID      uuid.UUID  `json:"agent_id"`
	Wave         int        `json:"wave"`
	ReleasedAt   *time.Time `json:"released_at"`
	AppliedAt    *time.Time `json:"applied_at"`
	HealthySince *time.Time `json:"healthy_since"`
	HealthyAt    *time.Time `json:"healthy_at"`
	FailedAt     *time.Time `json:"failed_at"`
	Reason       *string    `json:"reason"`

	// Observations: the agent's latest SUCCESS/FAILURE event for the object
	// and its deployment health status ("" when none).
	LastEvent   string `json:"-"`
	EventReason string `json:"-"`
	Health      string `json:"-"`
}

// Phase names an agent's position for the status view.
func (a Agent) Phase() string {
	switch {
	case a.FailedAt != nil:
		return "failed"
	case a.HealthyAt != nil:
		return "healthy"
	case a.AppliedAt != nil:
		return "applied"
	case a.ReleasedAt != nil:
		return "released"
	}
	return "pending"
}

// Unavailable: released but neither counted healthy nor settled as failed.
func (a Agent) Unavailable() bool {
	return a.ReleasedAt != nil && a.HealthyAt == nil && a.FailedAt == nil
}

// Done: counted healthy or failed; the wave no longer waits for it.
func (a Agent) Done() bool { return a.HealthyAt != nil || a.FailedAt != nil }

// Candidate is an agent targeted by the stack when the rollout starts.
type Candidate struct {
	ID          uuid.UUID
	Labels      []string
	Annotations map[string]string
}

func (s *Selector) matches(c Candidate) bool {
	for _, l := range s.Labels {
		if !slices.Contains(c.Labels, l) {
			return false
		}
	}
	for k, v := range s.Annotations {
		if got, ok := c.Annotations[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Assign puts every candidate in exactly one wave: each wave takes, among
// the agents earlier waves left, those its selector matches or its percent
// of them (rounded up, in agent-id order, so the split is stable). Agents
// no wave takes form a last, implicit wave (index len(waves)).
func Assign(waves []Wave, candidates []Candidate) map[uuid.UUID]int {
	rest := slices.Clone(candidates)
	slices.SortFunc(rest, func(a, b Candidate) int { return compareIDs(a.ID, b.ID) })
	out := make(map[uuid.UUID]int, len(candidates))
	for i, w := range waves {
		var keep []Candidate
		switch {
		case w.Percent != nil:
			n := (len(rest)**w.Percent + 99) / 100
			for _, c := range rest[:n] {
				out[c.ID] = i
			}
			keep = rest[n:]
		case w.Selector != nil:
			for _, c := range rest {
				if w.Selector.matches(c) {
					out[c.ID] = i
				} else {
					keep = append(keep, c)
				}
			}
		}
		rest = keep
	}
	for _, c := range rest {
		out[c.ID] = len(waves)
	}
	return out
}

func compareIDs(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// WaveCount is the number of waves including the implicit last one.
func WaveCount(p Policy) int { return len(p.Waves) + 1 }

// WaveName names wave i ("remaining" for the implicit last one).
func WaveName(p Policy, i int) string {
	if i >= 0 && i < len(p.Waves) {
		return p.Waves[i].Name
	}
	return "remaining"
}
