package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
)

func TestOneTaskPerDelivery(t *testing.T) {
	redistest.New(t) // skips with -short, fails clearly without Redis
	conn, err := asynqadapter.ConnOpt(redistest.URL())
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
	// A recovery task has its own id.
	if _, err := e.Enqueue(context.Background(), []webhooks.Task{{DeliveryID: a, Recovery: 2}}); err != nil {
		t.Fatal(err)
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
	if len(pending) != 3 || !ids[a.String()] || !ids[b.String()] || !ids[a.String()+":r2"] {
		t.Fatalf("queued %v, want one task per delivery plus the recovery task", ids)
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
