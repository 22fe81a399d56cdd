package workorder

import (
	"errors"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustCron(t *testing.T, expr, zone string) Cron {
	t.Helper()
	c, err := ParseCron(expr, zone)
	if err != nil {
		t.Fatalf("ParseCron(%q, %q): %v", expr, zone, err)
	}
	return c
}

func TestParseCronAcceptsFiveAndSixFieldsAndDescriptors(t *testing.T) {
	after := ts("2026-03-01T10:00:00Z")
	for expr, want := range map[string]string{
		"*/5 * * * *":       "2026-03-01T10:05:00Z", // standard, minute precision
		"*/30 * * * * *":    "2026-03-01T10:00:30Z", // leading seconds field
		"*/1 * * * * *":     "2026-03-01T10:00:01Z",
		"0 3 * * *":         "2026-03-02T03:00:00Z",
		"@hourly":           "2026-03-01T11:00:00Z",
		"@every 90s":        "2026-03-01T10:01:30Z",
		"0 0 1 1 *":         "2027-01-01T00:00:00Z",
		"15 10 * * MON-FRI": "2026-03-02T10:15:00Z", // 2026-03-01 is a Sunday
	} {
		if got := mustCron(t, expr, "").Next(after); !got.Equal(ts(want)) {
			t.Errorf("%q: next %v, want %s", expr, got, want)
		}
	}
}

func TestParseCronRejects(t *testing.T) {
	for _, c := range []struct{ expr, zone string }{
		{"", ""}, {"* * *", ""}, {"61 * * * *", ""}, {"* * * * * * *", ""}, {"@fortnightly", ""},
		{"CRON_TZ=UTC * * * * *", ""}, {"* * * * *", "Mars/Olympus"}, {"* * * * *", "Local"},
	} {
		if _, err := ParseCron(c.expr, c.zone); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("ParseCron(%q, %q) = %v, want a 400", c.expr, c.zone, err)
		}
	}
}

func TestCronTimeZone(t *testing.T) {
	// 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
	c := mustCron(t, "0 9 * * *", "Europe/Berlin")
	if got := c.Next(ts("2026-01-10T00:00:00Z")); !got.Equal(ts("2026-01-10T08:00:00Z")) {
		t.Errorf("winter: %v", got)
	}
	if got := c.Next(ts("2026-07-10T00:00:00Z")); !got.Equal(ts("2026-07-10T07:00:00Z")) {
		t.Errorf("summer: %v", got)
	}
	if got := c.Next(ts("2026-07-10T00:00:00Z")); got.Location() != time.UTC {
		t.Errorf("Next should answer in UTC, got %v", got.Location())
	}
}

