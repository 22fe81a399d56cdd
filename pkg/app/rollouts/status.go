package rollouts

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// Status is GET /stacks/{id}/rollout: the stack's newest rollout and,
// per wave, where each agent is.
type Status struct {
	rollout.Rollout
	Waves []WaveStatus `json:"waves"`
}

// WaveStatus is one wave of a Status.
type WaveStatus struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// State: pending (not started), releasing (current) or done.
	State  string         `json:"state"`
	Counts map[string]int `json:"counts"`
	Agents []AgentStatus  `json:"agents"`
}

// AgentStatus is one agent of a WaveStatus; Phase is pending, released,
// applied, healthy or failed (with Reason).
type AgentStatus struct {
	rollout.Agent
	Phase string `json:"phase"`
}

// Status returns the stack's newest rollout: admin or the owning generator.
func (s *Service) Status(ctx context.Context, p identity.Principal, stackID uuid.UUID) (Status, error) {
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return Status{}, err
	}
	r, err := s.repos.Rollouts.Latest(ctx, stackID)
	if err != nil {
		return Status{}, err
	}
	agents, err := s.repos.Rollouts.Agents(ctx, r.ID)
	if err != nil {
		return Status{}, err
	}
	return BuildStatus(r, agents), nil
}

// BuildStatus groups a rollout's agents by wave.
func BuildStatus(r rollout.Rollout, agents []rollout.Agent) Status {
	st := Status{Rollout: r, Waves: make([]WaveStatus, rollout.WaveCount(r.Policy))}
	for i := range st.Waves {
		state := "pending"
		switch {
		case r.State == rollout.StateComplete || i < r.CurrentWave:
			state = "done"
		case i == r.CurrentWave:
			state = "releasing"
		}
		st.Waves[i] = WaveStatus{Index: i, Name: rollout.WaveName(r.Policy, i), State: state,
			Counts: map[string]int{"pending": 0, "released": 0, "applied": 0, "healthy": 0, "failed": 0},
			Agents: []AgentStatus{}}
	}
	for _, a := range agents {
		if a.Wave < 0 || a.Wave >= len(st.Waves) {
			continue
		}
		w := &st.Waves[a.Wave]
		ph := a.Phase()
		w.Counts[ph]++
		w.Agents = append(w.Agents, AgentStatus{Agent: a, Phase: ph})
	}
	return st
}
