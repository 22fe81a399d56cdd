package workorders_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// memStore is an in-memory fake of the methods Complete uses; any other
// method panics through the nil embedded interface. InTx keeps the
// all-or-nothing contract by snapshotting.
type memStore struct {
	workorders.OrderRepository
	orders map[uuid.UUID]workorder.WorkOrder
	logs   map[uuid.UUID]workorder.LogEntry
	journaltest.Recorder
	now time.Time
	// failLog makes MoveToLog fail, to check the rollback.
	failLog bool
}

func (m *memStore) InTx(ctx context.Context, fn func(context.Context) error) error {
	orders, logs, rewind := maps.Clone(m.orders), maps.Clone(m.logs), m.Mark()
	if err := fn(ctx); err != nil {
		m.orders, m.logs = orders, logs
		rewind()
		return err
	}
	return nil
}

func (m *memStore) LockWorkOrder(_ context.Context, id uuid.UUID) (workorder.WorkOrder, error) {
	w, ok := m.orders[id]
	if !ok {
		return w, domain.NotFound("Work order not found")
	}
	return w, nil
}

func (m *memStore) ScheduleRetry(_ context.Context, id uuid.UUID, n int, msg string) (workorder.WorkOrder, error) {
	w := m.orders[id]
	next := m.now.Add(workorder.Backoff(w.BackoffSeconds, n))
	w.Status, w.RetryCount, w.NextRetryAfter, w.ClaimedBy, w.ClaimedAt, w.LastError = workorder.StatusRetryPending, n, &next, nil, nil, &msg
	m.orders[id] = w
	return w, nil
}

func (m *memStore) MoveToLog(_ context.Context, id uuid.UUID, success bool, msg *string, retries int) (workorder.LogEntry, error) {
	if m.failLog {
		return workorder.LogEntry{}, errors.New("disk full")
	}
	w := m.orders[id]
	delete(m.orders, id)
	l := workorder.LogEntry{ID: id, WorkType: w.WorkType, ClaimedBy: w.ClaimedBy, Success: success, ResultMessage: msg,
		RetriesAttempted: retries, CompletedAt: m.now}
	m.logs[id] = l
	return l, nil
}

type armedTimer struct{ calls []time.Time }

func (a *armedTimer) ScheduleRetry(_ context.Context, _ uuid.UUID, _ int, due time.Time) error {
	a.calls = append(a.calls, due)
	return nil
}

func claimedOrder(m *memStore, agentID uuid.UUID, retryCount, maxRetries int) uuid.UUID {
	id := uuid.New()
	at := m.now
	m.orders[id] = workorder.WorkOrder{ID: id, WorkType: "build", Status: workorder.StatusClaimed, ClaimedBy: &agentID,
		ClaimedAt: &at, RetryCount: retryCount, MaxRetries: maxRetries, BackoffSeconds: 30}
	return id
}

