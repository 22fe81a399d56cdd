package overview

import (
	"testing"
	"time"
)

func TestAgentRowState(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fresh, old := now.Add(-time.Minute), now.Add(-time.Hour)
	cases := []struct {
		name string
		row  AgentRow
		want string
	}{
		{"inactive wins", AgentRow{Status: "INACTIVE", LastHeartbeat: &fresh, Failing: 1}, RowInactive},
		{"stale before failing", AgentRow{Status: "ACTIVE", LastHeartbeat: &old, Objects: 1, Failing: 1}, RowStale},
		{"failing", AgentRow{Status: "ACTIVE", LastHeartbeat: &fresh, Objects: 2, Applied: 1, Failing: 1}, RowFailing},
		{"never seen", AgentRow{Status: "ACTIVE"}, RowPending},
		{"not yet applied", AgentRow{Status: "ACTIVE", LastHeartbeat: &fresh, Objects: 2, Applied: 1}, RowPending},
		{"all applied", AgentRow{Status: "ACTIVE", LastHeartbeat: &fresh, Objects: 2, Applied: 2}, RowHealthy},
		{"nothing to apply", AgentRow{Status: "ACTIVE", LastHeartbeat: &fresh}, RowHealthy},
		{"status case-insensitive", AgentRow{Status: "active", LastHeartbeat: &fresh}, RowHealthy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.row.State(now, 5*time.Minute); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
