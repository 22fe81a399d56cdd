// Package rollout holds health-gated progressive rollouts: a stack's
// rollout policy (waves, max_unavailable, health and deadline rules), the
// assignment of agents to waves, and the step that advances one rollout
// from what its agents reported (docs/rollouts.md).
package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Strategies.
const (
	StrategyAll   = "all"
	StrategyWaves = "waves"
)

// What happens when a released agent fails (docs/rollouts.md#failure).
const (
	OnFailureHalt     = "halt"
	OnFailureRollback = "rollback"
	OnFailureContinue = "continue"
)

// Limits of a policy.
const (
	MaxWaves       = 20
	MaxWaveLabels  = 20
	MaxSeconds     = 7 * 24 * 3600
	DefaultMinSecs = 0
)

// Selector picks a wave's agents among those not taken by earlier waves:
// every label and every annotation must match. Percent instead takes that
// share (rounded up) of the remaining agents, ordered by agent id.
type Selector struct {
	Labels      []string          `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Wave is one step of a rollout.
type Wave struct {
	Name     string    `json:"name,omitempty"`
	Selector *Selector `json:"selector,omitempty"`
	Percent  *int      `json:"percent,omitempty"`
}

// MaxUnavailable is a count or a percentage of the wave's agents, written
// as a JSON number or a string "N%".
type MaxUnavailable struct {
	Count   int
	Percent bool
}

// MarshalJSON writes a count as a number and a percentage as "N%".
func (m MaxUnavailable) MarshalJSON() ([]byte, error) {
	if m.Percent {
		return json.Marshal(strconv.Itoa(m.Count) + "%")
	}
	return json.Marshal(m.Count)
}

// UnmarshalJSON reads a number, "N" or "N%".
func (m *MaxUnavailable) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*m = MaxUnavailable{Count: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("max_unavailable must be a count or a string \"N%%\"")
	}
	pct := strings.HasSuffix(s, "%")
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil {
		return fmt.Errorf("max_unavailable %q is neither a count nor \"N%%\"", s)
	}
	*m = MaxUnavailable{Count: n, Percent: pct}
	return nil
}

// Of resolves the limit for a wave of size agents: a percentage rounds
// down but never below one, so a wave always makes progress.
func (m MaxUnavailable) Of(size int) int {
	n := m.Count
	if m.Percent {
		n = int(math.Floor(float64(size) * float64(m.Count) / 100))
	}
	return max(n, 1)
}

// Policy is a stack's rollout policy (GET/PUT /stacks/{id}/rollout-policy).
type Policy struct {
	Strategy                string         `json:"strategy"`
	Waves                   []Wave         `json:"waves"`
	MaxUnavailable          MaxUnavailable `json:"max_unavailable"`
	MinHealthySeconds       int            `json:"min_healthy_seconds"`
	ProgressDeadlineSeconds int            `json:"progress_deadline_seconds"`
	OnFailure               string         `json:"on_failure"`
}

// Default is the policy of a stack that never set one: today's behaviour,
// every targeted agent at once.
func Default() Policy {
	return Policy{Strategy: StrategyAll, Waves: []Wave{}, MaxUnavailable: MaxUnavailable{Count: 1},
		OnFailure: OnFailureHalt}
}

func invalid(code, msg string) error { return domain.UnprocessableCode(code, msg) }

// Normalize fills defaults (strategy all, on_failure halt, max_unavailable
// 1, wave names "wave-N") and validates; a violation is 422 with a
// rollout_* code (docs/error-codes.md).
func (p *Policy) Normalize() error {
	if p.Strategy == "" {
		p.Strategy = StrategyAll
	}
	if p.OnFailure == "" {
		p.OnFailure = OnFailureHalt
	}
	if p.Waves == nil {
		p.Waves = []Wave{}
	}
	if p.MaxUnavailable == (MaxUnavailable{}) {
		p.MaxUnavailable = MaxUnavailable{Count: 1}
	}
	switch p.Strategy {
	case StrategyAll, StrategyWaves:
	default:
		return invalid("rollout_invalid_strategy", "strategy must be \"all\" or \"waves\"")
	}
	switch p.OnFailure {
	case OnFailureHalt, OnFailureRollback, OnFailureContinue:
	default:
		return invalid("rollout_invalid_on_failure", "on_failure must be \"halt\", \"rollback\" or \"continue\"")
	}
	mu := p.MaxUnavailable
	if mu.Count < 1 || (mu.Percent && mu.Count > 100) {
		return invalid("rollout_invalid_max_unavailable", "max_unavailable must be a count >= 1 or a percentage from 1% to 100%")
	}
	if p.MinHealthySeconds < 0 || p.MinHealthySeconds > MaxSeconds {
		return invalid("rollout_invalid_seconds", fmt.Sprintf("min_healthy_seconds must be between 0 and %d", MaxSeconds))
	}
	if p.ProgressDeadlineSeconds < 0 || p.ProgressDeadlineSeconds > MaxSeconds {
		return invalid("rollout_invalid_seconds", fmt.Sprintf("progress_deadline_seconds must be between 0 (none) and %d", MaxSeconds))
	}
	if p.Strategy == StrategyAll {
		if len(p.Waves) > 0 {
			return invalid("rollout_waves_without_strategy", "waves need strategy \"waves\"")
		}
		return nil
	}
	if len(p.Waves) == 0 || len(p.Waves) > MaxWaves {
		return invalid("rollout_invalid_waves", fmt.Sprintf("strategy \"waves\" needs 1 to %d waves", MaxWaves))
	}
	names := map[string]bool{}
	for i := range p.Waves {
		w := &p.Waves[i]
		if w.Name == "" {
			w.Name = fmt.Sprintf("wave-%d", i+1)
		}
		if len(w.Name) > 64 || names[w.Name] {
			return invalid("rollout_invalid_waves", fmt.Sprintf("wave %d: names must be unique and at most 64 characters", i+1))
		}
		names[w.Name] = true
		if err := w.validate(i); err != nil {
			return err
		}
	}
	return nil
}

func (w Wave) validate(i int) error {
	hasSel := w.Selector != nil && (len(w.Selector.Labels) > 0 || len(w.Selector.Annotations) > 0)
	switch {
	case hasSel == (w.Percent != nil):
		return invalid("rollout_invalid_wave_selector", fmt.Sprintf("wave %d (%s): give exactly one of selector (labels/annotations) or percent", i+1, w.Name))
	case w.Percent != nil && (*w.Percent < 1 || *w.Percent > 100):
		return invalid("rollout_invalid_wave_selector", fmt.Sprintf("wave %d (%s): percent must be between 1 and 100", i+1, w.Name))
	case hasSel && len(w.Selector.Labels)+len(w.Selector.Annotations) > MaxWaveLabels:
		return invalid("rollout_invalid_wave_selector", fmt.Sprintf("wave %d (%s): at most %d labels and annotations", i+1, w.Name, MaxWaveLabels))
	}
	return nil
}
