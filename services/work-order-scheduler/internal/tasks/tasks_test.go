package tasks

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// waitReleased polls until the order is PENDING again and returns when that
// was first seen.
func (e *env) waitReleased(id uuid.UUID, timeout time.Duration) time.Time {
	e.t.Helper()
	var at time.Time
	e.eventually(timeout, "release of "+id.String(), func() bool {
		if e.get(id).Status == workorder.StatusPending {
			at = time.Now()
			return true
		}
		return false
	})
	return at
}

// TestRetryPathThroughAsynq: failure → RETRY_PENDING → PENDING at about
// 2^n × backoff (released by the api's asynq timer, not the sweep) → claim
// → ... → exhausted → log. The replica is stopped while retry 2 waits and a
// new one started: the timer survives in Redis and nothing is lost.
func TestRetryPathThroughAsynq(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Only the timer may release: the sweep runs once at start, then hourly.
	e.setSettings(func(c *config.Settings) { c.Scheduler.MaintenanceIntervalSeconds = 3600 })
	a := e.agent("retry-a")
	w := e.order(a, 2, 1, 3600)
	r1 := e.startReplica()

	e.claim(w.ID, a)
	c := e.fail(w.ID, a)
	if c.Retry == nil || c.Retry.RetryCount != 1 {
		t.Fatalf("first failure: %+v", c)
	}
	due := *c.Retry.NextRetryAfter
	released := e.waitReleased(w.ID, 10*time.Second)
	if released.Before(due) {
		t.Fatalf("released at %v, before next_retry_after %v", released, due)
	}
	if late := released.Sub(due); late > 2500*time.Millisecond {
		t.Fatalf("released %v after it was due (the timer fires on the next whole second plus a poll)", late)
	}
	if g := e.get(w.ID); g.NextRetryAfter != nil || g.RetryCount != 1 {
		t.Fatalf("released order: %+v", g)
	}

	// Retry 2 waits 4 s. Stop the replica meanwhile; a new one picks the
	// timer up from Redis.
	e.claim(w.ID, a)
	c = e.fail(w.ID, a)
	due = *c.Retry.NextRetryAfter
	if wait := time.Until(due); wait < 3*time.Second || wait > 4500*time.Millisecond {
		t.Fatalf("second retry due in %v, want about 4s", wait)
	}
	r1.stop()
	if e.get(w.ID).Status != workorder.StatusRetryPending {
		t.Fatal("released while no scheduler ran")
	}
	e.startReplica()
	released = e.waitReleased(w.ID, 10*time.Second)
	if released.Before(due) || released.Sub(due) > 2500*time.Millisecond {
		t.Fatalf("after the restart: released at %v, due %v", released, due)
	}

	// Third failure exceeds max_retries=2: to the log, success=false.
	e.claim(w.ID, a)
	c = e.fail(w.ID, a)
	if c.Log == nil || c.Log.Success || c.Log.RetriesAttempted != 2 || *c.Log.ResultMessage != "connection refused" {
		t.Fatalf("exhausted: %+v", c)
	}
	if g := e.get(w.ID); g.Status != workorder.StatusFailed {
		t.Fatalf("after exhaustion: %+v", g)
	}
	if n := e.count(`SELECT count(*) FROM outbox_events WHERE event_type = 'workorder.retry_scheduled'`); n != 2 {
		t.Fatalf("%d retry_scheduled events, want 2", n)
	}
}

// TestSweepReleasesRetriesWhoseTimerWasLost: with no timer in Redis (lost,
// or never armed), the periodic sweep still releases a due retry.
func TestSweepReleasesRetriesWhoseTimerWasLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withoutTimers())
	a := e.agent("sweep-a")
	w := e.order(a, 3, 1, 3600)
	r := e.startReplica()
	e.claim(w.ID, a)
	due := *e.fail(w.ID, a).Retry.NextRetryAfter
	released := e.waitReleased(w.ID, 10*time.Second)
	if released.Before(due) {
		t.Fatalf("swept at %v, before it was due at %v", released, due)
	}
	// The sweep counts what it released just after its commit, which the
	// status poll above may see first.
	e.eventually(5*time.Second, "the sweep's released counter", func() bool { return testutilSum(r, "sweep") >= 1 })
	if n := testutilSum(r, "sweep"); n != 1 {
		t.Fatalf("sweep released %v orders, want 1", n)
	}
}

