// Package workorder holds work orders: one-shot tasks (a container build, a
// migration Job) that exactly one eligible agent claims and runs, retried
// with exponential backoff (docs/work-orders.md#backoff), plus the cron
// schedules that stamp them out. Pure types and rules; no I/O.
package workorder

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Status values of an active work order. COMPLETED and FAILED never appear in
// the table: GET synthesises them for orders that have moved to the log.
const (
	StatusPending      = "PENDING"
	StatusClaimed      = "CLAIMED"
	StatusRetryPending = "RETRY_PENDING"
	StatusCompleted    = "COMPLETED"
	StatusFailed       = "FAILED"
)

// Work types the agent knows; any other string is stored and the agent
// fails it as unknown (non-retryable).
const (
	TypeBuild  = "build"
	TypeCustom = "custom"
)

// Defaults of the create body (docs/work-orders.md#api).
const (
	DefaultMaxRetries          = 3
	DefaultBackoffSeconds      = 60
	DefaultClaimTimeoutSeconds = 3600
	// MaxWorkTypeLen is the work_type column limit.
	MaxWorkTypeLen = 50
	// MaxBackoff bounds backoff_seconds × 2^max_retries, the longest wait
	// an order can be given, so next_retry_after stays a sane timestamp.
	MaxBackoff = 10 * 365 * 24 * time.Hour
	// MaxProgressMessageLen bounds a progress message.
	MaxProgressMessageLen = 4096
)

// WorkOrder is an active work order (PENDING, CLAIMED or RETRY_PENDING).
// Its targeting is not part of the JSON, as in the original.
type WorkOrder struct {
	ID                  uuid.UUID  `json:"id"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	WorkType            string     `json:"work_type"`
	YAMLContent         string     `json:"yaml_content"`
	Status              string     `json:"status"`
	ClaimedBy           *uuid.UUID `json:"claimed_by"`
	ClaimedAt           *time.Time `json:"claimed_at"`
	ClaimTimeoutSeconds int        `json:"claim_timeout_seconds"`
	MaxRetries          int        `json:"max_retries"`
	RetryCount          int        `json:"retry_count"`
	BackoffSeconds      int        `json:"backoff_seconds"`
	NextRetryAfter      *time.Time `json:"next_retry_after"`
	LastError           *string    `json:"last_error"`
	LastErrorAt         *time.Time `json:"last_error_at"`
	// Added: the schedule that created the order and the window it fired for.
	ScheduleID  *uuid.UUID `json:"schedule_id"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	// Added: the latest progress report of the claiming agent (rendered as
	// the "progress" object, null when there is none).
	ProgressMessage   *string    `json:"-"`
	ProgressPercent   *int       `json:"-"`
	ProgressUpdatedAt *time.Time `json:"-"`
}

