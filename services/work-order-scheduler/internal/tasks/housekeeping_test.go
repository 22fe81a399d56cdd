package tasks

import (
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func (e *env) oldAudit(n int, age time.Duration) {
	e.t.Helper()
	if _, err := e.store.DB().ExecContext(e.ctx, `INSERT INTO audit_logs (actor_type, action, resource_type, created_at, timestamp)
		SELECT 'system', 'test.old', 'test', now() - make_interval(secs => $2), now() - make_interval(secs => $2)
		FROM generate_series(1, $1)`, n, age.Seconds()); err != nil {
		e.t.Fatal(err)
	}
}

// TestAuditRetentionWithHotReloadedInterval: entries older than
// broker.audit_log_retention_days go, recent ones stay; the pass runs at
// start-up and then every scheduler.audit_cleanup_interval_seconds, read
// from the live settings, so a reloaded interval applies without a restart.
func TestAuditRetentionWithHotReloadedInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setSettings(func(c *config.Settings) {
		c.Broker.AuditLogRetentionDays = 30
		c.Scheduler.AuditCleanupIntervalSeconds = 3600
	})
	old := `SELECT count(*) FROM audit_logs WHERE action = 'test.old' AND created_at < now() - interval '30 days'`
	e.oldAudit(7, 31*24*time.Hour)
	e.oldAudit(3, 29*24*time.Hour) // inside the retention
	r := e.startReplica()
	e.eventually(10*time.Second, "start-up purge", func() bool { return e.count(old) == 0 })
	if n := e.count(`SELECT count(*) FROM audit_logs WHERE action = 'test.old'`); n != 3 {
		t.Fatalf("%d recent entries left, want 3", n)
	}

	// Hourly now: new old entries survive the next ticks...
	e.oldAudit(5, 40*24*time.Hour)
	e.waitTicks(3, r)
	if n := e.count(old); n != 5 {
		t.Fatalf("purged outside its interval: %d left, want 5", n)
	}
	// ...until the interval is reloaded to 1 s.
	e.setSettings(func(c *config.Settings) { c.Scheduler.AuditCleanupIntervalSeconds = 1 })
	e.eventually(10*time.Second, "purge after the reload", func() bool { return e.count(old) == 0 })
}

// TestDiagnosticsExpiry: overdue requests expire, old finished ones are
// deleted, live ones stay; without the diagnostics tables the pass is a
// no-op.
func TestDiagnosticsExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("diag-a")
	st := stack.Stack{Name: "diag"}
	if err := postgres.NewStacks(e.store).CreateStack(e.ctx, &st); err != nil {
		t.Fatal(err)
	}
	obj := stack.DeploymentObject{StackID: st.ID, YAMLContent: "kind: ConfigMap\n", YAMLChecksum: stack.Checksum("kind: ConfigMap\n")}
	if err := postgres.NewDeploymentObjects(e.store).CreateDeploymentObject(e.ctx, &obj); err != nil {
		t.Fatal(err)
	}
	insert := func(status, expires, completed string) string {
		var id string
		if err := e.store.DB().GetContext(e.ctx, &id, `INSERT INTO diagnostic_requests
			(agent_id, deployment_object_id, status, expires_at, completed_at)
			VALUES ($1, $2, $3, now() + $4::interval, now() + $5::interval) RETURNING id::text`,
			a, obj.ID, status, expires, completed); err != nil {
			t.Fatal(err)
		}
		return id
	}
	overdue := insert("pending", "-1 minute", "0")
	claimedOverdue := insert("claimed", "-1 minute", "0")
	live := insert("pending", "1 hour", "0")
	oldDone := insert("completed", "-3 hours", "-2 hours")
	freshDone := insert("completed", "-3 hours", "-5 minutes")
	e.startReplica() // the pass runs once at start-up

	status := func(id string) string {
		var s string
		if err := e.store.DB().GetContext(e.ctx, &s, `SELECT COALESCE((SELECT status FROM diagnostic_requests WHERE id = $1), 'deleted')`, id); err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.eventually(10*time.Second, "diagnostics pass", func() bool { return status(oldDone) == "deleted" })
	for id, want := range map[string]string{overdue: "expired", claimedOverdue: "expired", live: "pending", freshDone: "completed"} {
		if got := status(id); got != want {
			t.Errorf("request %s: %s, want %s", id, got, want)
		}
	}

	if _, err := e.store.DB().ExecContext(e.ctx, `DROP TABLE diagnostic_results, diagnostic_requests`); err != nil {
		t.Fatal(err)
	}
	res, err := housekeeping.NewService(postgres.HousekeepingRepos(e.store), Retention(func() config.Settings { return *e.settings.Load() })).ExpireDiagnostics(e.ctx)
	if err != nil || !res.Skipped {
		t.Fatalf("without tables: %+v %v", res, err)
	}
}

// TestIdempotencyKeysSweep: the periodic maintenance deletes idempotency
// keys older than broker.idempotency_key_ttl_hours and keeps younger ones.
func TestIdempotencyKeysSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setSettings(func(c *config.Settings) {
		c.Broker.IdempotencyKeyTTLHours = 24
		c.Scheduler.MaintenanceIntervalSeconds = 1
	})
	insert := func(key string, age time.Duration) {
		if _, err := e.store.DB().ExecContext(e.ctx, `INSERT INTO idempotency_keys
			(scope, key, fingerprint, method, path, status_code, body, created_at)
			VALUES ('admin', $1, '\x00', 'POST', '/api/v1/stacks', 200, '\x00', now() - make_interval(secs => $2))`,
			key, age.Seconds()); err != nil {
			t.Fatal(err)
		}
	}
	insert("old-1", 25*time.Hour)
	insert("old-2", 72*time.Hour)
	insert("young", 23*time.Hour)
	e.startReplica()
	e.eventually(10*time.Second, "sweep of expired keys", func() bool {
		return e.count(`SELECT count(*) FROM idempotency_keys WHERE key LIKE 'old-%'`) == 0
	})
	if n := e.count(`SELECT count(*) FROM idempotency_keys WHERE key = 'young'`); n != 1 {
		t.Fatalf("a key inside the window was deleted")
	}
}