func TestLatestDueCollapsesMissedWindowsIntoTheLatest(t *testing.T) {
	cases := []struct {
		expr, after, now string
		want             string // "" = nothing due
	}{
		{"* * * * *", "2026-03-01T10:00:00Z", "2026-03-01T10:00:59Z", ""},
		{"* * * * *", "2026-03-01T10:00:00Z", "2026-03-01T10:01:00Z", "2026-03-01T10:01:00Z"},
		// Ten minutes of downtime: one fire, for the latest window.
		{"* * * * *", "2026-03-01T10:00:00Z", "2026-03-01T10:10:30Z", "2026-03-01T10:10:00Z"},
		// A day of a per-second schedule.
		{"*/1 * * * * *", "2026-03-01T10:00:00Z", "2026-03-02T10:00:00.5Z", "2026-03-02T10:00:00Z"},
		// A yearly schedule whose window passed months ago.
		{"0 0 1 1 *", "2025-06-01T00:00:00Z", "2026-05-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		// Windows only inside one hour a day, outage across several days.
		{"*/10 * 10 * * *", "2026-03-01T09:00:00Z", "2026-03-04T15:00:00Z", "2026-03-04T10:59:50Z"},
		// @every counts from the anchor.
		{"@every 1h", "2026-03-01T10:17:00Z", "2026-03-01T13:20:00Z", "2026-03-01T13:17:00Z"},
		{"@every 1h", "2026-03-01T10:17:00Z", "2026-03-01T11:16:59Z", ""},
	}
	for _, c := range cases {
		now, err := time.Parse(time.RFC3339Nano, c.now)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := mustCron(t, c.expr, "").LatestDue(ts(c.after), now)
		switch {
		case c.want == "" && ok:
			t.Errorf("%q after %s at %s: due %v, want nothing", c.expr, c.after, c.now, got)
		case c.want != "" && (!ok || !got.Equal(ts(c.want))):
			t.Errorf("%q after %s at %s: due %v (%v), want %s", c.expr, c.after, c.now, got, ok, c.want)
		}
	}
}

func TestLatestDueMatchesAStepByStepWalk(t *testing.T) {
	// Cross-check the look-back search against walking every window.
	after := ts("2026-02-27T22:13:00Z")
	for _, expr := range []string{"*/7 * * * *", "0 */5 * * *", "30 2 * * 1", "*/13 * 3 * * *", "0 0 29 2 *"} {
		c := mustCron(t, expr, "America/New_York")
		for _, d := range []time.Duration{time.Minute, 37 * time.Minute, 9 * time.Hour, 80 * time.Hour, 24 * 400 * time.Hour} {
			now := after.Add(d)
			want, wantOK := time.Time{}, false
			for n := c.Next(after); !n.IsZero() && !n.After(now); n = c.Next(n) {
				want, wantOK = n, true
			}
			got, ok := c.LatestDue(after, now)
			if ok != wantOK || !got.Equal(want) {
				t.Errorf("%q +%v: got %v %v, want %v %v", expr, d, got, ok, want, wantOK)
			}
		}
	}
}

func TestScheduleSpecValidate(t *testing.T) {
	now := ts("2026-03-01T10:00:00Z")
	base := ScheduleSpec{Name: "nightly", CronExpression: "0 3 * * *",
		Template:  Template{WorkType: "custom", YAMLContent: "kind: Job\n", BackoffSeconds: 60, ClaimTimeoutSeconds: 60},
		Targeting: Targeting{Labels: []string{"builder"}}}
	ok := base
	if err := ok.Validate(now); err != nil {
		t.Fatal(err)
	}
	if ok.ConcurrencyPolicy != PolicyForbid || ok.TimeZone != "UTC" {
		t.Fatalf("defaults: %+v", ok)
	}
	p := base
	p.ConcurrencyPolicy = "replace"
	if err := p.Validate(now); err != nil || p.ConcurrencyPolicy != PolicyReplace {
		t.Fatalf("policy: %v %q", err, p.ConcurrencyPolicy)
	}
	for name, f := range map[string]func(*ScheduleSpec){
		"name":   func(s *ScheduleSpec) { s.Name = " " },
		"policy": func(s *ScheduleSpec) { s.ConcurrencyPolicy = "Sometimes" },
		"cron":   func(s *ScheduleSpec) { s.CronExpression = "nope" },
		"never":  func(s *ScheduleSpec) { s.CronExpression = "0 0 30 2 *" }, // 30 February
		"target": func(s *ScheduleSpec) { s.Targeting = Targeting{} },
		"tmpl":   func(s *ScheduleSpec) { s.Template.WorkType = "" },
	} {
		s := base
		f(&s)
		if err := s.Validate(now); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want a 400", name, err)
		}
	}
}

func TestScheduleFromIsTheLaterOfAnchorAndLastFire(t *testing.T) {
	a, l := ts("2026-03-01T10:00:00Z"), ts("2026-03-01T11:00:00Z")
	if got := (Schedule{AnchorAt: a}).From(); !got.Equal(a) {
		t.Error(got)
	}
	if got := (Schedule{AnchorAt: a, LastScheduledAt: &l}).From(); !got.Equal(l) {
		t.Error(got)
	}
	// Re-enabled after the last fire: the anchor wins.
	if got := (Schedule{AnchorAt: l, LastScheduledAt: &a}).From(); !got.Equal(l) {
		t.Error(got)
	}
}
