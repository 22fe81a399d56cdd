package asynq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	asynqlib "github.com/hibiken/asynq"

	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
)

// Handler runs one task given its payload.
type Handler func(ctx context.Context, payload []byte) error

// WorkerOptions configure a Worker.
type WorkerOptions struct {
	// Concurrency is how many tasks run at once; ≤0 means 10.
	Concurrency int
	// PollInterval is how often an idle worker looks for tasks and how often
	// scheduled tasks that came due are made runnable; 0 means 1 s (asynq's
	// own default for the latter is 5 s, too coarse for retry timers).
	PollInterval time.Duration
	// ShutdownTimeout bounds the drain of running tasks; 0 means 20 s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Observe, when set, is called after every task (metrics).
	Observe func(taskType string, took time.Duration, err error)
}

// RetryAt is a handler's answer "not yet, run me again at At": the task is
// retried then, without counting as a failure.
type RetryAt struct{ At time.Time }

func (r *RetryAt) Error() string { return "not due until " + r.At.UTC().Format(time.RFC3339Nano) }

func retryAt(err error) (*RetryAt, bool) {
	var r *RetryAt
	ok := errors.As(err, &r)
	return r, ok
}

// Worker runs handlers for the tasks of one queue.
type Worker struct {
	srv     *asynqlib.Server
	mux     *asynqlib.ServeMux
	log     *slog.Logger
	observe func(string, time.Duration, error)
}

// NewWorker returns a worker on queue with its own Redis connections.
func NewWorker(opt asynqlib.RedisConnOpt, queue string, o WorkerOptions) *Worker {
	log := orDiscard(o.Logger)
	defaults.Set(&o.Concurrency, 10)
	defaults.Set(&o.PollInterval, time.Second)
	defaults.Set(&o.ShutdownTimeout, 20*time.Second)
	w := &Worker{mux: asynqlib.NewServeMux(), log: log, observe: o.Observe}
	w.srv = asynqlib.NewServer(opt, asynqlib.Config{
		Concurrency:              o.Concurrency,
		Queues:                   map[string]int{queue: 1},
		TaskCheckInterval:        o.PollInterval,
		DelayedTaskCheckInterval: o.PollInterval,
		ShutdownTimeout:          o.ShutdownTimeout,
		Logger:                   Logger(log),
		LogLevel:                 LogLevel(log),
		ErrorHandler: asynqlib.ErrorHandlerFunc(func(ctx context.Context, t *asynqlib.Task, err error) {
			if _, ok := retryAt(err); !ok {
				log.WarnContext(ctx, "task failed", "task", t.Type(), "error", err)
			}
		}),
		RetryDelayFunc: func(n int, err error, t *asynqlib.Task) time.Duration {
			if r, ok := retryAt(err); ok {
				return max(time.Until(r.At), 100*time.Millisecond)
			}
			return asynqlib.DefaultRetryDelayFunc(n, err, t)
		},
		IsFailure: func(err error) bool {
			_, deferred := retryAt(err)
			return !deferred
		},
	})
	return w
}

// Handle registers h for tasks of type typ. Panics in h fail the task
// instead of the process.
func (w *Worker) Handle(typ string, h Handler) {
	w.mux.HandleFunc(typ, func(ctx context.Context, t *asynqlib.Task) (err error) {
		ctx = taskContext(ctx, t)
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic in %s handler: %v", typ, r)
			}
			if w.observe != nil {
				w.observe(typ, time.Since(start), err)
			}
		}()
		return h(ctx, t.Payload())
	})
}

// Start begins processing in the background.
func (w *Worker) Start() error {
	if err := w.srv.Start(w.mux); err != nil {
		return fmt.Errorf("asynq worker: %w", err)
	}
	return nil
}

// Shutdown stops taking tasks and waits for running ones (up to the
// shutdown timeout; unfinished ones go back to the queue).
func (w *Worker) Shutdown() { w.srv.Shutdown() }

// Ping checks the worker's Redis connection (readiness).
func (w *Worker) Ping() error { return w.srv.Ping() }

// PeriodicTask is a task type enqueued every interval.
type PeriodicTask struct {
	Type  string
	Every time.Duration
}

// Periodic enqueues periodic tasks on a queue. The task list is read again
// every sync interval, so an interval changed by a config reload takes
// effect without a restart. Every replica runs one; duplicates are
// suppressed while a tick waits, and the handlers are safe to run
// concurrently anyway.
type Periodic struct {
	mgr   *asynqlib.PeriodicTaskManager
	kick  *Enqueuer
	tasks func() []PeriodicTask
	log   *slog.Logger
}

// taskProvider adapts a task list to asynq's config provider.
type taskProvider struct {
	queue string
	tasks func() []PeriodicTask
}

func (p taskProvider) GetConfigs() ([]*asynqlib.PeriodicTaskConfig, error) {
	var out []*asynqlib.PeriodicTaskConfig
	for _, t := range p.tasks() {
		if t.Every <= 0 {
			continue
		}
		out = append(out, &asynqlib.PeriodicTaskConfig{Cronspec: every(t.Every),
			Task: asynqlib.NewTask(t.Type, nil), Opts: periodicOpts(p.queue, t.Every)})
	}
	return out, nil
}

// NewPeriodic returns a periodic scheduler for queue. syncEvery is how often
// tasks() is read again; 0 means 10 s.
func NewPeriodic(opt asynqlib.RedisConnOpt, queue string, tasks func() []PeriodicTask, syncEvery time.Duration, log *slog.Logger) (*Periodic, error) {
	log = orDiscard(log)
	if syncEvery <= 0 {
		syncEvery = 10 * time.Second
	}
	mgr, err := asynqlib.NewPeriodicTaskManager(asynqlib.PeriodicTaskManagerOpts{
		PeriodicTaskConfigProvider: taskProvider{queue: queue, tasks: tasks},
		RedisConnOpt:               opt,
		SyncInterval:               syncEvery,
		SchedulerOpts: &asynqlib.SchedulerOpts{
			Logger:   Logger(log),
			LogLevel: LogLevel(log),
			PostEnqueueFunc: func(info *asynqlib.TaskInfo, err error) {
				if err != nil && !errors.Is(err, asynqlib.ErrDuplicateTask) {
					log.Warn("periodic task not enqueued", "error", err)
				}
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("asynq scheduler: %w", err)
	}
	return &Periodic{mgr: mgr, kick: NewEnqueuer(opt, queue, log), tasks: tasks, log: log}, nil
}

// Start runs each task once now, then on its interval.
func (p *Periodic) Start(ctx context.Context) error {
	for _, t := range p.tasks() {
		if t.Every <= 0 {
			continue
		}
		if err := p.kick.Enqueue(ctx, t.Type, t.Every); err != nil {
			p.log.WarnContext(ctx, "could not enqueue the first run of a periodic task", "task", t.Type, "error", err)
		}
	}
	if err := p.mgr.Start(); err != nil {
		return fmt.Errorf("asynq scheduler: %w", err)
	}
	return nil
}

// Shutdown stops enqueuing.
func (p *Periodic) Shutdown() {
	p.mgr.Shutdown()
	_ = p.kick.Close()
}
