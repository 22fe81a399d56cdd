package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Transition kinds, recorded in the rollout's event log in the order they
// happen (docs/rollouts.md#event-log): per agent released, applied,
// healthy, failed; per rollout the others.
const (
	KindWaveStarted = "wave_started"
	KindReleased    = "released"
	KindApplied     = "applied"
	KindHealthy     = "healthy"
	KindFailed      = "failed"
	KindPaused      = "paused"
	KindResumed     = "resumed"
	KindPromoted    = "promoted"
	KindHalted      = "halted"
	KindCompleted   = "completed"
	KindAborted     = "aborted"
	KindRolledBack  = "rolled_back"
)

// Transition is one entry of the event log.
type Transition struct {
	Kind    string     `json:"kind"`
	AgentID *uuid.UUID `json:"agent_id,omitempty"`
	Wave    int        `json:"wave"`
	Reason  string     `json:"reason,omitempty"`
	At      time.Time  `json:"at"`
}

// Step is what advancing (or a control action) changes: the agents whose
// rows change, the log entries, and the rollout's new state and wave.
type Step struct {
	Agents      []Agent
	Transitions []Transition
	State       string
	CurrentWave int
	Reason      *string
	// Released lists the agents whose target state now holds the object.
	Released []uuid.UUID
}

// Changed reports whether the step writes anything.
func (s Step) Changed() bool { return len(s.Agents) > 0 || len(s.Transitions) > 0 }

type stepper struct {
	r      Rollout
	agents []Agent
	now    time.Time
	step   Step
	dirty  map[int]bool
}

func newStepper(r Rollout, agents []Agent, now time.Time) *stepper {
	a := slices.Clone(agents)
	slices.SortFunc(a, func(x, y Agent) int { return compareIDs(x.AgentID, y.AgentID) })
	return &stepper{r: r, agents: a, now: now, dirty: map[int]bool{},
		step: Step{State: r.State, CurrentWave: r.CurrentWave, Reason: r.Reason}}
}

func (s *stepper) log(kind string, agent *uuid.UUID, wave int, reason string) {
	s.step.Transitions = append(s.step.Transitions, Transition{Kind: kind, AgentID: agent, Wave: wave, Reason: reason, At: s.now})
}

func (s *stepper) finish() Step {
	for i := range s.agents {
		if s.dirty[i] {
			s.step.Agents = append(s.step.Agents, s.agents[i])
		}
	}
	return s.step
}

func (s *stepper) setState(state, kind, reason string) {
	s.step.State = state
	if reason != "" {
		s.step.Reason = &reason
	}
	s.log(kind, nil, s.step.CurrentWave, reason)
}

// Assigned returns the agents of a rollout that has not started, each in
// its wave (see Assign).
func Assigned(p Policy, candidates []Candidate) []Agent {
	waves := Assign(p.Waves, candidates)
	out := make([]Agent, 0, len(waves))
	for id, w := range waves {
		out = append(out, Agent{AgentID: id, Wave: w})
	}
	return out
}

// Advance moves a progressing rollout forward at time now: it records what
// released agents reported (applied, healthy after min_healthy_seconds,
// failed), applies on_failure, then releases agents of the current wave
// while keeping its unavailable agents at most max_unavailable, and moves
// to the next wave once every agent of the current one is done. Agents of
// a rollout that has not started (CurrentWave -1) must be assigned already
// (Assigned); they are written with the step.
func Advance(r Rollout, agents []Agent, now time.Time) Step {
	s := newStepper(r, agents, now)
	if r.State != StateProgressing {
		return s.finish()
	}
	if r.CurrentWave < 0 {
		for i := range s.agents {
			s.dirty[i] = true
		}
	}
	var failures []string
	for i := range s.agents {
		a := &s.agents[i]
		if a.ReleasedAt == nil || a.Done() {
			continue
		}
		if reason := s.failure(*a); reason != "" {
			a.FailedAt, a.Reason, s.dirty[i] = &now, &reason, true
			s.log(KindFailed, &a.AgentID, a.Wave, reason)
			failures = append(failures, fmt.Sprintf("agent %s: %s", a.AgentID, reason))
			continue
		}
		s.observe(i)
	}
	if len(failures) > 0 {
		switch r.Policy.OnFailure {
		case OnFailureHalt:
			s.setState(StateHalted, KindHalted, failures[0])
			return s.finish()
		case OnFailureRollback:
			s.setState(StateRolledBack, KindRolledBack, failures[0])
			return s.finish()
		}
	}
	s.release()
	return s.finish()
}

// failure says why a released agent failed, or "".
func (s *stepper) failure(a Agent) string {
	switch {
	case a.LastEvent == "FAILURE":
		if a.EventReason != "" {
			return "apply failed: " + a.EventReason
		}
		return "apply failed"
	case a.Health == "failing":
		return "deployment health is failing"
	case s.r.Policy.ProgressDeadlineSeconds > 0 &&
		!s.now.Before(a.ReleasedAt.Add(time.Duration(s.r.Policy.ProgressDeadlineSeconds)*time.Second)):
		return fmt.Sprintf("not healthy within progress_deadline_seconds (%d)", s.r.Policy.ProgressDeadlineSeconds)
	}
	return ""
}

