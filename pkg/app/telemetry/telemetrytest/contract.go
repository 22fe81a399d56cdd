package telemetrytest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// Fixtures builds and inspects the rows the telemetry store works on.
type Fixtures interface {
	Stack(t *testing.T) uuid.UUID
	Agent(t *testing.T) uuid.UUID
	// Associate associates the agent with the stack (an explicit target).
	Associate(t *testing.T, agentID, stackID uuid.UUID)
	DeleteStack(t *testing.T, stackID uuid.UUID)
	// Age moves the created_at of the stack's rows back by d.
	Age(t *testing.T, stackID uuid.UUID, d time.Duration)
	Count(t *testing.T, stackID uuid.UUID) (logs, events int)
}

// Subject is one implementation of the telemetry store.
type Subject struct {
	Store    telemetry.Store
	Purger   housekeeping.TelemetryPurger
	Fixtures Fixtures
}

// Line is a log row of the stack for agent, with text line.
func Line(agentID, stackID uuid.UUID, line string) telemetry.LogRecord {
	return telemetry.LogRecord{PodLogLine: domaintelemetry.PodLogLine{AgentID: agentID, StackID: stackID, Namespace: "default",
		Pod: "p", Container: "c", TS: time.Now().UTC().Truncate(time.Microsecond), Line: line}, Kind: telemetry.KindLine}
}

// Event is a Kubernetes event row of the stack for agent.
func Event(agentID, stackID uuid.UUID, reason string) telemetry.EventRecord {
	src := "scheduler"
	return telemetry.EventRecord{K8sEvent: domaintelemetry.K8sEvent{AgentID: agentID, StackID: stackID,
		ObservedAt: time.Now().UTC().Truncate(time.Microsecond), Reason: reason, Message: "m", EventType: "Warning", Source: &src,
		InvolvedObject: domaintelemetry.ObjectRef{APIVersion: "v1", Kind: "Pod", Namespace: "default", Name: "p", UID: "u"}}}
}

