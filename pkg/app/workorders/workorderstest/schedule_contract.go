package workorderstest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// ScheduleSubject is one implementation of the schedule ports, with the
// order repository over the same data.
type ScheduleSubject struct {
	Schedules workorders.ScheduleRepository
	Runs      workorders.RunRepository
	Orders    workorders.OrderRepository
}

func schedule(name string) workorder.Schedule {
	return workorder.Schedule{Name: name, CronExpression: "*/5 * * * *", TimeZone: "UTC", Enabled: true,
		ConcurrencyPolicy: workorder.PolicyForbid, Template: workorder.Template{WorkType: "w", YAMLContent: "kind: Job\n",
			MaxRetries: 1, BackoffSeconds: 60, ClaimTimeoutSeconds: 60},
		Targeting: workorder.Targeting{Labels: []string{"b", "a"}}, AnchorAt: time.Now().UTC().Truncate(time.Second)}
}

// RunScheduleContract checks the rules every implementation of the
// schedule ports keeps; newSubject returns a fresh, empty one.
func RunScheduleContract(t *testing.T, newSubject func(t *testing.T) ScheduleSubject) {
	ctx := context.Background()

	t.Run("create, get, list by name, unique names", func(t *testing.T) {
		sub := newSubject(t)
		b, a := schedule("b"), schedule("a")
		for _, sc := range []*workorder.Schedule{&b, &a} {
			if err := sub.Schedules.CreateSchedule(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		if b.ID == uuid.Nil || b.CreatedAt.IsZero() || b.LastScheduledAt != nil {
			t.Fatalf("created %+v", b)
		}
		got, err := sub.Schedules.GetSchedule(ctx, b.ID)
		if err != nil || got.Name != "b" || got.CronExpression != "*/5 * * * *" || got.WorkType != "w" ||
			!got.AnchorAt.Equal(b.AnchorAt) || len(got.Targeting.Labels) != 2 || got.Targeting.Labels[0] != "b" {
			t.Fatalf("get %+v, %v", got, err)
		}
		all, _ := sub.Schedules.ListSchedules(ctx)
		if len(all) != 2 || all[0].ID != a.ID {
			t.Fatalf("list %+v", all)
		}
		dup := schedule("a")
		is(t, sub.Schedules.CreateSchedule(ctx, &dup), domain.ErrConflict)
		bad := schedule("bad")
		bad.ConcurrencyPolicy = "Sometimes"
		is(t, sub.Schedules.CreateSchedule(ctx, &bad), domain.ErrInvalid)
		_, err = sub.Schedules.GetSchedule(ctx, uuid.New())
		is(t, err, domain.ErrNotFound)
		_, err = sub.Schedules.LockSchedule(ctx, uuid.New())
		is(t, err, domain.ErrNotFound)
	})

	t.Run("save writes every field back; names stay unique", func(t *testing.T) {
		sub := newSubject(t)
		a, b := schedule("a"), schedule("b")
		_ = sub.Schedules.CreateSchedule(ctx, &a)
		_ = sub.Schedules.CreateSchedule(ctx, &b)
		a.Name, a.Enabled, a.CronExpression, a.YAMLContent = "renamed", false, "@hourly", "kind: Pod\n"
		if err := sub.Schedules.SaveSchedule(ctx, &a); err != nil {
			t.Fatal(err)
		}
		got, _ := sub.Schedules.GetSchedule(ctx, a.ID)
		if got.Name != "renamed" || got.Enabled || got.CronExpression != "@hourly" || got.YAMLContent != "kind: Pod\n" {
			t.Fatalf("saved %+v", got)
		}
		got.Name = "b"
		is(t, sub.Schedules.SaveSchedule(ctx, &got), domain.ErrConflict)
	})

	t.Run("runs: one per window, newest first; last_scheduled_at only moves forward", func(t *testing.T) {
		sub := newSubject(t)
		sc := schedule("r")
		_ = sub.Schedules.CreateSchedule(ctx, &sc)
		w1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		w2 := w1.Add(5 * time.Minute)
		for _, at := range []time.Time{w1, w2} {
			r := workorder.Run{ScheduleID: sc.ID, ScheduledAt: at, Status: workorder.RunSkipped}
			if ok, err := sub.Runs.InsertScheduleRun(ctx, &r); err != nil || !ok || r.ID == uuid.Nil {
				t.Fatalf("insert %v: %+v %v %v", at, r, ok, err)
			}
		}
		again := workorder.Run{ScheduleID: sc.ID, ScheduledAt: w1, Status: workorder.RunCreated}
		if ok, err := sub.Runs.InsertScheduleRun(ctx, &again); err != nil || ok {
			t.Fatalf("second insert of a window: %v, %v", ok, err)
		}
		runs, err := sub.Runs.ListScheduleRuns(ctx, sc.ID, 10)
		if err != nil || len(runs) != 2 || !runs[0].ScheduledAt.Equal(w2) || runs[1].Status != workorder.RunSkipped {
			t.Fatalf("runs %+v, %v", runs, err)
		}
		if one, _ := sub.Runs.ListScheduleRuns(ctx, sc.ID, 1); len(one) != 1 {
			t.Fatalf("limit: %d runs", len(one))
		}
		if err := sub.Runs.MarkScheduled(ctx, sc.ID, w2); err != nil {
			t.Fatal(err)
		}
		if err := sub.Runs.MarkScheduled(ctx, sc.ID, w1); err != nil {
			t.Fatal(err)
		}
		got, _ := sub.Schedules.GetSchedule(ctx, sc.ID)
		if got.LastScheduledAt == nil || !got.LastScheduledAt.Equal(w2) {
			t.Fatalf("last_scheduled_at %v, want %v", got.LastScheduledAt, w2)
		}
	})

	t.Run("open orders; deleting the schedule keeps its orders unlinked", func(t *testing.T) {
		sub := newSubject(t)
		sc := schedule("o")
		_ = sub.Schedules.CreateSchedule(ctx, &sc)
		at := time.Now().UTC().Truncate(time.Second)
		w := order("o")
		w.ScheduleID, w.ScheduledAt = &sc.ID, &at
		if err := sub.Orders.CreateWorkOrder(ctx, &w, workorder.Targeting{}); err != nil {
			t.Fatal(err)
		}
		create(t, Subject{Orders: sub.Orders}, order("unrelated"), workorder.Targeting{})
		open, err := sub.Runs.OpenScheduleOrders(ctx, sc.ID)
		if err != nil || len(open) != 1 || open[0].ID != w.ID {
			t.Fatalf("open %v, %v", ids(open), err)
		}
		if d, err := sub.Schedules.DeleteSchedule(ctx, sc.ID); err != nil || d.ID != sc.ID {
			t.Fatalf("delete %+v, %v", d, err)
		}
		got, err := sub.Orders.GetWorkOrder(ctx, w.ID)
		if err != nil || got.ScheduleID != nil {
			t.Fatalf("order after its schedule went: %+v, %v", got, err)
		}
		_, err = sub.Schedules.DeleteSchedule(ctx, sc.ID)
		is(t, err, domain.ErrNotFound)
		if runs, _ := sub.Runs.ListScheduleRuns(ctx, sc.ID, 10); len(runs) != 0 {
			t.Fatalf("runs of a deleted schedule %+v", runs)
		}
	})
}