// Progress is what the claiming agent last reported about a running order.
type Progress struct {
	Message   *string   `json:"message"`
	Percent   *int      `json:"percent"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Progress returns the latest report, or nil when there is none.
func (w WorkOrder) Progress() *Progress {
	if w.ProgressUpdatedAt == nil {
		return nil
	}
	return &Progress{Message: w.ProgressMessage, Percent: w.ProgressPercent, UpdatedAt: *w.ProgressUpdatedAt}
}

// MarshalJSON renders the original's fields plus "progress".
func (w WorkOrder) MarshalJSON() ([]byte, error) {
	type plain WorkOrder
	return json.Marshal(struct {
		plain
		Progress *Progress `json:"progress"`
	}{plain(w), w.Progress()})
}

// LogEntry is a finished work order: write-once history in work_order_log.
type LogEntry struct {
	ID               uuid.UUID  `json:"id"`
	WorkType         string     `json:"work_type"`
	CreatedAt        time.Time  `json:"created_at"`
	ClaimedAt        *time.Time `json:"claimed_at"`
	CompletedAt      time.Time  `json:"completed_at"`
	ClaimedBy        *uuid.UUID `json:"claimed_by"`
	Success          bool       `json:"success"`
	RetriesAttempted int        `json:"retries_attempted"`
	ResultMessage    *string    `json:"result_message"`
	YAMLContent      string     `json:"yaml_content"`
	ScheduleID       *uuid.UUID `json:"schedule_id"`
	ScheduledAt      *time.Time `json:"scheduled_at"`
}

// AsWorkOrder synthesises the WorkOrder that GET /work-orders/{id} returns
// for an order that has left the active table (docs/work-orders.md#states).
func (l LogEntry) AsWorkOrder() WorkOrder {
	w := WorkOrder{
		ID: l.ID, CreatedAt: l.CreatedAt, UpdatedAt: l.CompletedAt, WorkType: l.WorkType,
		YAMLContent: l.YAMLContent, Status: StatusCompleted, ClaimedBy: l.ClaimedBy, ClaimedAt: l.ClaimedAt,
		RetryCount: l.RetriesAttempted, ScheduleID: l.ScheduleID, ScheduledAt: l.ScheduledAt,
	}
	if !l.Success {
		w.Status = StatusFailed
		w.LastError = l.ResultMessage
		at := l.CompletedAt
		w.LastErrorAt = &at
	}
	return w
}

// Targeting says which agents may claim an order: any listed agent, any
// agent with one of the labels, any agent with one of the annotation pairs.
type Targeting struct {
	AgentIDs    []uuid.UUID       `json:"agent_ids"`
	Labels      []string          `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Empty reports whether no targeting method is given.
func (t Targeting) Empty() bool {
	return len(t.AgentIDs) == 0 && len(t.Labels) == 0 && len(t.Annotations) == 0
}

// Normalize drops duplicates and makes nil collections empty, so the JSON
// form is stable ([] and {} rather than null).
func (t Targeting) Normalize() Targeting {
	out := Targeting{AgentIDs: []uuid.UUID{}, Labels: []string{}, Annotations: map[string]string{}}
	seenID := map[uuid.UUID]bool{}
	for _, id := range t.AgentIDs {
		if !seenID[id] {
			seenID[id] = true
			out.AgentIDs = append(out.AgentIDs, id)
		}
	}
	seenLabel := map[string]bool{}
	for _, l := range t.Labels {
		if !seenLabel[l] {
			seenLabel[l] = true
			out.Labels = append(out.Labels, l)
		}
	}
	for k, v := range t.Annotations {
		out.Annotations[k] = v
	}
	return out
}

var errNoTargeting = domain.InvalidCode("no_targeting_specified", "At least one targeting method must be specified (agent_ids, labels, or annotations)")

// Validate requires at least one method and well-formed labels and
// annotations. Unlike the original, which drops bad labels silently, a bad
// one is a 400 (docs/compatibility.md#never-copy-a-defect: never silently
// ignore a field).
func (t Targeting) Validate() error {
	if t.Empty() {
		return errNoTargeting
	}
	for _, id := range t.AgentIDs {
		if id == uuid.Nil {
			return domain.InvalidCode("invalid_work_order", "agent_ids must not contain the nil UUID")
		}
	}
	for _, l := range t.Labels {
		if err := labels.ValidateLabel(l); err != nil {
			return err
		}
	}
	for k, v := range t.Annotations {
		if err := labels.ValidateAnnotation(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Template is what a work order is made of: the create body without its
// targeting, shared by POST /work-orders and schedules.
type Template struct {
	WorkType            string `json:"work_type"`
	YAMLContent         string `json:"yaml_content"`
	MaxRetries          int    `json:"max_retries"`
	BackoffSeconds      int    `json:"backoff_seconds"`
	ClaimTimeoutSeconds int    `json:"claim_timeout_seconds"`
}

// DefaultTemplate returns a template with the documented defaults.
func DefaultTemplate() Template {
	return Template{MaxRetries: DefaultMaxRetries, BackoffSeconds: DefaultBackoffSeconds,
		ClaimTimeoutSeconds: DefaultClaimTimeoutSeconds}
}

// Validate applies the original's checks with its messages, plus a YAML
// parse (so a typo is a 400 now, not a failure on some cluster later) and
// an upper bound on the backoff.
func (t Template) Validate() error {
	switch {
	case strings.TrimSpace(t.WorkType) == "":
		return domain.InvalidCode("invalid_work_order", "Work type cannot be empty")
	case len(t.WorkType) > MaxWorkTypeLen:
		return domain.InvalidCode("invalid_work_order", fmt.Sprintf("Work type cannot exceed %d characters", MaxWorkTypeLen))
	case strings.TrimSpace(t.YAMLContent) == "":
		return domain.InvalidCode("invalid_work_order", "YAML content cannot be empty")
	case t.MaxRetries < 0:
		return domain.InvalidCode("invalid_work_order", "max_retries must be non-negative")
	case t.BackoffSeconds <= 0:
		return domain.InvalidCode("invalid_work_order", "backoff_seconds must be positive")
	case t.ClaimTimeoutSeconds <= 0:
		return domain.InvalidCode("invalid_work_order", "claim_timeout_seconds must be positive")
	case Backoff(t.BackoffSeconds, t.MaxRetries) > MaxBackoff:
		return domain.InvalidCode("invalid_work_order", "backoff_seconds × 2^max_retries must not exceed 10 years")
	}
	if _, err := stack.SplitYAML(t.YAMLContent); err != nil {
		return domain.InvalidCode("invalid_work_order", "Invalid YAML: "+err.Error())
	}
	return nil
}

// Backoff is the wait before retry n: 2^n × base
// (docs/work-orders.md#backoff), so the first
// retry waits twice the base. It saturates instead of overflowing.
func Backoff(baseSeconds, n int) time.Duration {
	if n < 0 {
		n = 0
	}
	secs := float64(baseSeconds) * math.Pow(2, float64(n))
	if secs >= float64(math.MaxInt64/int64(time.Second)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(secs) * time.Second
}

// Outcome is what a failed attempt leads to.
type Outcome int

const (
	// Retry: back to RETRY_PENDING with retry_count n.
	Retry Outcome = iota
	// Exhausted: to the log with success=false.
	Exhausted
)

// AfterFailure decides what a failed attempt of w leads to: another retry
// while the incremented count stays within max_retries and the failure is
// retryable; the log otherwise (docs/work-orders.md#backoff).
func AfterFailure(w WorkOrder, retryable bool) (Outcome, int) {
	n := w.RetryCount + 1
	if !retryable || n > w.MaxRetries {
		return Exhausted, n
	}
	return Retry, n
}

// ValidStatus reports whether s is a status an active order can have.
func ValidStatus(s string) bool {
	return s == StatusPending || s == StatusClaimed || s == StatusRetryPending
}
