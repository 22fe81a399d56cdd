package rollout

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

func ip(n int) *int { return &n }

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Policy
		code string
	}{
		{"empty is all", Policy{}, ""},
		{"waves", Policy{Strategy: StrategyWaves, Waves: []Wave{{Percent: ip(10)}}}, ""},
		{"bad strategy", Policy{Strategy: "canary"}, "rollout_invalid_strategy"},
		{"bad on_failure", Policy{OnFailure: "panic"}, "rollout_invalid_on_failure"},
		{"max 0%", Policy{MaxUnavailable: MaxUnavailable{Count: 0, Percent: true}, Strategy: StrategyWaves, Waves: []Wave{{Percent: ip(1)}}}, "rollout_invalid_max_unavailable"},
		{"max 101%", Policy{MaxUnavailable: MaxUnavailable{Count: 101, Percent: true}}, "rollout_invalid_max_unavailable"},
		{"negative seconds", Policy{MinHealthySeconds: -1}, "rollout_invalid_seconds"},
		{"deadline too long", Policy{ProgressDeadlineSeconds: MaxSeconds + 1}, "rollout_invalid_seconds"},
		{"waves with all", Policy{Waves: []Wave{{Percent: ip(5)}}}, "rollout_waves_without_strategy"},
		{"no waves", Policy{Strategy: StrategyWaves}, "rollout_invalid_waves"},
		{"duplicate names", Policy{Strategy: StrategyWaves, Waves: []Wave{{Name: "a", Percent: ip(5)}, {Name: "a", Percent: ip(5)}}}, "rollout_invalid_waves"},
		{"both selector and percent", Policy{Strategy: StrategyWaves, Waves: []Wave{{Percent: ip(5), Selector: &Selector{Labels: []string{"x"}}}}}, "rollout_invalid_wave_selector"},
		{"neither", Policy{Strategy: StrategyWaves, Waves: []Wave{{Selector: &Selector{}}}}, "rollout_invalid_wave_selector"},
		{"percent 0", Policy{Strategy: StrategyWaves, Waves: []Wave{{Percent: ip(0)}}}, "rollout_invalid_wave_selector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.in
			err := p.Normalize()
			if got := domain.CodeOf(err); (err == nil) != (tc.code == "") || (err != nil && got != tc.code) {
				t.Fatalf("err %v (code %q), want code %q", err, got, tc.code)
			}
		})
	}
	p := Policy{Strategy: StrategyWaves, Waves: []Wave{{Percent: ip(5)}}}
	if err := p.Normalize(); err != nil || p.Waves[0].Name != "wave-1" || p.OnFailure != OnFailureHalt || p.MaxUnavailable.Count != 1 {
		t.Fatalf("defaults %+v %v", p, err)
	}
}

func TestMaxUnavailableJSON(t *testing.T) {
	for in, want := range map[string]MaxUnavailable{`3`: {Count: 3}, `"3"`: {Count: 3}, `"25%"`: {Count: 25, Percent: true}} {
		var m MaxUnavailable
		if err := json.Unmarshal([]byte(in), &m); err != nil || m != want {
			t.Fatalf("%s: %+v %v", in, m, err)
		}
		out, _ := json.Marshal(m)
		var back MaxUnavailable
		if err := json.Unmarshal(out, &back); err != nil || back != want {
			t.Fatalf("%s round trip: %s", in, out)
		}
	}
	var m MaxUnavailable
	if json.Unmarshal([]byte(`"x%"`), &m) == nil || json.Unmarshal([]byte(`true`), &m) == nil {
		t.Fatal("bad values accepted")
	}
	if (MaxUnavailable{Count: 25, Percent: true}).Of(3) != 1 || (MaxUnavailable{Count: 50, Percent: true}).Of(10) != 5 || (MaxUnavailable{Count: 4}).Of(2) != 4 {
		t.Fatal("Of")
	}
}

func ids(n int) []uuid.UUID {
	out := make([]uuid.UUID, n)
	for i := range out {
		out[i] = uuid.MustParse(fmt.Sprintf("00000000-0000-0000-0000-%012d", i+1))
	}
	return out
}