// observe records applied and healthy for agent i.
func (s *stepper) observe(i int) {
	a, now := &s.agents[i], s.now
	if a.AppliedAt == nil && a.LastEvent == "SUCCESS" {
		a.AppliedAt, s.dirty[i] = &now, true
		s.log(KindApplied, &a.AgentID, a.Wave, "")
	}
	if a.AppliedAt == nil || a.Health != "healthy" || a.LastEvent != "SUCCESS" {
		if a.HealthySince != nil {
			a.HealthySince, s.dirty[i] = nil, true
		}
		return
	}
	if a.HealthySince == nil {
		a.HealthySince, s.dirty[i] = &now, true
	}
	if !now.Before(a.HealthySince.Add(time.Duration(s.r.Policy.MinHealthySeconds) * time.Second)) {
		a.HealthyAt, s.dirty[i] = &now, true
		s.log(KindHealthy, &a.AgentID, a.Wave, "")
	}
}

// release starts waves and releases agents while the limits allow.
func (s *stepper) release() {
	waves := WaveCount(s.r.Policy)
	for {
		if s.step.CurrentWave < 0 {
			s.step.CurrentWave = 0
			s.log(KindWaveStarted, nil, 0, WaveName(s.r.Policy, 0))
		}
		w := s.step.CurrentWave
		var members []int
		unavailable, done := 0, 0
		for i, a := range s.agents {
			if a.Wave != w {
				continue
			}
			members = append(members, i)
			if a.Unavailable() {
				unavailable++
			}
			if a.Done() {
				done++
			}
		}
		if done == len(members) {
			if w+1 < waves {
				s.step.CurrentWave = w + 1
				s.log(KindWaveStarted, nil, w+1, WaveName(s.r.Policy, w+1))
				continue
			}
			s.setState(StateComplete, KindCompleted, "")
			return
		}
		room := s.r.Policy.MaxUnavailable.Of(len(members)) - unavailable
		for _, i := range members {
			if room <= 0 {
				break
			}
			if s.agents[i].ReleasedAt == nil {
				s.releaseAgent(i)
				room--
			}
		}
		return
	}
}

func (s *stepper) releaseAgent(i int) {
	a, now := &s.agents[i], s.now
	a.ReleasedAt, s.dirty[i] = &now, true
	s.step.Released = append(s.step.Released, a.AgentID)
	s.log(KindReleased, &a.AgentID, a.Wave, "")
}

// Promote releases every agent of the current wave that is still pending,
// whatever its health or max_unavailable, and starts the next wave (or
// completes the rollout); the rollout is progressing again.
func Promote(r Rollout, agents []Agent, now time.Time) Step {
	s := newStepper(r, agents, now)
	s.step.State = StateProgressing
	if s.step.CurrentWave < 0 {
		for i := range s.agents {
			s.dirty[i] = true
		}
		s.step.CurrentWave = 0
		s.log(KindWaveStarted, nil, 0, WaveName(r.Policy, 0))
	}
	w := s.step.CurrentWave
	s.log(KindPromoted, nil, w, WaveName(r.Policy, w))
	for i, a := range s.agents {
		if a.Wave == w && a.ReleasedAt == nil {
			s.releaseAgent(i)
		}
	}
	if w+1 < WaveCount(r.Policy) {
		s.step.CurrentWave = w + 1
		s.log(KindWaveStarted, nil, w+1, WaveName(r.Policy, w+1))
	} else {
		s.setState(StateComplete, KindCompleted, "promoted")
	}
	return s.finish()
}

// Control actions.
const (
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionPromote = "promote"
	ActionAbort   = "abort"
	// ActionRollback ends an unfinished rollout because a rollback object
	// replaces it (not a route of its own: POST /stacks/{id}/rollback).
	ActionRollback = "rollback"
)

// Control applies pause, resume or abort (promote is Promote). ok=false
// when the rollout's state does not allow the action.
func Control(r Rollout, action string, now time.Time) (Step, bool) {
	s := newStepper(r, nil, now)
	switch {
	case action == ActionPause && r.State == StateProgressing:
		s.setState(StatePaused, KindPaused, "")
	case action == ActionResume && (r.State == StatePaused || r.State == StateHalted):
		s.step.Reason = nil
		s.setState(StateProgressing, KindResumed, "")
	case action == ActionAbort && Unfinished(r.State):
		s.setState(StateAborted, KindAborted, "aborted")
	case action == ActionRollback && Unfinished(r.State):
		s.setState(StateRolledBack, KindRolledBack, "rolled back")
	case action == ActionPromote && Unfinished(r.State):
		return Step{}, true
	default:
		return Step{}, false
	}
	return s.finish(), true
}
