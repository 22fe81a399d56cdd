package workorderstest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// Fixtures makes the agents the contract targets (the agents repository
// owns them).
type Fixtures interface {
	Agent(t *testing.T, active bool, labels []string, annotations map[string]string) uuid.UUID
}

// Subject is one implementation of the order ports, all over the same data.
type Subject struct {
	Orders   workorders.OrderRepository
	Claims   workorders.ClaimRepository
	Log      workorders.LogRepository
	Agents   workorders.AgentDirectory
	Retries  workorders.RetryRepository
	Fixtures Fixtures
}

func order(workType string) workorder.WorkOrder {
	return workorder.WorkOrder{WorkType: workType, YAMLContent: "kind: Job\n", MaxRetries: 2, BackoffSeconds: 60,
		ClaimTimeoutSeconds: 60}
}

func create(t *testing.T, sub Subject, w workorder.WorkOrder, tg workorder.Targeting) workorder.WorkOrder {
	t.Helper()
	if err := sub.Orders.CreateWorkOrder(context.Background(), &w, tg); err != nil {
		t.Fatal(err)
	}
	return w
}

func is(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want %v", err, kind)
	}
}

func ids(ws []workorder.WorkOrder) []uuid.UUID {
	out := make([]uuid.UUID, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

func sameIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// RunWorkOrderContract checks the rules every implementation of the order
// ports keeps; newSubject returns a fresh, empty one.
func RunWorkOrderContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()

	t.Run("create makes a PENDING order; get, list and filters find it", func(t *testing.T) {
		sub := newSubject(t)
		a := create(t, sub, order("build"), workorder.Targeting{Labels: []string{"x"}})
		b := create(t, sub, order("backup"), workorder.Targeting{Labels: []string{"x"}})
		if a.ID == uuid.Nil || a.Status != workorder.StatusPending || a.CreatedAt.IsZero() || a.RetryCount != 0 {
			t.Fatalf("created %+v", a)
		}
		got, err := sub.Orders.GetWorkOrder(ctx, a.ID)
		if err != nil || got.ID != a.ID || got.WorkType != "build" || got.YAMLContent != "kind: Job\n" || got.MaxRetries != 2 {
			t.Fatalf("get %+v, %v", got, err)
		}
		all, err := sub.Orders.ListWorkOrders(ctx, workorders.ListFilter{})
		if err != nil || !sameIDs(ids(all), []uuid.UUID{b.ID, a.ID}) {
			t.Fatalf("list newest first: %v, %v", ids(all), err)
		}
		typed, _ := sub.Orders.ListWorkOrders(ctx, workorders.ListFilter{WorkType: "build"})
		claimed, _ := sub.Orders.ListWorkOrders(ctx, workorders.ListFilter{Status: workorder.StatusClaimed})
		if !sameIDs(ids(typed), []uuid.UUID{a.ID}) || len(claimed) != 0 {
			t.Fatalf("filters: by type %v, claimed %v", ids(typed), ids(claimed))
		}
		_, err = sub.Orders.GetWorkOrder(ctx, uuid.New())
		is(t, err, domain.ErrNotFound)
		_, err = sub.Orders.LockWorkOrder(ctx, uuid.New())
		is(t, err, domain.ErrNotFound)
	})

	t.Run("invalid settings are refused", func(t *testing.T) {
		sub := newSubject(t)
		w := order("x")
		w.BackoffSeconds = 0
		is(t, sub.Orders.CreateWorkOrder(ctx, &w, workorder.Targeting{}), domain.ErrInvalid)
	})

	t.Run("live agents", func(t *testing.T) {
		sub := newSubject(t)
		a := sub.Fixtures.Agent(t, true, nil, nil)
		ghost := uuid.New()
		live, err := sub.Agents.LiveAgents(ctx, []uuid.UUID{a, ghost})
		if err != nil || !live[a] || live[ghost] {
			t.Fatalf("live %v, %v", live, err)
		}
		if ok, _ := sub.Agents.AgentLive(ctx, ghost); ok {
			t.Fatal("an unknown agent is live")
		}
	})

	t.Run("eligibility: target, shared label, shared annotation pair, ACTIVE only", func(t *testing.T) {
		sub := newSubject(t)
		targeted := sub.Fixtures.Agent(t, true, nil, nil)
		labelled := sub.Fixtures.Agent(t, true, []string{"gpu"}, nil)
		annotated := sub.Fixtures.Agent(t, true, nil, map[string]string{"zone": "a"})
		wrongValue := sub.Fixtures.Agent(t, true, nil, map[string]string{"zone": "b"})
		inactive := sub.Fixtures.Agent(t, false, []string{"gpu"}, nil)
		byTarget := create(t, sub, order("t"), workorder.Targeting{AgentIDs: []uuid.UUID{targeted}})
		byLabel := create(t, sub, order("l"), workorder.Targeting{Labels: []string{"gpu"}})
		byAnn := create(t, sub, order("a"), workorder.Targeting{Annotations: map[string]string{"zone": "a"}})
		for _, c := range []struct {
			agent uuid.UUID
			want  []uuid.UUID
		}{
			{targeted, []uuid.UUID{byTarget.ID}}, {labelled, []uuid.UUID{byLabel.ID}},
			{annotated, []uuid.UUID{byAnn.ID}}, {wrongValue, nil}, {inactive, nil},
		} {
			got, err := sub.Claims.PendingForAgent(ctx, c.agent, "")
			if err != nil || got == nil || !sameIDs(ids(got), c.want) {
				t.Fatalf("pending for %v: %v (%v), want %v", c.agent, ids(got), err, c.want)
			}
		}
		if got, _ := sub.Claims.PendingForAgent(ctx, labelled, "other-type"); len(got) != 0 {
			t.Fatalf("work type filter ignored: %v", ids(got))
		}
		_, err := sub.Claims.ClaimWorkOrder(ctx, byLabel.ID, inactive)
		is(t, err, domain.ErrNotFound)
		_, err = sub.Claims.ClaimWorkOrder(ctx, byLabel.ID, targeted)
		is(t, err, domain.ErrNotFound)
	})

	t.Run("exactly one of many concurrent claimers wins", func(t *testing.T) {
		sub := newSubject(t)
		var agents []uuid.UUID
		for range 6 {
			agents = append(agents, sub.Fixtures.Agent(t, true, []string{"pool"}, nil))
		}
		w := create(t, sub, order("race"), workorder.Targeting{Labels: []string{"pool"}})
		var (
			mu   sync.Mutex
			wins []uuid.UUID
			wg   sync.WaitGroup
		)
		for _, a := range agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := sub.Claims.ClaimWorkOrder(ctx, w.ID, a)
				if err == nil {
					mu.Lock()
					wins = append(wins, a)
					mu.Unlock()
					if got.Status != workorder.StatusClaimed || got.ClaimedBy == nil || *got.ClaimedBy != a || got.ClaimedAt == nil {
						t.Errorf("claimed %+v", got)
					}
				} else if !errors.Is(err, domain.ErrNotFound) {
					t.Errorf("losing claim: %v", err)
				}
			}()
		}
		wg.Wait()
		if len(wins) != 1 {
			t.Fatalf("%d winners", len(wins))
		}
		if got, _ := sub.Claims.PendingForAgent(ctx, agents[0], ""); len(got) != 0 {
			t.Fatal("a claimed order is still pending")
		}
	})

	t.Run("progress only from the claiming agent", func(t *testing.T) {
		sub := newSubject(t)
		a := sub.Fixtures.Agent(t, true, []string{"p"}, nil)
		b := sub.Fixtures.Agent(t, true, []string{"p"}, nil)
		w := create(t, sub, order("p"), workorder.Targeting{Labels: []string{"p"}})
		msg, pct := "half", 50
		if _, ok, err := sub.Claims.ReportProgress(ctx, w.ID, a, &msg, &pct); err != nil || ok {
			t.Fatalf("progress on a PENDING order: ok=%v, %v", ok, err)
		}
		if _, err := sub.Claims.ClaimWorkOrder(ctx, w.ID, a); err != nil {
			t.Fatal(err)
		}
		got, ok, err := sub.Claims.ReportProgress(ctx, w.ID, a, &msg, &pct)
		if err != nil || !ok || got.Progress() == nil || *got.Progress().Message != "half" || *got.Progress().Percent != 50 {
			t.Fatalf("progress %+v ok=%v, %v", got, ok, err)
		}
		if cur, ok, err := sub.Claims.ReportProgress(ctx, w.ID, b, &msg, &pct); err != nil || ok || cur.ID != w.ID {
			t.Fatalf("another agent's progress: %+v ok=%v, %v", cur, ok, err)
		}
		_, _, err = sub.Claims.ReportProgress(ctx, uuid.New(), a, &msg, &pct)
		is(t, err, domain.ErrNotFound)
	})

	t.Run("retry: RETRY_PENDING until due, then PENDING again", func(t *testing.T) {
		sub := newSubject(t)
		a := sub.Fixtures.Agent(t, true, []string{"r"}, nil)
		w := order("r")
		w.BackoffSeconds = 1
		w = create(t, sub, w, workorder.Targeting{Labels: []string{"r"}})
		if _, err := sub.Claims.ClaimWorkOrder(ctx, w.ID, a); err != nil {
			t.Fatal(err)
		}
		r, err := sub.Orders.ScheduleRetry(ctx, w.ID, 1, "boom")
		if err != nil || r.Status != workorder.StatusRetryPending || r.RetryCount != 1 || r.ClaimedBy != nil ||
			r.LastError == nil || *r.LastError != "boom" || r.NextRetryAfter == nil {
			t.Fatalf("retry %+v, %v", r, err)
		}
		if wait := time.Until(*r.NextRetryAfter); wait < time.Second || wait > 3*time.Second {
			t.Fatalf("retry 1 with backoff 1 s due in %v, want about 2 s", wait)
		}
		released, due, err := sub.Retries.ReleaseRetry(ctx, w.ID, 1)
		if err != nil || released || due == nil {
			t.Fatalf("early release: %v %v %v", released, due, err)
		}
		if released, due, _ := sub.Retries.ReleaseRetry(ctx, w.ID, 2); released || due != nil {
			t.Fatal("a timer for another retry touched the order")
		}
		if n, _ := sub.Retries.ReleaseDueRetries(ctx, 10); n != 0 {
			t.Fatalf("released %d orders that are not due", n)
		}
		_, err = sub.Orders.ScheduleRetry(ctx, w.ID, 3, "beyond max_retries")
		is(t, err, domain.ErrInvalid)
	})

	t.Run("move to log, then list and get the entry", func(t *testing.T) {
		sub := newSubject(t)
		a := sub.Fixtures.Agent(t, true, []string{"g"}, nil)
		w1 := create(t, sub, order("one"), workorder.Targeting{Labels: []string{"g"}})
		w2 := create(t, sub, order("two"), workorder.Targeting{Labels: []string{"g"}})
		if _, err := sub.Claims.ClaimWorkOrder(ctx, w1.ID, a); err != nil {
			t.Fatal(err)
		}
		msg := "done"
		l1, err := sub.Orders.MoveToLog(ctx, w1.ID, true, &msg, 0)
		if err != nil || l1.ID != w1.ID || !l1.Success || l1.ClaimedBy == nil || *l1.ClaimedBy != a || l1.CompletedAt.IsZero() {
			t.Fatalf("log %+v, %v", l1, err)
		}
		if _, err := sub.Orders.MoveToLog(ctx, w2.ID, false, nil, 2); err != nil {
			t.Fatal(err)
		}
		_, err = sub.Orders.GetWorkOrder(ctx, w1.ID)
		is(t, err, domain.ErrNotFound)
		_, err = sub.Orders.MoveToLog(ctx, w1.ID, true, nil, 0)
		is(t, err, domain.ErrNotFound)
		all, _ := sub.Log.ListLog(ctx, workorders.LogFilter{})
		if len(all) != 2 || all[0].ID != w2.ID {
			t.Fatalf("log newest first: %+v", all)
		}
		ok, one := true, 1
		succ, _ := sub.Log.ListLog(ctx, workorders.LogFilter{Success: &ok})
		byAgent, _ := sub.Log.ListLog(ctx, workorders.LogFilter{AgentID: &a})
		limited, _ := sub.Log.ListLog(ctx, workorders.LogFilter{Limit: &one})
		if len(succ) != 1 || succ[0].ID != w1.ID || len(byAgent) != 1 || len(limited) != 1 {
			t.Fatalf("filters: success %d, agent %d, limit %d", len(succ), len(byAgent), len(limited))
		}
		got, err := sub.Log.GetLogEntry(ctx, w2.ID)
		if err != nil || got.Success || got.RetriesAttempted != 2 {
			t.Fatalf("entry %+v, %v", got, err)
		}
		_, err = sub.Log.GetLogEntry(ctx, uuid.New())
		is(t, err, domain.ErrNotFound)
	})

	t.Run("delete removes an active order", func(t *testing.T) {
		sub := newSubject(t)
		w := create(t, sub, order("d"), workorder.Targeting{})
		if d, err := sub.Orders.DeleteWorkOrder(ctx, w.ID); err != nil || d.ID != w.ID {
			t.Fatalf("delete %+v, %v", d, err)
		}
		_, err := sub.Orders.DeleteWorkOrder(ctx, w.ID)
		is(t, err, domain.ErrNotFound)
	})

	t.Run("fresh claims are not stale", func(t *testing.T) {
		sub := newSubject(t)
		a := sub.Fixtures.Agent(t, true, []string{"s"}, nil)
		w := create(t, sub, order("s"), workorder.Targeting{Labels: []string{"s"}})
		if _, err := sub.Claims.ClaimWorkOrder(ctx, w.ID, a); err != nil {
			t.Fatal(err)
		}
		stale, err := sub.Retries.LockStaleClaims(ctx, 10)
		if err != nil || len(stale) != 0 {
			t.Fatalf("stale %v, %v", ids(stale), err)
		}
	})
}