func TestAssign(t *testing.T) {
	a := ids(10)
	var cands []Candidate
	for i, id := range a {
		c := Candidate{ID: id, Annotations: map[string]string{}}
		if i%5 == 0 {
			c.Labels = []string{"canary"}
		}
		if i >= 8 {
			c.Annotations["region"] = "eu"
		}
		cands = append(cands, c)
	}
	// Reverse order: the split must not depend on the input order.
	for i, j := 0, len(cands)-1; i < j; i, j = i+1, j-1 {
		cands[i], cands[j] = cands[j], cands[i]
	}
	waves := []Wave{
		{Selector: &Selector{Labels: []string{"canary"}}},
		{Selector: &Selector{Annotations: map[string]string{"region": "eu"}}},
		{Percent: ip(50)},
	}
	got := Assign(waves, cands)
	want := map[int]int{0: 0, 5: 0, 8: 1, 9: 1, 1: 2, 2: 2, 3: 2, 4: 3, 6: 3, 7: 3}
	for i, w := range want {
		if got[a[i]] != w {
			t.Fatalf("agent %d in wave %d, want %d (%v)", i, got[a[i]], w, got)
		}
	}
}

func TestAdvance(t *testing.T) {
	a := ids(4)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{Strategy: StrategyWaves, MaxUnavailable: MaxUnavailable{Count: 1}, MinHealthySeconds: 10,
		ProgressDeadlineSeconds: 100, OnFailure: OnFailureHalt, Waves: []Wave{{Name: "one", Percent: ip(50)}}}
	r := Rollout{State: StateProgressing, CurrentWave: -1, Policy: p}
	agents := Assigned(p, []Candidate{{ID: a[0]}, {ID: a[1]}, {ID: a[2]}, {ID: a[3]}})
	st := Advance(r, agents, now)
	if st.CurrentWave != 0 || len(st.Released) != 1 || st.Released[0] != a[0] || len(st.Agents) != 4 {
		t.Fatalf("start: %+v", st)
	}
	// a[0] applied and healthy: counted only after min_healthy_seconds.
	apply := func(st Step, id uuid.UUID, event, health string) []Agent {
		out := make([]Agent, len(st.Agents))
		copy(out, st.Agents)
		for i := range out {
			if out[i].AgentID == id {
				out[i].LastEvent, out[i].Health = event, health
			}
		}
		return out
	}
	r.CurrentWave = 0
	agents = apply(st, a[0], "SUCCESS", "healthy")
	st2 := Advance(r, agents, now.Add(time.Second))
	if len(st2.Released) != 0 {
		t.Fatalf("released before healthy for min_healthy_seconds: %+v", st2)
	}
	merged := merge(agents, st2.Agents)
	st3 := Advance(r, merged, now.Add(12*time.Second))
	if len(st3.Released) != 1 || st3.Released[0] != a[1] {
		t.Fatalf("after healthy: %+v", st3.Transitions)
	}
	// a[1] fails: halt.
	merged = merge(merged, st3.Agents)
	for i := range merged {
		if merged[i].AgentID == a[1] {
			merged[i].LastEvent, merged[i].EventReason = "FAILURE", "boom"
		}
	}
	st4 := Advance(r, merged, now.Add(13*time.Second))
	if st4.State != StateHalted || st4.Reason == nil {
		t.Fatalf("failure did not halt: %+v", st4)
	}
	// The deadline fails an agent that never became healthy.
	r2 := r
	r2.Policy.OnFailure = OnFailureContinue
	fresh := merge(merged, nil)
	for i := range fresh {
		if fresh[i].AgentID == a[1] {
			fresh[i].LastEvent, fresh[i].Health = "SUCCESS", "degraded"
		}
	}
	st5 := Advance(r2, fresh, now.Add(1000*time.Second))
	if st5.State != StateProgressing || st5.CurrentWave != 1 || len(st5.Released) != 1 {
		t.Fatalf("deadline under continue: %+v", st5)
	}
}

func merge(base, changed []Agent) []Agent {
	out := make([]Agent, len(base))
	copy(out, base)
	for _, c := range changed {
		for i := range out {
			if out[i].AgentID == c.AgentID {
				le, er, h := out[i].LastEvent, out[i].EventReason, out[i].Health
				out[i] = c
				out[i].LastEvent, out[i].EventReason, out[i].Health = le, er, h
			}
		}
	}
	return out
}

func TestControl(t *testing.T) {
	for _, tc := range []struct {
		state, action, want string
		ok                  bool
	}{
		{StateProgressing, ActionPause, StatePaused, true},
		{StatePaused, ActionPause, "", false},
		{StatePaused, ActionResume, StateProgressing, true},
		{StateHalted, ActionResume, StateProgressing, true},
		{StateComplete, ActionResume, "", false},
		{StateHalted, ActionAbort, StateAborted, true},
		{StateAborted, ActionAbort, "", false},
		{StateProgressing, ActionRollback, StateRolledBack, true},
		{StateComplete, ActionPromote, "", false},
	} {
		st, ok := Control(Rollout{State: tc.state}, tc.action, time.Now())
		if ok != tc.ok || (ok && st.State != tc.want) {
			t.Fatalf("%s on %s: %v %s", tc.action, tc.state, ok, st.State)
		}
	}
}
