// Package queue is webhook-dispatch's asynq glue: one task per broker-mode
// delivery (task id = delivery id), the enqueuer behind the dispatcher's
// Enqueuer port, and the task handler that turns the dispatcher's outcome
// into asynq's retry (with the delay computed by the domain's backoff).
//
// The queue only times work. A delivery's state lives in PostgreSQL, the
// handler acquires the row before sending, so a duplicate or late task
// never sends twice at once, and a lost task is re-created by the sweep.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
)

// TypeDeliver makes one attempt on a broker-mode delivery.
const TypeDeliver = "webhook:deliver"

// Name is the webhook queue of one deployment (database and schema), apart
// from the work-order queue so each worker only takes its own tasks.
func Name(databaseURL, schema string) string {
	return asynqadapter.QueueName(databaseURL, schema) + ":webhooks"
}

type payload struct {
	DeliveryID string `json:"delivery_id"`
}

// maxRetry is large because the delivery row, not asynq, decides when a
// delivery is dead; a task asynq archived would block its task id.
const maxRetry = 1 << 20

// taskTimeout bounds one handler run: the longest HTTP timeout (300 s)
// plus the database work around it.
const taskTimeout = 6 * time.Minute

// Enqueuer implements webhooks.Enqueuer on an asynq client.
type Enqueuer struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	queue     string
	// Parallel bounds concurrent enqueue calls (one Redis round trip each).
	Parallel int
}

var _ webhooks.Enqueuer = (*Enqueuer)(nil)

// NewEnqueuer returns an enqueuer with its own connections.
func NewEnqueuer(opt asynq.RedisConnOpt, queue string) *Enqueuer {
	return &Enqueuer{client: asynq.NewClient(opt), inspector: asynq.NewInspector(opt), queue: queue, Parallel: 8}
}

// Close releases the connections.
func (e *Enqueuer) Close() error { return errors.Join(e.client.Close(), e.inspector.Close()) }

func (e *Enqueuer) enqueue(ctx context.Context, deliveryID uuid.UUID, taskID string) error {
	b, _ := json.Marshal(payload{DeliveryID: deliveryID.String()})
	_, err := e.client.EnqueueContext(ctx, asynq.NewTask(TypeDeliver, b), asynq.Queue(e.queue),
		asynq.TaskID(taskID), asynq.MaxRetry(maxRetry), asynq.Timeout(taskTimeout))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// Requeue implements webhooks.Enqueuer. A delivery found stale in
// PostgreSQL (pending or overdue for long, or held under an expired lease)
// has either lost its task (Redis restarted empty: queue it again under its
// own id), or has a task stuck as active because its worker died (asynq
// recovers those only after its 30 s lease and a minute's check: add a
// recovery task under a new id, "<id>:r<unix seconds>", at most one per
// sweep grace period), or a task still waiting its turn (leave it). A
// duplicate task is harmless: the attempt acquires the row first.
func (e *Enqueuer) Requeue(ctx context.Context, stale []webhooks.StaleDelivery) ([]uuid.UUID, error) {
	var ok []uuid.UUID
	for _, s := range stale {
		if err := ctx.Err(); err != nil {
			return ok, err
		}
		info, err := e.inspector.GetTaskInfo(e.queue, s.ID.String())
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound), errors.Is(err, asynq.ErrQueueNotFound):
			err = e.enqueue(ctx, s.ID, s.ID.String())
		case err != nil:
		case info.State == asynq.TaskStateActive, info.State == asynq.TaskStateArchived, info.State == asynq.TaskStateCompleted:
			err = e.enqueue(ctx, s.ID, fmt.Sprintf("%s:r%d", s.ID, time.Now().Unix()))
		}
		if err != nil {
			return ok, err
		}
		ok = append(ok, s.ID)
	}
	return ok, nil
}

// Enqueue queues tasks; a task already queued under the same id counts as
// queued. It stops at the first transport failure (Redis down) and
// returns the deliveries queued so far with the error.
func (e *Enqueuer) Enqueue(ctx context.Context, tasks []webhooks.Task) ([]uuid.UUID, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		ok       []uuid.UUID
		firstErr error
		wg       sync.WaitGroup
	)
	work := make(chan webhooks.Task)
	for range max(1, e.Parallel) {
		wg.Go(func() {
			for t := range work {
				err := e.enqueue(ctx, t.DeliveryID, t.QueueID())
				mu.Lock()
				switch {
				case err == nil:
					ok = append(ok, t.DeliveryID)
				case firstErr == nil:
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	for _, t := range tasks {
		select {
		case work <- t:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil && len(ok) < len(tasks) {
		firstErr = ctx.Err()
	}
	return ok, firstErr
}

// DelayError asks asynq to run the task again at At. Counted tells asynq
// whether this is a failed attempt (a retry) or a mere postponement (host
// busy, not due yet, held by another worker).
type DelayError struct {
	At      time.Time
	Counted bool
}

func (e *DelayError) Error() string {
	if e.Counted {
		return "attempt failed; retry at " + e.At.UTC().Format(time.RFC3339Nano)
	}
	return "postponed until " + e.At.UTC().Format(time.RFC3339Nano)
}

// Handler runs TypeDeliver tasks.
type Handler struct {
	D   *webhooks.Dispatcher
	Log *slog.Logger
}

// ProcessTask implements asynq.Handler.
func (h Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p payload
	var id uuid.UUID
	err := json.Unmarshal(t.Payload(), &p)
	if err == nil {
		id, err = uuid.Parse(p.DeliveryID)
	}
	if err != nil {
		h.Log.Warn("dropping a malformed webhook task", "task_type", t.Type())
		return nil
	}
	out := h.D.Deliver(ctx, id)
	switch out.Kind {
	case webhooks.Retry:
		return &DelayError{At: out.At, Counted: true}
	case webhooks.Requeue:
		return &DelayError{At: out.At}
	}
	return nil
}

// RetryDelay is asynq's RetryDelayFunc: the delay the dispatcher chose
// (exponential backoff with jitter, computed by the domain), rounded up to
// a whole second because asynq keeps due times in whole seconds, truncated:
// the task must never run before the delivery is due.
func RetryDelay(n int, err error, t *asynq.Task) time.Duration {
	var de *DelayError
	if errors.As(err, &de) {
		at := de.At
		if r := at.Truncate(time.Second); !r.Equal(at) {
			at = r.Add(time.Second)
		}
		return max(time.Until(at), 0)
	}
	// asynq's own errors (a lease that expired when a worker died).
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

// IsFailure is asynq's IsFailure: postponements are not failures.
func IsFailure(err error) bool {
	var de *DelayError
	if errors.As(err, &de) {
		return de.Counted
	}
	return true
}

// ServerConfig is the asynq server configuration of webhook-dispatch.
func ServerConfig(queue string, concurrency int, shutdown time.Duration, log *slog.Logger) asynq.Config {
	return asynq.Config{
		Concurrency:    concurrency,
		Queues:         map[string]int{queue: 1},
		RetryDelayFunc: RetryDelay,
		IsFailure:      IsFailure,
		// Idle polling and the move of due retries run often, so a delivery
		// waits milliseconds, not seconds, for a free worker or its retry.
		TaskCheckInterval:        20 * time.Millisecond,
		DelayedTaskCheckInterval: 250 * time.Millisecond,
		ShutdownTimeout:          shutdown,
		Logger:                   asynqadapter.Logger(log),
		LogLevel:                 asynqadapter.LogLevel(log),
	}
}
