package apitest

import (
	"log/slog"
	"testing"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// WithRetryTimer replaces the asynq enqueuer that arms work-order retry
// timers (e.g. with one that drops them, to exercise the sweep).
func WithRetryTimer(r workorders.RetryTimer) Option { return func(o *options) { o.retryTimer = r } }

// WithClock sets the clock schedules are created and shown against.
func WithClock(c workorders.Clock) Option { return func(o *options) { o.clock = c } }

// workOrderServices builds the work-order use cases on a queue of the
// test's own, so a scheduler started by the test (apitest.Env.Queue) sees
// this api's retry timers and no other test's.
func workOrderServices(t testing.TB, store *postgres.Store, o options, log *slog.Logger) (*workorders.Service, *workorders.Schedules, string) {
	t.Helper()
	queue := "brokkr_test_" + uuid.NewString()
	timer := o.retryTimer
	if timer == nil {
		conn, err := asynqadapter.ConnOpt(config.Redis{URL: RedisURL()})
		if err != nil {
			t.Fatal(err)
		}
		e := asynqadapter.NewEnqueuer(conn, queue, log)
		t.Cleanup(func() { _ = e.Close() })
		timer = e
	}
	clock := o.clock
	if clock == nil {
		clock = workorders.SystemClock{}
	}
	svc := workorders.NewService(postgres.WorkOrderRepos(store), timer)
	return svc, workorders.NewSchedules(postgres.ScheduleRepos(store), svc, clock, log), queue
}

// Redis returns a client on the test Redis, closed when t ends.
func Redis(t testing.TB) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
