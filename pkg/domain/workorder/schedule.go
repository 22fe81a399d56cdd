package workorder

import (
	"fmt"
	"strings"
	"time"
	// Zone data is embedded so schedules in any IANA zone work on images
	// without /usr/share/zoneinfo (distroless).
	_ "time/tzdata"

	"github.com/google/uuid"
	"github.com/robfig/cron/v3"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// Concurrency policies, as Kubernetes CronJobs name them: what a fire does
// while an earlier order of the same schedule is still open (not yet in the
// log).
const (
	// PolicyForbid skips the fire (the default).
	PolicyForbid = "Forbid"
	// PolicyAllow creates the order anyway.
	PolicyAllow = "Allow"
	// PolicyReplace cancels the open orders, then creates the new one.
	PolicyReplace = "Replace"
)

// NormalizePolicy accepts a policy in any case; "" means Forbid.
func NormalizePolicy(p string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "", "forbid":
		return PolicyForbid, nil
	case "allow":
		return PolicyAllow, nil
	case "replace":
		return PolicyReplace, nil
	}
	return "", domain.Invalid("concurrency_policy must be Forbid, Allow or Replace")
}

// Schedule fires a work order built from its template each time its cron
// expression matches, in its time zone.
type Schedule struct {
	ID                uuid.UUID `json:"id"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	Name              string    `json:"name"`
	Description       *string   `json:"description"`
	CronExpression    string    `json:"cron_expression"`
	TimeZone          string    `json:"time_zone"`
	Enabled           bool      `json:"enabled"`
	ConcurrencyPolicy string    `json:"concurrency_policy"`
	Template
	Targeting Targeting `json:"targeting"`
	// AnchorAt: no window at or before it fires (creation, enabling and a
	// change of expression or zone move it to "now").
	AnchorAt time.Time `json:"-"`
	// LastScheduledAt is the window most recently fired or skipped.
	LastScheduledAt *time.Time `json:"last_scheduled_at"`
	// NextRunAt is computed on read: the window the scheduler fires next
	// (in the past when it is due now); null while disabled.
	NextRunAt *time.Time `json:"next_run_at"`
}

// From is the instant after which the next window lies.
func (s Schedule) From() time.Time {
	if s.LastScheduledAt != nil && s.LastScheduledAt.After(s.AnchorAt) {
		return *s.LastScheduledAt
	}
	return s.AnchorAt
}

// Run statuses.
const (
	RunCreated = "created"
	RunSkipped = "skipped"
)

// Run records one fired window of a schedule.
type Run struct {
	ID          uuid.UUID  `json:"id"`
	ScheduleID  uuid.UUID  `json:"schedule_id"`
	ScheduledAt time.Time  `json:"scheduled_at"`
	CreatedAt   time.Time  `json:"created_at"`
	Status      string     `json:"status"`
	WorkOrderID *uuid.UUID `json:"work_order_id"`
	Message     *string    `json:"message"`
}

// cronParser accepts the standard 5 fields, 6 with leading seconds, and the
// descriptors (@hourly, @every 90s, …).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// MaxCronLen is the cron_expression column limit.
const MaxCronLen = 255

// Cron is a parsed cron expression bound to a time zone.
type Cron struct {
	sched cron.Schedule
	loc   *time.Location
}

// ParseCron validates expr and zone ("" means UTC). Zones are IANA names;
// "Local" is refused because it would depend on the scheduler's host.
func ParseCron(expr, zone string) (Cron, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return Cron{}, domain.Invalid("cron_expression cannot be empty")
	case len(expr) > MaxCronLen:
		return Cron{}, domain.Invalid(fmt.Sprintf("cron_expression cannot exceed %d characters", MaxCronLen))
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return Cron{}, domain.Invalid("cron_expression must not carry a time zone; use time_zone")
	}
	loc, err := LoadZone(zone)
	if err != nil {
		return Cron{}, err
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return Cron{}, domain.Invalid("Invalid cron_expression: " + err.Error())
	}
	return Cron{sched: s, loc: loc}, nil
}

// LoadZone resolves a time_zone value; "" is UTC.
func LoadZone(zone string) (*time.Location, error) {
	zone = strings.TrimSpace(zone)
	if zone == "" {
		return time.UTC, nil
	}
	if strings.EqualFold(zone, "local") || len(zone) > 64 {
		return nil, domain.Invalid("time_zone must be an IANA time zone name such as UTC or Europe/Berlin")
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, domain.Invalid(fmt.Sprintf("Unknown time_zone %q", zone))
	}
	return loc, nil
}

// Next is the first window strictly after t (zero when there is none
// within five years).
func (c Cron) Next(t time.Time) time.Time {
	n := c.sched.Next(t.In(c.loc))
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// maxWalk bounds the windows LatestDue steps over; far more than any real
// backlog, it only guards against a pathological expression.
const maxWalk = 1 << 20

// LatestDue returns the latest window in (after, now], if any. Missed
// windows collapse into this one: after downtime a schedule fires once,
// for its most recent window, not once per window missed (seed 002).
func (c Cron) LatestDue(after, now time.Time) (time.Time, bool) {
	first := c.Next(after)
	if first.IsZero() || first.After(now) {
		return time.Time{}, false
	}
	if d, ok := c.sched.(cron.ConstantDelaySchedule); ok {
		// @every fires at after+k·delay (seconds precision): jump straight
		// to the last k.
		base := after.Truncate(time.Second)
		k := now.Sub(base) / d.Delay
		return base.Add(k * d.Delay).UTC(), true
	}
	// Look back from now over doubling windows until one holds a window,
	// then walk forward from there; this stays cheap for a per-second
	// expression after a long outage and for a yearly one alike.
	t := first
	for lb := time.Minute; ; lb *= 2 {
		from := now.Add(-lb)
		if !from.After(after) {
			break
		}
		if n := c.Next(from); !n.IsZero() && !n.After(now) {
			t = n
			break
		}
	}
	for range maxWalk {
		n := c.Next(t)
		if n.IsZero() || n.After(now) {
			break
		}
		t = n
	}
	return t, true
}

// ScheduleSpec is a schedule's user-given content, validated together.
type ScheduleSpec struct {
	Name              string
	Description       *string
	CronExpression    string
	TimeZone          string
	Enabled           bool
	ConcurrencyPolicy string
	Template          Template
	Targeting         Targeting
}

// Validate checks every field; now is used to refuse expressions that
// never fire. It normalises the policy and zone in place.
func (s *ScheduleSpec) Validate(now time.Time) error {
	switch {
	case strings.TrimSpace(s.Name) == "":
		return domain.Invalid("name cannot be empty")
	case len(s.Name) > 255:
		return domain.Invalid("name cannot exceed 255 characters")
	}
	p, err := NormalizePolicy(s.ConcurrencyPolicy)
	if err != nil {
		return err
	}
	s.ConcurrencyPolicy = p
	s.TimeZone = strings.TrimSpace(s.TimeZone)
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	c, err := ParseCron(s.CronExpression, s.TimeZone)
	if err != nil {
		return err
	}
	if c.Next(now).IsZero() {
		return domain.Invalid("cron_expression never fires")
	}
	if err := s.Template.Validate(); err != nil {
		return err
	}
	return s.Targeting.Validate()
}
