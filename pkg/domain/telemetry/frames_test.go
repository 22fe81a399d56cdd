package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestValidate(t *testing.T) {
	stack, t0 := uuid.New(), time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	line := PodLogLine{StackID: stack, Namespace: "ns", Pod: "p", Container: "c", TS: t0}
	event := K8sEvent{StackID: stack, ObservedAt: t0, Reason: "BackOff", EventType: "Warning",
		InvolvedObject: ObjectRef{Kind: "Pod", Name: "p"}}
	gap := LogGap{StackID: stack, SinceTS: t0, DroppedCount: 3, Reason: GapRateLimit}
	for _, tc := range []struct {
		name string
		body interface{ Validate() error }
		want string // "" when valid
	}{
		{"line", line, ""},
		{"line without agent_id or text", PodLogLine{StackID: stack, Namespace: "ns", Pod: "p", Container: "c", TS: t0}, ""},
		{"empty line", PodLogLine{}, "missing namespace, pod, container, ts, stack_id"},
		{"event", event, ""},
		{"empty event", K8sEvent{}, "missing observed_at, reason, event_type, involved_object.kind, involved_object.name, stack_id"},
		{"gap", gap, ""},
		{"gap without container", LogGap{StackID: stack, SinceTS: t0, Reason: GapBufferFull}, ""},
		{"gap of an unknown reason", LogGap{Reason: "tired"}, `reason "tired" is not one of rate_limit, buffer_full, disconnected`},
		{"negative gap", LogGap{Reason: GapDisconnected, DroppedCount: -1}, "dropped_count must not be negative"},
		{"gap without since_ts or stack", LogGap{Reason: GapDisconnected}, "missing since_ts, stack_id"},
	} {
		err := tc.body.Validate()
		if got := ""; err != nil {
			got = err.Error()
			if got != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%s: valid, want %q", tc.name, tc.want)
		}
	}
}

func TestTruncateLine(t *testing.T) {
	if s := strings.Repeat("x", MaxLineBytes); TruncateLine(s) != s {
		t.Fatal("a line of MaxLineBytes was cut")
	}
	if got := TruncateLine(strings.Repeat("x", MaxLineBytes+1)); len(got) != MaxLineBytes {
		t.Fatalf("kept %d bytes, want %d", len(got), MaxLineBytes)
	}
	// A line cut inside a multi-byte rune stays valid UTF-8.
	odd := "a" + strings.Repeat("é", MaxLineBytes)
	if got := TruncateLine(odd); len(got) != MaxLineBytes-1 || !strings.HasPrefix(odd, got) {
		t.Fatalf("kept %d bytes, want %d", len(got), MaxLineBytes-1)
	}
}
