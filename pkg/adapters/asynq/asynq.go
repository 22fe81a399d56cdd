// Package asynq is the asynq adapter (docs/architecture.md#layering: no asynq
// elsewhere except worker services): the task types Brokkr's queue carries, the
// enqueuer behind the work-order RetryTimer port, and the worker and periodic
// scheduler the work-order-scheduler runs. Redis only times work here;
// PostgreSQL stays the source of truth, and every task is idempotent and backed
// by a sweep, so a lost task delays work and never loses it.
package asynq

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	asynqlib "github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// Task types.
const (
	// TypeReleaseRetry releases one RETRY_PENDING order when its retry is due.
	TypeReleaseRetry = "workorder:release_retry"
	// TypeWorkOrderMaintenance expires stale claims and sweeps due retries.
	TypeWorkOrderMaintenance = "workorder:maintenance"
	// TypeScheduleTick evaluates the cron schedules.
	TypeScheduleTick = "workorder:schedule_tick"
	// TypeDiagnosticsCleanup expires and deletes diagnostic requests.
	TypeDiagnosticsCleanup = "maintenance:diagnostics"
	// TypeAuditRetention deletes audit entries past their retention.
	TypeAuditRetention = "maintenance:audit_retention"
	// TypeIdempotencyKeys deletes idempotency keys past their window.
	TypeIdempotencyKeys = "maintenance:idempotency_keys"
	// TypeTelemetrySweep deletes stack telemetry past its window and beyond
	// the per-stack row cap (docs/telemetry.md#retention).
	TypeTelemetrySweep = "maintenance:telemetry"
	// TypeRolloutAdvance advances every progressing rollout.
	TypeRolloutAdvance = "rollout:advance"
	// TypeRolloutWake advances one stack's rollout after an agent report
	// (payload WakePayload).
	TypeRolloutWake = "rollout:wake"
)

// WakePayload names the stack whose rollout a TypeRolloutWake advances.
type WakePayload struct {
	StackID string `json:"stack_id"`
}

// QueueName is the queue of one broker deployment: its database and
// schema. Tenants (and test stacks) sharing one Redis never take each
// other's tasks, because a task only means something to the database whose
// rows it names.
func QueueName(databaseURL, schema string) string {
	db := "brokkr"
	if u, err := url.Parse(databaseURL); err == nil && strings.Trim(u.Path, "/") != "" {
		db = strings.Trim(u.Path, "/")
	}
	q := "brokkr:" + db
	if schema != "" {
		q += "." + schema
	}
	return q
}

// ConnOpt is asynq's connection to the Redis the redis section describes
// (one server, Sentinel or Cluster), built from the same options as every
// other Redis client (redisadapter.Options); asynq then owns (and closes)
// its own connections.
func ConnOpt(cfg config.Redis) (asynqlib.RedisConnOpt, error) {
	o, err := redisadapter.Options(cfg)
	if err != nil {
		return nil, err
	}
	return connOpt{o}, nil
}

// connOpt hands asynq a go-redis universal client. asynq's own
// RedisFailoverClientOpt and RedisClusterClientOpt would drop options
// (sentinel TLS, pool sizes, unix sockets); asynq accepts any
// RedisConnOpt whose client is a redis.UniversalClient.
type connOpt struct{ o *goredis.UniversalOptions }

func (c connOpt) MakeRedisClient() any {
	o := *c.o
	return goredis.NewUniversalClient(&o)
}

// RetryPayload names the retry a TypeReleaseRetry task releases.
type RetryPayload struct {
	WorkOrderID string `json:"work_order_id"`
	RetryCount  int    `json:"retry_count"`
}

// newTask builds a task whose headers carry the caller's trace context, so
// a trace continues from the api request into the worker.
func newTask(ctx context.Context, typ string, payload []byte) *asynqlib.Task {
	h := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, h)
	return asynqlib.NewTaskWithHeaders(typ, payload, h)
}

// taskContext restores the trace context a task carries.
func taskContext(ctx context.Context, t *asynqlib.Task) context.Context {
	return otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(t.Headers()))
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("asynq: marshal %T: %v", v, err)) // plain structs always marshal
	}
	return b
}

// Logger routes an asynq server's own log lines to log, tagged
// component=asynq; every asynq server in Brokkr (this package's Worker and
// webhook-dispatch's queue) logs through it.
func Logger(log *slog.Logger) asynqlib.Logger { return slogLogger{log: orDiscard(log)} }

// slogLogger routes asynq's logs to slog.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) emit(level slog.Level, args []any) {
	l.log.Log(context.Background(), level, strings.TrimSpace(fmt.Sprint(args...)), "component", "asynq")
}

func (l slogLogger) Debug(args ...any) { l.emit(slog.LevelDebug, args) }
func (l slogLogger) Info(args ...any)  { l.emit(slog.LevelInfo, args) }
func (l slogLogger) Warn(args ...any)  { l.emit(slog.LevelWarn, args) }
func (l slogLogger) Error(args ...any) { l.emit(slog.LevelError, args) }

// Fatal is logged as an error: asynq's own code never calls it, and a
// library must not end the process.
func (l slogLogger) Fatal(args ...any) { l.emit(slog.LevelError, args) }

// LogLevel is the asynq log level that follows log's, never below info:
// asynq's debug output is a line per poll.
func LogLevel(log *slog.Logger) asynqlib.LogLevel {
	if log.Enabled(context.Background(), slog.LevelInfo) {
		return asynqlib.InfoLevel
	}
	return asynqlib.WarnLevel
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// every renders an interval as an asynq (robfig/cron) spec; cron cannot go
// below one second.
func every(d time.Duration) string {
	if d < time.Second {
		d = time.Second
	}
	return "@every " + d.Truncate(time.Second).String()
}
