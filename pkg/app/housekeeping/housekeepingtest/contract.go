package housekeepingtest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
)

// Fixtures builds and inspects the rows housekeeping works on.
type Fixtures interface {
	AuditEntry(t *testing.T, createdAt time.Time)
	AuditCount(t *testing.T) int
	DiagnosticRequest(t *testing.T, status string, createdAt, expiresAt time.Time, completedAt *time.Time) uuid.UUID
	// DiagnosticStatus returns a request's status; ok is false once deleted.
	DiagnosticStatus(t *testing.T, id uuid.UUID) (status string, ok bool)
}

// Subject is one implementation of the housekeeping ports.
type Subject struct {
	Diagnostics housekeeping.DiagnosticsExpirer
	Audit       housekeeping.AuditPurger
	Fixtures    Fixtures
}

// RunHousekeepingContract checks what every implementation deletes and
// keeps; newSubject returns a fresh, empty one.
func RunHousekeepingContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	now := time.Now().UTC()

	t.Run("audit purge: older than the cutoff only, at most batch per call", func(t *testing.T) {
		sub := newSubject(t)
		for i := range 5 {
			sub.Fixtures.AuditEntry(t, now.Add(-time.Duration(48+i)*time.Hour))
		}
		sub.Fixtures.AuditEntry(t, now.Add(-time.Hour))
		cutoff := now.Add(-24 * time.Hour)
		if n, err := sub.Audit.PurgeAuditLogs(ctx, cutoff, 3); err != nil || n != 3 {
			t.Fatalf("first batch: %d, %v", n, err)
		}
		if n, err := sub.Audit.PurgeAuditLogs(ctx, cutoff, 3); err != nil || n != 2 {
			t.Fatalf("second batch: %d, %v", n, err)
		}
		if n, _ := sub.Audit.PurgeAuditLogs(ctx, cutoff, 3); n != 0 {
			t.Fatalf("third batch deleted %d", n)
		}
		if c := sub.Fixtures.AuditCount(t); c != 1 {
			t.Fatalf("%d entries left, want the recent one", c)
		}
	})

	t.Run("diagnostics: overdue requests expire, old finished ones go, the rest stay", func(t *testing.T) {
		sub := newSubject(t)
		f := sub.Fixtures
		long := now.Add(-72 * time.Hour)
		overduePending := f.DiagnosticRequest(t, "pending", now.Add(-time.Hour), now.Add(-time.Minute), nil)
		overdueClaimed := f.DiagnosticRequest(t, "claimed", now.Add(-time.Hour), now.Add(-time.Minute), nil)
		live := f.DiagnosticRequest(t, "pending", now, now.Add(time.Hour), nil)
		oldDone := f.DiagnosticRequest(t, "completed", long, long.Add(time.Hour), &long)
		recentDone := f.DiagnosticRequest(t, "completed", now.Add(-time.Hour), now.Add(time.Hour), &now)
		oldExpired := f.DiagnosticRequest(t, "expired", long, long, nil)
		expired, deleted, present, err := sub.Diagnostics.ExpireDiagnostics(ctx, 24*time.Hour)
		if err != nil || !present || expired != 2 || deleted != 2 {
			t.Fatalf("expired %d, deleted %d, present %v, %v", expired, deleted, present, err)
		}
		for id, want := range map[uuid.UUID]string{overduePending: "expired", overdueClaimed: "expired", live: "pending",
			recentDone: "completed"} {
			if got, ok := f.DiagnosticStatus(t, id); !ok || got != want {
				t.Fatalf("request %v: %q (present %v), want %q", id, got, ok, want)
			}
		}
		for _, id := range []uuid.UUID{oldDone, oldExpired} {
			if _, ok := f.DiagnosticStatus(t, id); ok {
				t.Fatalf("request %v was not deleted", id)
			}
		}
	})
}
