package tasks

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

func (e *env) schedule(name, expr, policy string, agentID uuid.UUID) workorder.Schedule {
	e.t.Helper()
	sc, err := e.apiSched.CreateSchedule(e.ctx, identity.Admin, workorders.ScheduleInput{
		Name: name, CronExpression: expr, ConcurrencyPolicy: policy,
		Template:  workorder.Template{WorkType: "custom", YAMLContent: "kind: Job\n", MaxRetries: 1, BackoffSeconds: 1, ClaimTimeoutSeconds: 60},
		Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{agentID}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return sc
}

// orders returns the schedule's orders, active and finished, by window.
func (e *env) scheduleOrders(id uuid.UUID) []time.Time {
	e.t.Helper()
	var out []time.Time
	if err := e.store.DB().SelectContext(e.ctx, &out, `SELECT scheduled_at FROM (
		SELECT scheduled_at FROM work_orders WHERE schedule_id = $1
		UNION ALL SELECT scheduled_at FROM work_order_log WHERE schedule_id = $1) x ORDER BY scheduled_at`, id); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) runs(id uuid.UUID) []workorder.Run {
	e.t.Helper()
	rs, err := e.apiSched.Runs(e.ctx, identity.Admin, id, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

// TestScheduleTwoReplicasOneOrderPerFire: a per-second schedule under a
// hand-moved clock, evaluated by two replicas on one queue: each window
// yields exactly one work order, stamped with its window.
func TestScheduleTwoReplicasOneOrderPerFire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("sched-a")
	sc := e.schedule("every-second", "*/1 * * * * *", workorder.PolicyAllow, a)
	r1, r2 := e.startReplica(), e.startReplica()
	e.waitTicks(2, r1, r2)
	if got := e.scheduleOrders(sc.ID); len(got) != 0 {
		t.Fatalf("fired before the clock moved: %v", got)
	}
	const fires = 5
	for i := 1; i <= fires; i++ {
		e.clock.Advance(time.Second)
		e.eventually(10*time.Second, "fire", func() bool { return len(e.scheduleOrders(sc.ID)) >= i })
	}
	// Let both replicas evaluate a few more times: nothing more appears.
	e.waitTicks(4, r1, r2)
	got := e.scheduleOrders(sc.ID)
	if len(got) != fires {
		t.Fatalf("%d orders for %d fires: %v", len(got), fires, got)
	}
	first := sc.AnchorAt.Truncate(time.Second).Add(time.Second)
	for i, at := range got {
		if want := first.Add(time.Duration(i) * time.Second); !at.Equal(want) {
			t.Errorf("order %d for window %v, want %v", i, at, want)
		}
	}
	runs := e.runs(sc.ID)
	if len(runs) != fires {
		t.Fatalf("%d runs, want %d", len(runs), fires)
	}
	for _, r := range runs {
		if r.Status != workorder.RunCreated || r.WorkOrderID == nil {
			t.Fatalf("run %+v", r)
		}
	}
	// The orders are ordinary work orders: claimable by the target.
	pending, err := e.api.Pending(e.ctx, identity.Agent(a), a, "")
	if err != nil || len(pending) != fires {
		t.Fatalf("pending %d %v", len(pending), err)
	}
	if n := e.count(`SELECT count(*) FROM audit_logs WHERE action = 'workorder.created' AND actor_type = 'system'`); n != fires {
		t.Fatalf("%d system workorder.created audit entries, want %d", n, fires)
	}
	if sc2, _ := e.apiSched.GetSchedule(e.ctx, identity.Admin, sc.ID); sc2.LastScheduledAt == nil || !sc2.LastScheduledAt.Equal(got[fires-1]) {
		t.Fatalf("last_scheduled_at %v, want %v", sc2.LastScheduledAt, got[fires-1])
	}
}

// TestScheduleDowntimeFiresOnce: windows missed while no scheduler ran
// collapse into one fire, for the latest window (seed 002).
func TestScheduleDowntimeFiresOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("downtime-a")
	sc := e.schedule("every-minute", "* * * * *", workorder.PolicyAllow, a)
	// Ten and a half minutes pass with no scheduler running.
	e.clock.Advance(10*time.Minute + 30*time.Second)
	r := e.startReplica()
	e.eventually(10*time.Second, "the catch-up fire", func() bool { return len(e.scheduleOrders(sc.ID)) >= 1 })
	e.waitTicks(3, r)
	got := e.scheduleOrders(sc.ID)
	if len(got) != 1 {
		t.Fatalf("%d orders after downtime, want exactly 1: %v", len(got), got)
	}
	if want := e.clock.Now().Truncate(time.Minute); !got[0].Equal(want) {
		t.Fatalf("fired for %v, want the latest window %v", got[0], want)
	}
	// Normal service resumes at the next minute.
	e.clock.Advance(time.Minute)
	e.eventually(10*time.Second, "the next fire", func() bool { return len(e.scheduleOrders(sc.ID)) == 2 })
}

// TestScheduleConcurrencyPolicies: Forbid skips while the previous order is
// open and fires again once it is finished; Replace cancels it.
func TestScheduleConcurrencyPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("policy-a")
	forbid := e.schedule("forbid", "*/1 * * * * *", workorder.PolicyForbid, a)
	replace := e.schedule("replace", "*/1 * * * * *", workorder.PolicyReplace, a)
	e.startReplica()

	e.clock.Advance(time.Second)
	e.eventually(10*time.Second, "first fires", func() bool {
		return len(e.scheduleOrders(forbid.ID)) == 1 && len(e.scheduleOrders(replace.ID)) == 1
	})
	firstReplace := activeOrders(e, replace.ID)

	e.clock.Advance(time.Second)
	e.eventually(10*time.Second, "second windows", func() bool { return len(e.runs(forbid.ID)) == 2 && len(e.runs(replace.ID)) == 2 })
	fr := e.runs(forbid.ID)[0] // newest first
	if fr.Status != workorder.RunSkipped || fr.WorkOrderID != nil || fr.Message == nil || !strings.Contains(*fr.Message, "Forbid") {
		t.Fatalf("Forbid's second window: %+v", fr)
	}
	if n := len(e.scheduleOrders(forbid.ID)); n != 1 {
		t.Fatalf("Forbid made %d orders while the first was open", n)
	}
	now := activeOrders(e, replace.ID)
	if len(now) != 1 || now[0] == firstReplace[0] {
		t.Fatalf("Replace: open orders %v, first was %v", now, firstReplace)
	}
	if n := e.count(`SELECT count(*) FROM outbox_events WHERE event_type = 'workorder.cancelled' AND payload->'data'->>'work_order_id' = $1`,
		firstReplace[0].String()); n != 1 {
		t.Fatalf("the replaced order was not cancelled (events: %d)", n)
	}

	// Finish Forbid's order; the next window fires again.
	open := activeOrders(e, forbid.ID)
	e.claim(open[0], a)
	if _, err := e.api.Complete(e.ctx, identity.Agent(a), open[0], workorders.CompleteInput{Success: true}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	e.eventually(10*time.Second, "Forbid fires again", func() bool { return len(e.scheduleOrders(forbid.ID)) == 2 })
}

func activeOrders(e *env, scheduleID uuid.UUID) []uuid.UUID {
	e.t.Helper()
	var ids []uuid.UUID
	if err := e.store.DB().SelectContext(e.ctx, &ids, `SELECT id FROM work_orders WHERE schedule_id = $1 ORDER BY created_at`, scheduleID); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

// TestDisabledAndInvalidSchedulesAreSkipped: neither fires; the invalid one
// is logged with its reason (once, not every tick); re-enabling does not
// fire the windows that passed while disabled.
func TestDisabledAndInvalidSchedulesAreSkipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("skip-a")
	off := e.schedule("off", "*/1 * * * * *", workorder.PolicyAllow, a)
	if _, err := e.apiSched.SetEnabled(e.ctx, identity.Admin, off.ID, false); err != nil {
		t.Fatal(err)
	}
	bad := e.schedule("bad", "*/1 * * * * *", workorder.PolicyAllow, a)
	// Only a hand edit of the table (or a zone removed from tzdata) gets an
	// invalid expression past the API's validation.
	if _, err := e.store.DB().ExecContext(e.ctx, `UPDATE work_order_schedules SET cron_expression = 'every blue moon' WHERE id = $1`, bad.ID); err != nil {
		t.Fatal(err)
	}
	r := e.startReplica()
	for range 3 {
		e.clock.Advance(time.Second)
		e.waitTicks(2, r)
	}
	if n := len(e.scheduleOrders(off.ID)) + len(e.scheduleOrders(bad.ID)); n != 0 {
		t.Fatalf("%d orders from disabled/invalid schedules", n)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, "reason=\"invalid cron expression"); n != 1 {
		t.Fatalf("invalid schedule logged %d times, want once:\n%s", n, tail(logs, 20))
	}
	if !strings.Contains(logs, "schedule_id="+bad.ID.String()) || !strings.Contains(logs, "reason=disabled") {
		t.Fatalf("skip reasons not logged:\n%s", tail(logs, 20))
	}
	// Re-enabled: the windows missed while off do not fire; the next does.
	if _, err := e.apiSched.SetEnabled(e.ctx, identity.Admin, off.ID, true); err != nil {
		t.Fatal(err)
	}
	e.waitTicks(2, r)
	if n := len(e.scheduleOrders(off.ID)); n != 0 {
		t.Fatalf("enabling fired %d windows from the disabled period", n)
	}
	e.clock.Advance(time.Second)
	e.eventually(10*time.Second, "fire after enabling", func() bool { return len(e.scheduleOrders(off.ID)) == 1 })
}