// RunTelemetryContract checks what every implementation stores, lists and
// deletes; newSubject returns a fresh, empty one.
func RunTelemetryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	long := time.Now().Add(-24 * time.Hour)

	t.Run("association: only live associated stacks, in one answer", func(t *testing.T) {
		sub := newSubject(t)
		f := sub.Fixtures
		agent, other := f.Agent(t), f.Agent(t)
		mine, theirs, gone := f.Stack(t), f.Stack(t), f.Stack(t)
		f.Associate(t, agent, mine)
		f.Associate(t, agent, gone)
		f.Associate(t, other, theirs)
		f.DeleteStack(t, gone)
		got, err := sub.Store.AssociatedStacks(ctx, agent, []uuid.UUID{mine, theirs, gone, uuid.New(), mine})
		if err != nil || len(got) != 1 || got[0] != mine {
			t.Fatalf("associated %v, %v; want only %v", got, err, mine)
		}
	})

	t.Run("insert and list: newest first, since, limit, oldest, gaps kept", func(t *testing.T) {
		sub := newSubject(t)
		f := sub.Fixtures
		agent, st, other := f.Agent(t), f.Stack(t), f.Stack(t)
		n, reason := int64(7), domaintelemetry.GapRateLimit
		gap := Line(agent, st, telemetry.GapLine(n, reason))
		gap.Kind, gap.DroppedCount, gap.Reason = telemetry.KindGap, &n, &reason
		if err := sub.Store.InsertTelemetry(ctx, []telemetry.LogRecord{Line(agent, st, "one"), Line(agent, other, "x")},
			[]telemetry.EventRecord{Event(agent, st, "Old")}); err != nil {
			t.Fatal(err)
		}
		f.Age(t, st, time.Hour)
		before := time.Now().Add(-time.Minute)
		if err := sub.Store.InsertTelemetry(ctx, []telemetry.LogRecord{Line(agent, st, "two"), gap},
			[]telemetry.EventRecord{Event(agent, st, "New")}); err != nil {
			t.Fatal(err)
		}
		lines, err := sub.Store.ListLogs(ctx, st, long, 10)
		if err != nil || len(lines) != 3 {
			t.Fatalf("lines %+v, %v", lines, err)
		}
		if lines[0].Kind != telemetry.KindGap || *lines[0].DroppedCount != 7 || *lines[0].Reason != reason ||
			lines[1].Line != "two" || lines[2].Line != "one" {
			t.Fatalf("order or gap wrong: %+v", lines)
		}
		if lines[1].ID == uuid.Nil || lines[1].CreatedAt.IsZero() || lines[1].AgentID != agent || lines[1].Container != "c" {
			t.Fatalf("row %+v", lines[1])
		}
		if lines, _ := sub.Store.ListLogs(ctx, st, before, 10); len(lines) != 2 {
			t.Fatalf("since: %d lines, want the 2 recent", len(lines))
		}
		if lines, _ := sub.Store.ListLogs(ctx, st, long, 1); len(lines) != 1 || lines[0].Kind != telemetry.KindGap {
			t.Fatalf("limit 1: %+v", lines)
		}
		events, err := sub.Store.ListEvents(ctx, st, long, 10)
		if err != nil || len(events) != 2 || events[0].Reason != "New" || events[1].Reason != "Old" ||
			events[0].InvolvedObject.Kind != "Pod" || events[0].Source == nil || *events[0].Source != "scheduler" {
			t.Fatalf("events %+v, %v", events, err)
		}
		oldest, err := sub.Store.OldestLog(ctx, st, long)
		if err != nil || oldest == nil || !oldest.Before(before) {
			t.Fatalf("oldest log %v, %v", oldest, err)
		}
		if oldest, _ := sub.Store.OldestEvent(ctx, st, before); oldest == nil || oldest.Before(before) {
			t.Fatalf("oldest event since %v: %v", before, oldest)
		}
		if oldest, _ := sub.Store.OldestLog(ctx, f.Stack(t), long); oldest != nil {
			t.Fatalf("empty stack: oldest %v", oldest)
		}
	})

	t.Run("purge: rows created before the cutoff, in batches", func(t *testing.T) {
		sub := newSubject(t)
		f := sub.Fixtures
		agent, old, fresh := f.Agent(t), f.Stack(t), f.Stack(t)
		var logs []telemetry.LogRecord
		for i := range 5 {
			logs = append(logs, Line(agent, old, string(rune('a'+i))))
		}
		if err := sub.Store.InsertTelemetry(ctx, logs, []telemetry.EventRecord{Event(agent, old, "r")}); err != nil {
			t.Fatal(err)
		}
		f.Age(t, old, 7*time.Hour)
		if err := sub.Store.InsertTelemetry(ctx, []telemetry.LogRecord{Line(agent, fresh, "keep")},
			[]telemetry.EventRecord{Event(agent, fresh, "keep")}); err != nil {
			t.Fatal(err)
		}
		cutoff := time.Now().Add(-6 * time.Hour)
		total := 0
		for range 5 {
			n, err := sub.Purger.PurgeTelemetry(ctx, cutoff, 2)
			if err != nil || n > 4 {
				t.Fatalf("purge %d, %v (batch 2 per table)", n, err)
			}
			total += n
		}
		if total != 6 {
			t.Fatalf("purged %d, want 6", total)
		}
		if l, e := f.Count(t, old); l+e != 0 {
			t.Fatalf("old stack keeps %d+%d rows", l, e)
		}
		if l, e := f.Count(t, fresh); l != 1 || e != 1 {
			t.Fatalf("fresh stack has %d+%d rows, want 1+1", l, e)
		}
	})

	t.Run("cap: the oldest rows beyond the per-stack cap go", func(t *testing.T) {
		sub := newSubject(t)
		f := sub.Fixtures
		agent, big, small := f.Agent(t), f.Stack(t), f.Stack(t)
		for i := range 6 {
			if err := sub.Store.InsertTelemetry(ctx, []telemetry.LogRecord{Line(agent, big, string(rune('a'+i)))}, nil); err != nil {
				t.Fatal(err)
			}
			f.Age(t, big, time.Minute) // each earlier batch ends up older
		}
		if err := sub.Store.InsertTelemetry(ctx, []telemetry.LogRecord{Line(agent, small, "s"), Line(agent, small, "t")},
			[]telemetry.EventRecord{Event(agent, small, "e")}); err != nil {
			t.Fatal(err)
		}
		n, err := sub.Purger.CapTelemetry(ctx, 3, 2)
		if err != nil || n != 2 {
			t.Fatalf("first cap pass %d, %v; want 2 (batch)", n, err)
		}
		if n, _ := sub.Purger.CapTelemetry(ctx, 3, 2); n != 1 {
			t.Fatalf("second cap pass %d, want 1", n)
		}
		if n, _ := sub.Purger.CapTelemetry(ctx, 3, 2); n != 0 {
			t.Fatalf("third cap pass %d, want 0", n)
		}
		lines, _ := sub.Store.ListLogs(ctx, big, long, 10)
		var got []string
		for _, l := range lines {
			got = append(got, l.Line)
		}
		if !slices.Equal(got, []string{"f", "e", "d"}) {
			t.Fatalf("kept %v, want the 3 newest", got)
		}
		if l, e := f.Count(t, small); l != 2 || e != 1 {
			t.Fatalf("small stack %d+%d", l, e)
		}
	})
}