func testutilSum(r *replica, path string) float64 {
	return counterValue(r.metrics.released.WithLabelValues(path))
}

// TestStaleClaimExpiresAndCountsAsRetry: the claiming agent dies; after
// claim_timeout_seconds its claim is released as a failed, retryable
// attempt; once retries are exhausted the order lands in the log, so work
// that crashes its agent cannot loop forever
// (docs/work-orders.md#stale-claims).
func TestStaleClaimExpiresAndCountsAsRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("stale-a")
	w := e.order(a, 1, 1, 1)
	e.startReplica()

	e.claim(w.ID, a) // ... and the agent is killed
	claimedAt := time.Now()
	e.eventually(10*time.Second, "claim expiry", func() bool { return e.get(w.ID).Status != workorder.StatusClaimed })
	if since := time.Since(claimedAt); since < time.Second {
		t.Fatalf("claim released after %v, before its 1 s timeout", since)
	}
	g := e.get(w.ID)
	if g.RetryCount != 1 || g.LastError == nil || !strings.Contains(*g.LastError, "Claim expired: agent "+a.String()) {
		t.Fatalf("expired claim did not count as a failed attempt: %+v", g)
	}
	// It takes the retry path: released after 2^1 × 1 s, claimable again.
	e.waitReleased(w.ID, 10*time.Second)
	e.claim(w.ID, a)
	// The second expiry exhausts max_retries=1: to the log.
	e.eventually(10*time.Second, "second expiry", func() bool { return e.get(w.ID).Status == workorder.StatusFailed })
	l, err := e.api.LogEntry(e.ctx, identity.Admin, w.ID)
	if err != nil || l.Success || l.RetriesAttempted != 1 || l.ClaimedBy == nil || *l.ClaimedBy != a ||
		!strings.Contains(*l.ResultMessage, "Claim expired") {
		t.Fatalf("log: %+v %v", l, err)
	}
	if n := e.count(`SELECT count(*) FROM audit_logs WHERE action = 'workorder.claim_expired' AND actor_type = 'system' AND resource_id = $1`, w.ID); n != 1 {
		t.Fatalf("%d claim_expired audit entries, want 1 (the second expiry is a workorder.failed)", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_logs WHERE action = 'workorder.failed' AND actor_type = 'system' AND resource_id = $1`, w.ID); n != 1 {
		t.Fatalf("%d failed audit entries by system, want 1", n)
	}
}

// TestProgressKeepsAClaimAlive: claim_timeout_seconds counts from the latest
// progress report, so a long task that reports is not released.
func TestProgressKeepsAClaimAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.agent("progress-a")
	w := e.order(a, 3, 1, 2)
	r := e.startReplica()
	e.claim(w.ID, a)
	msg := "building"
	stop := time.Now().Add(4 * time.Second)
	for time.Now().Before(stop) {
		if _, err := e.api.Progress(e.ctx, identity.Agent(a), w.ID, workorders.ProgressInput{Message: &msg}); err != nil {
			t.Fatalf("progress: %v (claim lost while reporting)", err)
		}
		time.Sleep(500 * time.Millisecond) // the agent's reporting cadence, not synchronisation
	}
	if counterValue(r.metrics.expired) != 0 || e.get(w.ID).Status != workorder.StatusClaimed {
		t.Fatal("a claim with fresh progress was expired")
	}
	// The agent goes quiet: the claim expires about 2 s after the last report.
	e.eventually(10*time.Second, "expiry after silence", func() bool { return e.get(w.ID).Status == workorder.StatusRetryPending })
}
