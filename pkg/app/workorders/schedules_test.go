package workorders_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/app/workorders/workorderstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSchedules() (*workorders.Schedules, *workorders.Service, *workorderstest.Memory, *manualClock) {
	m := workorderstest.NewMemory()
	orders := workorders.NewService(workorders.Repos{Tx: m, Journal: m, Orders: m, Claims: m, Log: m, Agents: m, Retries: m}, nil)
	clock := &manualClock{t: time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)}
	s := workorders.NewSchedules(workorders.ScheduleRepos{Tx: m, Journal: m, Schedules: m, Runs: m}, orders, clock, nil)
	return s, orders, m, clock
}

func every5(policy string) workorders.ScheduleInput {
	return workorders.ScheduleInput{Name: "s-" + policy, CronExpression: "*/5 * * * *", TimeZone: "UTC",
		ConcurrencyPolicy: policy, Template: tmpl(), Targeting: workorder.Targeting{Labels: []string{"x"}}}
}

func TestScheduleCRUDRules(t *testing.T) {
	ctx := context.Background()
	s, _, _, _ := newSchedules()
	_, err := s.CreateSchedule(ctx, identity.Agent(uuid.New()), every5(workorder.PolicyForbid))
	wantErr(t, err, domain.ErrForbidden, "Admin access required")
	bad := every5(workorder.PolicyForbid)
	bad.CronExpression = "not cron"
	_, err = s.CreateSchedule(ctx, identity.Admin, bad)
	wantErr(t, err, domain.ErrInvalid, "")
	ghost := every5(workorder.PolicyForbid)
	ghost.Targeting = workorder.Targeting{AgentIDs: []uuid.UUID{uuid.New()}}
	_, err = s.CreateSchedule(ctx, identity.Admin, ghost)
	wantErr(t, err, domain.ErrUnprocessable, "")
	sc, err := s.CreateSchedule(ctx, identity.Admin, every5(workorder.PolicyForbid))
	if err != nil || sc.NextRunAt == nil || !sc.NextRunAt.Equal(time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)) {
		t.Fatalf("create %+v, %v", sc, err)
	}
	_, err = s.CreateSchedule(ctx, identity.Admin, every5(workorder.PolicyForbid))
	wantErr(t, err, domain.ErrConflict, "A schedule with this name already exists")
	wantErr(t, s.DeleteSchedule(ctx, identity.Admin, uuid.New()), domain.ErrNotFound, "")
}

func TestTickPolicies(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		policy string
		// after the second window, with the first order still open
		wantFired, wantSkipped, wantOpen int
	}{
		{workorder.PolicyForbid, 0, 1, 1},
		{workorder.PolicyAllow, 1, 0, 2},
		{workorder.PolicyReplace, 1, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			s, _, m, clock := newSchedules()
			sc, err := s.CreateSchedule(ctx, identity.Admin, every5(tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			if res, err := s.Tick(ctx); err != nil || res.Fired != 0 || res.Skipped != 0 {
				t.Fatalf("before the first window: %+v, %v", res, err)
			}
			clock.advance(5 * time.Minute) // 10:05:30, window 10:05 due
			res, err := s.Tick(ctx)
			if err != nil || res.Fired != 1 {
				t.Fatalf("first window: %+v, %v", res, err)
			}
			first, _ := m.OpenScheduleOrders(ctx, sc.ID)
			if len(first) != 1 || first[0].ScheduledAt == nil || !first[0].ScheduledAt.Equal(time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)) {
				t.Fatalf("first order %+v", first)
			}
			if res, _ := s.Tick(ctx); res.Fired != 0 || res.Skipped != 0 {
				t.Fatalf("a window fired twice: %+v", res)
			}
			clock.advance(11 * time.Minute) // 10:16:30: 10:10 and 10:15 missed, only the latest fires
			res, err = s.Tick(ctx)
			if err != nil || res.Fired != tc.wantFired || res.Skipped != tc.wantSkipped {
				t.Fatalf("second window: %+v, %v", res, err)
			}
			open, _ := m.OpenScheduleOrders(ctx, sc.ID)
			if len(open) != tc.wantOpen {
				t.Fatalf("%d open orders, want %d", len(open), tc.wantOpen)
			}
			runs, err := s.Runs(ctx, identity.Admin, sc.ID, 10)
			if err != nil || len(runs) != 2 || !runs[0].ScheduledAt.Equal(time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)) {
				t.Fatalf("runs %+v, %v", runs, err)
			}
			if tc.policy == workorder.PolicyReplace && open[0].ID == first[0].ID {
				t.Fatal("Replace kept the old order")
			}
		})
	}
}

func TestTickSkipsDisabled(t *testing.T) {
	ctx := context.Background()
	s, _, _, clock := newSchedules()
	off := false
	in := every5(workorder.PolicyAllow)
	in.Enabled = &off
	sc, err := s.CreateSchedule(ctx, identity.Admin, in)
	if err != nil || sc.NextRunAt != nil {
		t.Fatalf("disabled schedule %+v, %v", sc, err)
	}
	clock.advance(time.Hour)
	if res, err := s.Tick(ctx); err != nil || res.Fired != 0 {
		t.Fatalf("disabled schedule fired: %+v, %v", res, err)
	}
}
