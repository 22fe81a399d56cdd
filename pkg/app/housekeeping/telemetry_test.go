package housekeeping_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry/telemetrytest"
)

// The telemetry sweep: rows past the window go, then the oldest rows of a
// stack over the cap; a stack within both keeps everything.
func TestSweepTelemetry(t *testing.T) {
	ctx := context.Background()
	m := telemetrytest.NewMemory()
	agent, old, flood, quiet := m.Agent(t), m.Stack(t), m.Stack(t), m.Stack(t)
	rows := func(stackID uuid.UUID, n int) []telemetry.LogRecord {
		var out []telemetry.LogRecord
		for range n {
			out = append(out, telemetrytest.Line(agent, stackID, "x"))
		}
		return out
	}
	if err := m.InsertTelemetry(ctx, rows(old, 3), []telemetry.EventRecord{telemetrytest.Event(agent, old, "r")}); err != nil {
		t.Fatal(err)
	}
	m.Age(t, old, 2*time.Hour)
	if err := m.InsertTelemetry(ctx, append(rows(flood, 25), rows(quiet, 4)...), nil); err != nil {
		t.Fatal(err)
	}
	h := housekeeping.NewService(housekeeping.Repos{Telemetry: m}, func() housekeeping.Retention {
		return housekeeping.Retention{Telemetry: time.Hour, TelemetryRowCap: 10}
	})
	res, err := h.SweepTelemetry(ctx)
	if err != nil || res.Expired != 4 || res.Capped != 15 {
		t.Fatalf("sweep %+v, %v; want 4 expired, 15 capped", res, err)
	}
	for stack, want := range map[uuid.UUID]int{old: 0, flood: 10, quiet: 4} {
		if l, e := m.Count(t, stack); l != want || e != 0 {
			t.Errorf("stack %x: %d logs %d events, want %d logs", stack, l, e, want)
		}
	}
}