func TestCompleteDecisions(t *testing.T) {
	agentID := uuid.New()
	me := identity.Agent(agentID)
	msg := "boom"
	fresh := func() (*memStore, *armedTimer, *workorders.Service) {
		m := &memStore{orders: map[uuid.UUID]workorder.WorkOrder{}, logs: map[uuid.UUID]workorder.LogEntry{},
			now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
		timer := &armedTimer{}
		return m, timer, workorders.NewService(workorders.Repos{Tx: m, Journal: m, Orders: m}, timer)
	}
	ctx := context.Background()

	t.Run("success goes to the log", func(t *testing.T) {
		m, timer, svc := fresh()
		id := claimedOrder(m, agentID, 1, 3)
		c, err := svc.Complete(ctx, me, id, workorders.CompleteInput{Success: true})
		if err != nil || c.Log == nil || !c.Log.Success || c.Log.RetriesAttempted != 1 || len(timer.calls) != 0 {
			t.Fatalf("%+v %v timers %v", c, err, timer.calls)
		}
		if len(m.Events()) != 1 || m.Events()[0].Type != workorder.EventCompleted || m.Audits()[0].Action != workorder.ActionCompleted {
			t.Fatalf("journal: %+v %+v", m.Events(), m.Audits())
		}
	})
	t.Run("retryable failure schedules retry n after 2^n × backoff and arms the timer", func(t *testing.T) {
		m, timer, svc := fresh()
		id := claimedOrder(m, agentID, 1, 3)
		c, err := svc.Complete(ctx, me, id, workorders.CompleteInput{Message: &msg, Retryable: true})
		if err != nil || c.Retry == nil || c.Retry.RetryCount != 2 {
			t.Fatalf("%+v %v", c, err)
		}
		want := m.now.Add(2 * 2 * 30 * time.Second)
		if len(timer.calls) != 1 || !timer.calls[0].Equal(want) || !c.Retry.NextRetryAfter.Equal(want) {
			t.Fatalf("timer %v, want one at %v", timer.calls, want)
		}
		if m.Events()[0].Type != workorder.EventRetryScheduled || m.Audits()[0].Action != workorder.ActionRetryScheduled {
			t.Fatalf("journal: %+v", m.Events())
		}
	})
	t.Run("exhausted or non-retryable failure goes to the log", func(t *testing.T) {
		m, timer, svc := fresh()
		last := claimedOrder(m, agentID, 3, 3)
		permanent := claimedOrder(m, agentID, 0, 3)
		c1, err1 := svc.Complete(ctx, me, last, workorders.CompleteInput{Message: &msg, Retryable: true})
		c2, err2 := svc.Complete(ctx, me, permanent, workorders.CompleteInput{Retryable: false})
		if err1 != nil || err2 != nil || c1.Log == nil || c1.Log.Success || c1.Log.RetriesAttempted != 3 ||
			c2.Log == nil || *c2.Log.ResultMessage != "Unknown error" || len(timer.calls) != 0 {
			t.Fatalf("%+v %+v %v %v", c1, c2, err1, err2)
		}
		if m.Events()[0].Type != workorder.EventFailed {
			t.Fatalf("event %s", m.Events()[0].Type)
		}
	})
	t.Run("only the claiming agent, and only a CLAIMED order", func(t *testing.T) {
		m, _, svc := fresh()
		id := claimedOrder(m, agentID, 0, 3)
		if _, err := svc.Complete(ctx, identity.Agent(uuid.New()), id, workorders.CompleteInput{Success: true}); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("another agent: %v", err)
		}
		if _, err := svc.Complete(ctx, identity.Generator(uuid.New()), id, workorders.CompleteInput{Success: true}); !errors.Is(err, domain.ErrForbidden) {
			t.Fatalf("a generator: %v", err)
		}
		w := m.orders[id]
		w.Status = workorder.StatusPending
		m.orders[id] = w
		if _, err := svc.Complete(ctx, identity.Admin, id, workorders.CompleteInput{Success: true}); !errors.Is(err, domain.ErrConflict) {
			t.Fatalf("admin on PENDING: %v", err)
		}
		if _, err := svc.Complete(ctx, me, uuid.New(), workorders.CompleteInput{Success: true}); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown: %v", err)
		}
		if len(m.Events())+len(m.Audits()) != 0 {
			t.Fatal("a refused completion left a trace")
		}
	})
	t.Run("a failed write leaves nothing behind", func(t *testing.T) {
		m, timer, svc := fresh()
		m.failLog = true
		id := claimedOrder(m, agentID, 0, 3)
		if _, err := svc.Complete(ctx, me, id, workorders.CompleteInput{Success: true}); err == nil {
			t.Fatal("no error")
		}
		if m.orders[id].Status != workorder.StatusClaimed || len(m.Events()) != 0 || len(timer.calls) != 0 {
			t.Fatalf("state after rollback: %+v events %d timers %d", m.orders[id], len(m.Events()), len(timer.calls))
		}
	})
}
