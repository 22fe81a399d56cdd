package queue

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func TestOneTaskPerDelivery(t *testing.T) {
	redistest.New(t) // skips with -short, fails clearly without Redis
	conn, err := asynqadapter.ConnOpt(config.Redis{URL: redistest.URL()})
	if err != nil {
		t.Fatal(err)
	}
	q := "brokkr_test_" + uuid.NewString()[:8] + ":webhooks"
	e := NewEnqueuer(conn, q)
	defer e.Close()
	in := asynq.NewInspector(conn)
	defer in.Close()
	defer func() { _ = in.DeleteQueue(q, true) }()

	a, b := uuid.New(), uuid.New()
	tasks := []webhooks.Task{{DeliveryID: a}, {DeliveryID: b}, {DeliveryID: a}}
	ok, err := e.Enqueue(context.Background(), tasks)
	if err != nil || len(ok) != 3 {
		t.Fatalf("enqueue: %v %v (a task already queued counts as queued)", ok, err)
	}
	if ok, err = e.Enqueue(context.Background(), tasks[:1]); err != nil || len(ok) != 1 {
		t.Fatalf("re-enqueue: %v %v", ok, err)
	}
	pending, err := in.ListPendingTasks(q)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range pending {
		ids[p.ID] = true
		if p.Type != TypeDeliver || p.MaxRetry != maxRetry {
			t.Errorf("task %+v", p)
		}
	}
	if len(pending) != 2 || !ids[a.String()] || !ids[b.String()] {
		t.Fatalf("queued %v, want one task per delivery", ids)
	}

	// Redis unreachable: the enqueuer stops and reports.
	bad := NewEnqueuer(asynq.RedisClientOpt{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}, q)
	defer bad.Close()
	many := make([]webhooks.Task, 50)
	for i := range many {
		many[i] = webhooks.Task{DeliveryID: uuid.New()}
	}
	start := time.Now()
	ok, err = bad.Enqueue(context.Background(), many)
	if err == nil || len(ok) != 0 {
		t.Fatalf("enqueue without Redis: %v %v", ok, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a dead Redis held the enqueuer for %v", took)
	}
}

func TestRequeueCoversLostAndOrphanedTasks(t *testing.T) {
	redistest.New(t)
	conn, err := asynqadapter.ConnOpt(config.Redis{URL: redistest.URL()})
	if err != nil {
		t.Fatal(err)
	}
	q := "brokkr_test_" + uuid.NewString()[:8] + ":webhooks"
	e := NewEnqueuer(conn, q)
	defer e.Close()
	in := asynq.NewInspector(conn)
	defer in.Close()
	defer func() { _ = in.DeleteQueue(q, true) }()
	ctx := context.Background()

	// Lost: no task at all (not even a queue) -> queued under its own id.
	lost := uuid.New()
	ok, err := e.Requeue(ctx, []webhooks.StaleDelivery{{ID: lost, Status: "pending"}})
	if err != nil || len(ok) != 1 {
		t.Fatalf("requeue lost: %v %v", ok, err)
	}
	if info, err := in.GetTaskInfo(q, lost.String()); err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("lost task not queued again: %+v %v", info, err)
	}
	// Waiting: a pending task is left alone (no second task).
	if _, err := e.Requeue(ctx, []webhooks.StaleDelivery{{ID: lost, Status: "pending"}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := in.ListPendingTasks(q); len(n) != 1 {
		t.Fatalf("%d pending tasks, want 1", len(n))
	}

	// Orphaned: the task is "active" but nobody works on it.
	release := make(chan struct{})
	srv := asynq.NewServer(conn, asynq.Config{Concurrency: 1, Queues: map[string]int{q: 1}, TaskCheckInterval: 50 * time.Millisecond,
		LogLevel: asynq.FatalLevel})
	if err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	defer close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if info, err := in.GetTaskInfo(q, lost.String()); err == nil && info.State == asynq.TaskStateActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task never became active")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ok, err = e.Requeue(ctx, []webhooks.StaleDelivery{{ID: lost, Status: "acquired", Attempts: 1}})
	if err != nil || len(ok) != 1 {
		t.Fatalf("requeue orphan: %v %v", ok, err)
	}
	pending, _ := in.ListPendingTasks(q)
	if len(pending) != 1 || !strings.HasPrefix(pending[0].ID, lost.String()+":r") {
		t.Fatalf("no recovery task beside the stuck one: %+v", pending)
	}
}

func TestRetryDelayNeverEarly(t *testing.T) {
	for _, d := range []time.Duration{0, 300 * time.Millisecond, 2*time.Second + 100*time.Millisecond, 4 * time.Second} {
		at := time.Now().Add(d)
		got := RetryDelay(1, &DelayError{At: at, Counted: true}, nil)
		due := time.Now().Add(got)
		if due.Add(5*time.Millisecond).Before(at) || got > d+time.Second+5*time.Millisecond {
			t.Errorf("delay for %v: %v", d, got)
		}
		// asynq truncates the due time to whole seconds: it must not fall before at.
		if time.Unix(due.Add(5*time.Millisecond).Unix(), 0).Before(at.Truncate(time.Second)) {
			t.Errorf("delay for %v rounds to before the due time", d)
		}
	}
	if got := RetryDelay(1, &DelayError{At: time.Now().Add(-time.Minute)}, nil); got != 0 {
		t.Errorf("past due: %v", got)
	}
	if !IsFailure(&DelayError{Counted: true}) || IsFailure(&DelayError{}) || !IsFailure(errors.New("x")) {
		t.Error("IsFailure must count only real attempts")
	}
}
