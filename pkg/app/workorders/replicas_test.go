package workorders_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// The scheduler's passes run on every replica at once. These tests run
// several copies of each pass concurrently against the real database and
// check that every row was handled exactly once.

type recordingTimer struct {
	mu    sync.Mutex
	armed map[uuid.UUID]int
}

func (r *recordingTimer) ScheduleRetry(_ context.Context, id uuid.UUID, n int, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.armed[id]++
	return nil
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func setup(t *testing.T, orders int) (*postgres.Store, *workorders.Service, *recordingTimer, []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	store := postgres.NewStore(pgtest.New(t))
	a := agent.Agent{Name: "replicas", ClusterName: "c", Status: agent.StatusActive}
	if err := postgres.NewAgents(store).CreateAgent(ctx, &a); err != nil {
		t.Fatal(err)
	}
	timer := &recordingTimer{armed: map[uuid.UUID]int{}}
	svc := workorders.NewService(postgres.WorkOrderRepos(store), timer)
	ids := make([]uuid.UUID, orders)
	for i := range ids {
		w, err := svc.Create(ctx, identity.Admin, workorders.CreateInput{
			Template:  workorder.Template{WorkType: "custom", YAMLContent: "kind: Job\n", MaxRetries: 3, BackoffSeconds: 60, ClaimTimeoutSeconds: 60},
			Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{a.ID}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Claim(ctx, identity.Agent(a.ID), w.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		ids[i] = w.ID
	}
	return store, svc, timer, ids
}

func concurrently(n int, f func() int) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range n {
		wg.Go(func() {
			k := f()
			mu.Lock()
			total += k
			mu.Unlock()
		})
	}
	wg.Wait()
	return total
}

func count(t *testing.T, store *postgres.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := store.DB().GetContext(context.Background(), &n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestStaleClaimExpiryIsExactlyOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	const n = 250 // more than two batches
	store, svc, timer, _ := setup(t, n)
	ctx := context.Background()
	// Every claim is an hour old.
	if _, err := store.DB().ExecContext(ctx, `UPDATE work_orders SET claimed_at = now() - interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	total := concurrently(4, func() int {
		k, err := svc.ExpireStaleClaims(ctx)
		if err != nil {
			t.Error(err)
		}
		return k
	})
	if total != n {
		t.Fatalf("replicas expired %d claims in total, want %d", total, n)
	}
	if got := count(t, store, `SELECT count(*) FROM work_orders WHERE status = 'RETRY_PENDING' AND retry_count = 1`); got != n {
		t.Fatalf("%d orders at retry 1, want %d (an order expired twice would be at 2)", got, n)
	}
	if got := count(t, store, `SELECT count(*) FROM audit_logs WHERE action = 'workorder.claim_expired'`); got != n {
		t.Fatalf("%d audit entries, want %d", got, n)
	}
	if len(timer.armed) != n {
		t.Fatalf("%d timers armed, want %d", len(timer.armed), n)
	}
	for id, k := range timer.armed {
		if k != 1 {
			t.Fatalf("timer for %s armed %d times", id, k)
		}
	}
	// A fresh claim is left alone.
	if k, err := svc.ExpireStaleClaims(ctx); err != nil || k != 0 {
		t.Fatalf("second pass: %d %v", k, err)
	}
}

func TestRetrySweepIsExactlyOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	const n = 1200 // more than two sweep batches
	store, svc, _, _ := setup(t, n)
	ctx := context.Background()
	if _, err := store.DB().ExecContext(ctx, `UPDATE work_orders SET status = 'RETRY_PENDING', retry_count = 1,
		claimed_by = NULL, claimed_at = NULL, next_retry_after = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	// One not yet due.
	if _, err := store.DB().ExecContext(ctx, `UPDATE work_orders SET next_retry_after = now() + interval '1 hour'
		WHERE id = (SELECT id FROM work_orders LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	total := concurrently(4, func() int {
		k, err := svc.SweepRetries(ctx)
		if err != nil {
			t.Error(err)
		}
		return k
	})
	if total != n-1 {
		t.Fatalf("swept %d, want %d", total, n-1)
	}
	if got := count(t, store, `SELECT count(*) FROM work_orders WHERE status = 'PENDING' AND next_retry_after IS NULL`); got != n-1 {
		t.Fatalf("%d released, want %d", got, n-1)
	}
}

func TestConcurrentTicksFireEachWindowOnce(t *testing.T) {
	t.Parallel()
	store, svc, _, _ := setup(t, 0)
	ctx := context.Background()
	var agentID uuid.UUID
	if err := store.DB().GetContext(ctx, &agentID, `SELECT id FROM agents LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	sched := workorders.NewSchedules(postgres.ScheduleRepos(store), svc, fixedClock{start}, nil)
	sc, err := sched.CreateSchedule(ctx, identity.Admin, workorders.ScheduleInput{Name: "race", CronExpression: "* * * * *",
		ConcurrencyPolicy: workorder.PolicyAllow,
		Template:          workorder.Template{WorkType: "custom", YAMLContent: "kind: Job\n", BackoffSeconds: 1, ClaimTimeoutSeconds: 1},
		Targeting:         workorder.Targeting{AgentIDs: []uuid.UUID{agentID}}})
	if err != nil {
		t.Fatal(err)
	}
	for minute := 1; minute <= 3; minute++ {
		replica := workorders.NewSchedules(postgres.ScheduleRepos(store), svc, fixedClock{start.Add(time.Duration(minute)*time.Minute + time.Second)}, nil)
		fired := concurrently(6, func() int {
			res, err := replica.Tick(ctx)
			if err != nil {
				t.Error(err)
			}
			return res.Fired
		})
		if fired != 1 {
			t.Fatalf("minute %d: %d fires across 6 concurrent ticks, want 1", minute, fired)
		}
	}
	if got := count(t, store, `SELECT count(DISTINCT scheduled_at) FROM work_orders WHERE schedule_id = $1`, sc.ID); got != 3 {
		t.Fatalf("%d distinct windows, want 3", got)
	}
	if got := count(t, store, `SELECT count(*) FROM work_orders WHERE schedule_id = $1`, sc.ID); got != 3 {
		t.Fatalf("%d orders, want 3", got)
	}
}
