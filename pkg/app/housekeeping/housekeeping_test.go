package housekeeping_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
)

// purger deletes from a pile of n rows in batches, recording each call.
type purger struct {
	left    int
	cutoffs []time.Time
	batches []int
	err     error
}

func (p *purger) purge(_ context.Context, cutoff time.Time, batch int) (int, error) {
	p.cutoffs, p.batches = append(p.cutoffs, cutoff), append(p.batches, batch)
	if p.err != nil {
		return 0, p.err
	}
	n := min(p.left, batch)
	p.left -= n
	return n, nil
}

type audits struct{ *purger }

func (a audits) PurgeAuditLogs(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	return a.purge(ctx, cutoff, batch)
}

type keys struct{ *purger }

func (k keys) PurgeIdempotencyKeys(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	return k.purge(ctx, cutoff, batch)
}

type diagnostics struct {
	maxAge  time.Duration
	present bool
}

func (d *diagnostics) ExpireDiagnostics(_ context.Context, maxAge time.Duration) (int, int, bool, error) {
	d.maxAge = maxAge
	if !d.present {
		return 0, 0, false, nil
	}
	return 2, 3, true, nil
}

func TestPurges(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name      string
		rows      int
		keep      time.Duration
		wantN     int
		wantCalls int
	}{
		{"nothing to do", 0, time.Hour, 0, 1},
		{"under one batch", 10, time.Hour, 10, 1},
		{"exactly one batch needs a second, empty pass", 5000, time.Hour, 5000, 2},
		{"several batches", 12000, time.Hour, 12000, 3},
		{"retention off keeps everything", 100, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, k := &purger{left: tc.rows}, &purger{left: tc.rows}
			svc := housekeeping.NewService(housekeeping.Repos{Audit: audits{a}, Idempotency: keys{k}},
				func() housekeeping.Retention {
					return housekeeping.Retention{AuditLog: tc.keep, IdempotencyKeys: tc.keep}
				})
			before := time.Now()
			n, err := svc.PurgeAuditLogs(ctx)
			if err != nil || n != tc.wantN || len(a.batches) != tc.wantCalls {
				t.Fatalf("audit: %d rows in %d calls, %v; want %d in %d", n, len(a.batches), err, tc.wantN, tc.wantCalls)
			}
			n, err = svc.PurgeIdempotencyKeys(ctx)
			if err != nil || n != tc.wantN || len(k.batches) != tc.wantCalls {
				t.Fatalf("keys: %d rows in %d calls, %v", n, len(k.batches), err)
			}
			after := time.Now()
			for _, c := range a.cutoffs {
				if c.Before(before.Add(-tc.keep)) || c.After(after.Add(-tc.keep)) {
					t.Fatalf("cutoff %v is not retention %v before now", c, tc.keep)
				}
			}
		})
	}
}

func TestPurgeStopsOnError(t *testing.T) {
	boom := errors.New("db down")
	a := &purger{left: 100, err: boom}
	svc := housekeeping.NewService(housekeeping.Repos{Audit: audits{a}},
		func() housekeeping.Retention { return housekeeping.Retention{AuditLog: time.Hour} })
	if _, err := svc.PurgeAuditLogs(context.Background()); !errors.Is(err, boom) || len(a.batches) != 1 {
		t.Fatalf("%v after %d calls", err, len(a.batches))
	}
}

func TestExpireDiagnostics(t *testing.T) {
	for _, present := range []bool{true, false} {
		d := &diagnostics{present: present}
		svc := housekeeping.NewService(housekeeping.Repos{Diagnostics: d},
			func() housekeeping.Retention { return housekeeping.Retention{DiagnosticMaxAge: 7 * time.Hour} })
		res, err := svc.ExpireDiagnostics(context.Background())
		if err != nil || d.maxAge != 7*time.Hour || res.Skipped == present {
			t.Fatalf("present=%v: %+v, max age %v, %v", present, res, d.maxAge, err)
		}
		if present && (res.Expired != 2 || res.Deleted != 3) {
			t.Fatalf("counts %+v", res)
		}
	}
}
