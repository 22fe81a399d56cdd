package asynq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	asynqlib "github.com/hibiken/asynq"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
)

var _ workorders.RetryTimer = (*Enqueuer)(nil)

// Enqueuer puts tasks on a deployment's queue. It implements the
// work-order RetryTimer port.
type Enqueuer struct {
	client *asynqlib.Client
	queue  string
	log    *slog.Logger
}

// NewEnqueuer returns an enqueuer on queue with its own connections; Close
// releases them.
func NewEnqueuer(opt asynqlib.RedisConnOpt, queue string, log *slog.Logger) *Enqueuer {
	return &Enqueuer{client: asynqlib.NewClient(opt), queue: queue, log: orDiscard(log)}
}

// Close releases the enqueuer's Redis connections.
func (e *Enqueuer) Close() error { return e.client.Close() }

// Queue is the queue tasks go to.
func (e *Enqueuer) Queue() string { return e.queue }

// retryTaskMaxRetry bounds how often asynq retries a failing release (the
// database down); past that the sweep takes over.
const retryTaskMaxRetry = 10

// periodicTimeout bounds one run of a periodic task.
const periodicTimeout = 10 * time.Minute

// ScheduleRetry enqueues the release of retry n of order id at due. The
// task id names the order, the retry and the due time, so scheduling the
// same release twice keeps one task. A failure is logged and returned: the
// periodic sweep releases the order anyway, a little later.
func (e *Enqueuer) ScheduleRetry(ctx context.Context, id uuid.UUID, n int, due time.Time) error {
	payload := marshal(RetryPayload{WorkOrderID: id.String(), RetryCount: n})
	taskID := fmt.Sprintf("workorder-retry:%s:%d:%d", id, n, due.UnixMilli())
	_, err := e.client.EnqueueContext(ctx, newTask(ctx, TypeReleaseRetry, payload),
		asynqlib.Queue(e.queue), asynqlib.ProcessAt(ceilSecond(due)), asynqlib.TaskID(taskID),
		asynqlib.MaxRetry(retryTaskMaxRetry), asynqlib.Timeout(30*time.Second))
	if errors.Is(err, asynqlib.ErrTaskIDConflict) {
		return nil
	}
	if err != nil {
		e.log.WarnContext(ctx, "could not enqueue the retry release; the sweep will release it",
			"work_order_id", id, "retry_count", n, "due", due, "error", err)
		return err
	}
	return nil
}

// WakeRollout enqueues the advance of the stack's rollout now. The task id
// names the stack, so a burst of reports while one wake-up waits is one
// task. A failure is only logged: the periodic advance runs anyway.
func (e *Enqueuer) WakeRollout(ctx context.Context, stackID uuid.UUID) {
	_, err := e.client.EnqueueContext(ctx, newTask(ctx, TypeRolloutWake, marshal(WakePayload{StackID: stackID.String()})),
		asynqlib.Queue(e.queue), asynqlib.TaskID("rollout-wake:"+stackID.String()), asynqlib.MaxRetry(1),
		asynqlib.Timeout(time.Minute))
	if err != nil && !errors.Is(err, asynqlib.ErrTaskIDConflict) {
		e.log.DebugContext(ctx, "could not enqueue a rollout wake-up; the periodic advance runs anyway",
			"stack_id", stackID, "error", err)
	}
}

// ceilSecond rounds up to a whole second: asynq keeps due times in whole
// seconds, truncated, so an unrounded time would fire up to a second early.
func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// Enqueue puts a periodic task on the queue now (the scheduler runs each
// periodic task once at start-up; cron's first tick comes one interval
// later). A duplicate of a task still waiting is not an error.
func (e *Enqueuer) Enqueue(ctx context.Context, typ string, uniqueFor time.Duration) error {
	_, err := e.client.EnqueueContext(ctx, newTask(ctx, typ, nil), periodicOpts(e.queue, uniqueFor)...)
	if errors.Is(err, asynqlib.ErrDuplicateTask) {
		return nil
	}
	return err
}

// periodicOpts: no retries (the next tick is the retry) and unique while
// one is waiting, so a stalled worker does not come back to a pile of ticks.
func periodicOpts(queue string, uniqueFor time.Duration) []asynqlib.Option {
	if uniqueFor < time.Second {
		uniqueFor = time.Second
	}
	return []asynqlib.Option{asynqlib.Queue(queue), asynqlib.MaxRetry(0), asynqlib.Unique(uniqueFor),
		asynqlib.Timeout(periodicTimeout)}
}
