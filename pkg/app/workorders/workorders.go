// Package workorders holds the work-order use cases: create, list, cancel,
// the agent's pending list, the single-winner claim, progress reports and
// completion with retry/backoff (docs/work-orders.md#backoff); the sweeps the
// work-order-scheduler runs (retry release, stale-claim expiry); and cron
// schedules that stamp out work orders.
package workorders

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

// OrderRepository stores active work orders (PENDING, CLAIMED,
// RETRY_PENDING) and moves finished ones to the log.
type OrderRepository interface {
	// CreateWorkOrder inserts w (filling id, timestamps and status) with its
	// targeting; agent ids that name no live agent are skipped.
	CreateWorkOrder(ctx context.Context, w *workorder.WorkOrder, t workorder.Targeting) error
	ListWorkOrders(ctx context.Context, f ListFilter) ([]workorder.WorkOrder, error)
	// GetWorkOrder returns an active order (404 "Work order not found").
	GetWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error)
	// LockWorkOrder is GetWorkOrder with a row lock held to the end of the
	// transaction.
	LockWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error)
	// DeleteWorkOrder hard-deletes an active order and its targeting.
	DeleteWorkOrder(ctx context.Context, id uuid.UUID) (workorder.WorkOrder, error)
	// ScheduleRetry moves an order to RETRY_PENDING with retry_count n and
	// next_retry_after = now + 2^n × backoff_seconds (database clock).
	ScheduleRetry(ctx context.Context, id uuid.UUID, n int, lastError string) (workorder.WorkOrder, error)
	// MoveToLog deletes the active order and writes its log entry.
	MoveToLog(ctx context.Context, id uuid.UUID, success bool, message *string, retries int) (workorder.LogEntry, error)
}

// ClaimRepository is the agent's side of work orders.
type ClaimRepository interface {
	// PendingForAgent lists the PENDING orders the agent is eligible for,
	// oldest first; an inactive agent gets none.
	PendingForAgent(ctx context.Context, agentID uuid.UUID, workType string) ([]workorder.WorkOrder, error)
	// ClaimWorkOrder moves an order PENDING → CLAIMED for an eligible, active
	// agent in one statement (404 "Work order not found or not claimable").
	ClaimWorkOrder(ctx context.Context, id, agentID uuid.UUID) (workorder.WorkOrder, error)
	// ReportProgress records progress on an order CLAIMED by agentID; ok is
	// false when the order exists but is not claimed by that agent.
	ReportProgress(ctx context.Context, id, agentID uuid.UUID, message *string, percent *int) (w workorder.WorkOrder, ok bool, err error)
}

// LogRepository reads the write-once log of finished orders.
type LogRepository interface {
	ListLog(ctx context.Context, f LogFilter) ([]workorder.LogEntry, error)
	// GetLogEntry returns a log entry (404 "Work order log entry not found").
	GetLogEntry(ctx context.Context, id uuid.UUID) (workorder.LogEntry, error)
}

// AgentDirectory tells which agents exist (targeting and pending lists).
type AgentDirectory interface {
	// LiveAgents returns which of ids name live agents.
	LiveAgents(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]bool, error)
	AgentLive(ctx context.Context, id uuid.UUID) (bool, error)
}

// RetryRepository is what the work-order-scheduler's sweeps need.
type RetryRepository interface {
	// ReleaseRetry moves one RETRY_PENDING order whose retry n is due back to
	// PENDING. When it is not released, due is set if the order still waits
	// for that retry (the timer fired early).
	ReleaseRetry(ctx context.Context, id uuid.UUID, n int) (released bool, due *time.Time, err error)
	// ReleaseDueRetries releases up to limit due RETRY_PENDING orders,
	// skipping rows another replica holds.
	ReleaseDueRetries(ctx context.Context, limit int) (int, error)
	// LockStaleClaims locks up to limit CLAIMED orders whose claim outlived
	// claim_timeout_seconds since the claim or the last progress report,
	// skipping rows another replica holds.
	LockStaleClaims(ctx context.Context, limit int) ([]workorder.WorkOrder, error)
}

// Repos is the persistence the work-order use cases need; every port shares
// the transaction Tx opens.
type Repos struct {
	Tx      journal.Transactor
	Journal journal.Recorder
	Orders  OrderRepository
	Claims  ClaimRepository
	Log     LogRepository
	Agents  AgentDirectory
	Retries RetryRepository
}

// ListFilter narrows GET /work-orders (exact matches).
type ListFilter struct {
	Status     string
	WorkType   string
	ScheduleID *uuid.UUID
}

// LogFilter narrows GET /work-order-log.
type LogFilter struct {
	WorkType   string
	Success    *bool
	AgentID    *uuid.UUID
	ScheduleID *uuid.UUID
	Limit      *int
}

// RetryTimer arranges for a RETRY_PENDING order to be released when its
// retry n is due (an asynq task with ProcessAt in production). It is called
// after commit; when it fails the periodic sweep releases the order.
type RetryTimer interface {
	ScheduleRetry(ctx context.Context, id uuid.UUID, n int, due time.Time) error
}

// Service implements the work-order use cases.
type Service struct {
	repos Repos
	timer RetryTimer
}

// NewService wires the use cases.
func NewService(repos Repos, timer RetryTimer) *Service {
	return &Service{repos: repos, timer: timer}
}

var (
	errAdminOnly  = domain.ForbiddenCode("admin_required", "Admin access required")
	errAccess     = domain.Forbidden("Access denied")
	errNotClaimed = domain.ConflictCode("work_order_not_claimed_by_agent", "Work order is not claimed by this agent")
	errNotFound   = domain.NotFoundCode("work_order_not_found", "Work order not found")
)

// System is the actor of the scheduler's transitions.
var System = identity.Principal{Role: identity.RoleSystem}

// Policies of the work-order use cases; the HTTP layer runs the same values
// before decoding a body (see package policy).
var (
	// AdminOnly guards work-order management, the log and schedules.
	AdminOnly = policy.Allow(errAdminOnly, policy.Admin)
	// AdminOrAgent admits the admin and any agent (claim, complete): the row
	// decides which agent.
	AdminOrAgent = policy.Allow(errAccess, policy.Admin, policy.AnyAgent)
	// AgentOnly admits agents only (progress reports).
	AgentOnly = policy.Allow(errAccess, policy.AnyAgent)
	// AdminOrSelf admits the admin and agent id (its pending list).
	AdminOrSelf = policy.Allow(errAccess, policy.Admin, policy.SelfAgent)
)

// CreateInput is the body of POST /work-orders.
type CreateInput struct {
	Template  workorder.Template
	Targeting workorder.Targeting
}

// origin stamps an order made by a schedule.
type origin struct {
	scheduleID  uuid.UUID
	scheduledAt time.Time
}

// Create makes a PENDING work order (admin only). Unknown agent ids in the
// targeting are a 422 and nothing is created.
func (s *Service) Create(ctx context.Context, p identity.Principal, in CreateInput) (workorder.WorkOrder, error) {
	if !p.IsAdmin() {
		return workorder.WorkOrder{}, errAdminOnly
	}
	if err := in.Template.Validate(); err != nil {
		return workorder.WorkOrder{}, err
	}
	t := in.Targeting.Normalize()
	if err := t.Validate(); err != nil {
		return workorder.WorkOrder{}, err
	}
	var w workorder.WorkOrder
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.requireAgents(ctx, t.AgentIDs); err != nil {
			return err
		}
		var err error
		w, err = s.create(ctx, p, in.Template, t, nil)
		return err
	})
	return w, err
}

func (s *Service) requireAgents(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	live, err := s.repos.Agents.LiveAgents(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !live[id] {
			return domain.Unprocessable("Agent not found: " + id.String())
		}
	}
	return nil
}

// create inserts the order with its event and audit entry; the caller owns
// the transaction.
func (s *Service) create(ctx context.Context, p identity.Principal, tmpl workorder.Template, t workorder.Targeting, o *origin) (workorder.WorkOrder, error) {
	w := workorder.WorkOrder{WorkType: tmpl.WorkType, YAMLContent: tmpl.YAMLContent, MaxRetries: tmpl.MaxRetries,
		BackoffSeconds: tmpl.BackoffSeconds, ClaimTimeoutSeconds: tmpl.ClaimTimeoutSeconds}
	if o != nil {
		id, at := o.scheduleID, o.scheduledAt
		w.ScheduleID, w.ScheduledAt = &id, &at
	}
	if err := s.repos.Orders.CreateWorkOrder(ctx, &w, t); err != nil {
		return workorder.WorkOrder{}, err
	}
	data := map[string]any{"work_order_id": w.ID, "work_type": w.WorkType, "status": w.Status,
		"created_at": w.CreatedAt, "schedule_id": w.ScheduleID, "scheduled_at": w.ScheduledAt}
	ev := event.New(workorder.EventCreated, data)
	details := map[string]any{"work_type": w.WorkType, "targeting": t, "max_retries": w.MaxRetries,
		"backoff_seconds": w.BackoffSeconds, "claim_timeout_seconds": w.ClaimTimeoutSeconds}
	if o != nil {
		details["schedule_id"], details["scheduled_at"] = w.ScheduleID, w.ScheduledAt
	}
	return w, journal.Record(ctx, s.repos.Journal,
		journal.Entry(ctx, p, workorder.ActionCreated, workorder.ResourceWorkOrder, w.ID, details), &ev)
}

// List returns active orders, newest first (admin only).
func (s *Service) List(ctx context.Context, p identity.Principal, f ListFilter) ([]workorder.WorkOrder, error) {
	if !p.IsAdmin() {
		return nil, errAdminOnly
	}
	return s.repos.Orders.ListWorkOrders(ctx, f)
}

// Get returns an active order, or the synthesised COMPLETED/FAILED order of
// a finished one (admin only).
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (workorder.WorkOrder, error) {
	if !p.IsAdmin() {
		return workorder.WorkOrder{}, errAdminOnly
	}
	w, err := s.repos.Orders.GetWorkOrder(ctx, id)
	if err == nil || !isNotFound(err) {
		return w, err
	}
	l, err := s.repos.Log.GetLogEntry(ctx, id)
	if isNotFound(err) {
		return workorder.WorkOrder{}, errNotFound
	}
	if err != nil {
		return workorder.WorkOrder{}, err
	}
	return l.AsWorkOrder(), nil
}

// Active checks that id is an active order the caller may act on; the
// HTTP layer runs it before decoding a body, so 404 precedes 400/422.
func (s *Service) Active(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := AdminOrAgent.Check(p); err != nil {
		return err
	}
	_, err := s.repos.Orders.GetWorkOrder(ctx, id)
	return err
}

// Cancel hard-deletes an active order (admin only), as the original's
// DELETE; unlike it, the cancellation is audited and emitted.
func (s *Service) Cancel(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if !p.IsAdmin() {
		return errAdminOnly
	}
	return s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		_, err := s.cancel(ctx, p, id, "cancelled by admin")
		return err
	})
}

func (s *Service) cancel(ctx context.Context, p identity.Principal, id uuid.UUID, reason string) (workorder.WorkOrder, error) {
	w, err := s.repos.Orders.DeleteWorkOrder(ctx, id)
	if err != nil {
		return w, err
	}
	ev := event.New(workorder.EventCancelled, map[string]any{"work_order_id": w.ID, "work_type": w.WorkType,
		"status": w.Status, "claimed_by": w.ClaimedBy, "schedule_id": w.ScheduleID, "reason": reason,
		"cancelled_at": time.Now().UTC()})
	return w, journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, workorder.ActionCancelled, workorder.ResourceWorkOrder, w.ID,
		map[string]any{"work_type": w.WorkType, "status": w.Status, "reason": reason}), &ev)
}

// Pending lists the PENDING orders agentID may claim, oldest first (admin
// or the agent itself). RETRY_PENDING orders are not listed until due.
func (s *Service) Pending(ctx context.Context, p identity.Principal, agentID uuid.UUID, workType string) ([]workorder.WorkOrder, error) {
	if err := AdminOrSelf.CheckID(p, agentID); err != nil {
		return nil, err
	}
	ok, err := s.repos.Agents.AgentLive(ctx, agentID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	return s.repos.Claims.PendingForAgent(ctx, agentID, workType)
}

// Claim gives the order to agentID if it is PENDING and the agent is
// eligible: one UPDATE, so exactly one of any number of concurrent
// claimers wins and the others get 404. An agent claims only for itself.
func (s *Service) Claim(ctx context.Context, p identity.Principal, id, agentID uuid.UUID) (workorder.WorkOrder, error) {
	if agentID == uuid.Nil && p.Role == identity.RoleAgent {
		agentID = p.ID
	}
	switch {
	case p.IsAdmin():
	case p.IsAgent(agentID):
	default:
		return workorder.WorkOrder{}, errAccess
	}
	if agentID == uuid.Nil {
		return workorder.WorkOrder{}, domain.Invalid("agent_id is required")
	}
	var w workorder.WorkOrder
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if w, err = s.repos.Claims.ClaimWorkOrder(ctx, id, agentID); err != nil {
			return err
		}
		ev := event.New(workorder.EventClaimed, map[string]any{"work_order_id": w.ID, "work_type": w.WorkType,
			"agent_id": agentID, "claimed_at": w.ClaimedAt, "retry_count": w.RetryCount})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, workorder.ActionClaimed, workorder.ResourceWorkOrder, w.ID,
			map[string]any{"agent_id": agentID, "retry_count": w.RetryCount}), &ev)
	})
	return w, err
}

// ProgressInput is the body of POST /work-orders/{id}/progress. Each report
// replaces the previous one.
type ProgressInput struct {
	Message *string
	Percent *int
}

// Progress records how a running order is doing. It shows in GET and keeps
// the claim alive: the claim timeout counts from the latest report. Only the
// agent holding the claim may report (409 otherwise). Like a heartbeat it
// is neither audited nor emitted.
func (s *Service) Progress(ctx context.Context, p identity.Principal, id uuid.UUID, in ProgressInput) (workorder.WorkOrder, error) {
	if err := AgentOnly.Check(p); err != nil {
		return workorder.WorkOrder{}, err
	}
	if in.Percent != nil && (*in.Percent < 0 || *in.Percent > 100) {
		return workorder.WorkOrder{}, domain.Invalid("percent must be between 0 and 100")
	}
	if in.Message != nil && len(*in.Message) > workorder.MaxProgressMessageLen {
		return workorder.WorkOrder{}, domain.Invalid("message cannot exceed 4096 characters")
	}
	w, ok, err := s.repos.Claims.ReportProgress(ctx, id, p.ID, in.Message, in.Percent)
	if err != nil {
		return workorder.WorkOrder{}, err
	}
	if !ok {
		return workorder.WorkOrder{}, errNotClaimed
	}
	return w, nil
}

// CompleteInput is the body of POST /work-orders/{id}/complete. Retryable
// defaults to true; the agent decides it from a structured error class.
type CompleteInput struct {
	Success   bool
	Message   *string
	Retryable bool
}

// Completion is what a complete call led to: a log entry (success, or a
// final failure), or a scheduled retry.
type Completion struct {
	Log   *workorder.LogEntry
	Retry *workorder.WorkOrder
}

// Complete finishes an attempt. Only a CLAIMED order can be completed, by
// its claiming agent or the admin (409 otherwise, docs/work-orders.md#api).
// Success
// moves it to the log; a retryable failure with retries left schedules
// retry n = retry_count+1 after 2^n × backoff_seconds; any other failure
// moves it to the log with success=false.
func (s *Service) Complete(ctx context.Context, p identity.Principal, id uuid.UUID, in CompleteInput) (Completion, error) {
	if err := AdminOrAgent.Check(p); err != nil {
		return Completion{}, err
	}
	var out Completion
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		w, err := s.repos.Orders.LockWorkOrder(ctx, id)
		if err != nil {
			return err
		}
		if w.Status != workorder.StatusClaimed {
			if p.IsAdmin() {
				return domain.Conflict("Work order is not claimed")
			}
			return errNotClaimed
		}
		if !p.IsAdmin() && (w.ClaimedBy == nil || *w.ClaimedBy != p.ID) {
			return errNotClaimed
		}
		if in.Success {
			l, err := s.finish(ctx, p, w, true, in.Message, w.RetryCount, workorder.ActionCompleted)
			out.Log = &l
			return err
		}
		msg := "Unknown error"
		if in.Message != nil && strings.TrimSpace(*in.Message) != "" {
			msg = *in.Message
		}
		out, err = s.fail(ctx, p, w, msg, in.Retryable, workorder.ActionRetryScheduled)
		return err
	})
	if err != nil {
		return Completion{}, err
	}
	s.arm(ctx, out.Retry)
	return out, nil
}

// fail applies a failed attempt of the locked order w: a retry while the
// incremented count is within max_retries and the failure is retryable,
// the log otherwise. An expired claim takes this same path.
func (s *Service) fail(ctx context.Context, p identity.Principal, w workorder.WorkOrder, msg string, retryable bool, retryAction string) (Completion, error) {
	outcome, n := workorder.AfterFailure(w, retryable)
	if outcome == workorder.Exhausted {
		l, err := s.finish(ctx, p, w, false, &msg, w.RetryCount, workorder.ActionFailed)
		return Completion{Log: &l}, err
	}
	r, err := s.repos.Orders.ScheduleRetry(ctx, w.ID, n, msg)
	if err != nil {
		return Completion{}, err
	}
	ev := event.New(workorder.EventRetryScheduled, map[string]any{"work_order_id": w.ID, "work_type": w.WorkType,
		"agent_id": w.ClaimedBy, "retry_count": n, "next_retry_after": r.NextRetryAfter, "last_error": msg})
	err = journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, retryAction, workorder.ResourceWorkOrder, w.ID,
		map[string]any{"agent_id": w.ClaimedBy, "retry_count": n, "next_retry_after": r.NextRetryAfter, "error": msg}), &ev)
	return Completion{Retry: &r}, err
}

// finish moves the locked order w to the log with its event and audit entry.
func (s *Service) finish(ctx context.Context, p identity.Principal, w workorder.WorkOrder, success bool, msg *string, retries int, action string) (workorder.LogEntry, error) {
	l, err := s.repos.Orders.MoveToLog(ctx, w.ID, success, msg, retries)
	if err != nil {
		return l, err
	}
	typ := workorder.EventCompleted
	if !success {
		typ = workorder.EventFailed
	}
	// completed_at is the log's (the original sends created_at: a bug).
	ev := event.New(typ, map[string]any{"work_order_log_id": l.ID, "work_order_id": l.ID, "work_type": l.WorkType,
		"success": success, "result_message": l.ResultMessage, "agent_id": l.ClaimedBy, "completed_at": l.CompletedAt,
		"retries_attempted": l.RetriesAttempted, "schedule_id": l.ScheduleID})
	return l, journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, action, workorder.ResourceWorkOrder, l.ID,
		map[string]any{"success": success, "agent_id": l.ClaimedBy, "retries_attempted": l.RetriesAttempted,
			"result_message": l.ResultMessage}), &ev)
}

// arm starts the release timer of a scheduled retry. A failure is not the
// caller's problem: the order is already RETRY_PENDING and the periodic
// sweep releases it when the timer is missing.
func (s *Service) arm(ctx context.Context, r *workorder.WorkOrder) {
	if r == nil || r.NextRetryAfter == nil || s.timer == nil {
		return
	}
	// Detached from the request (a client hanging up must not drop the
	// timer of a committed retry) but bounded, so a slow Redis cannot hold
	// the response.
	// After the commit of an outer transaction, if any (aftercommit).
	aftercommit.Do(ctx, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), armTimeout)
		defer cancel()
		_ = s.timer.ScheduleRetry(ctx, r.ID, r.RetryCount, *r.NextRetryAfter)
	})
}

// armTimeout bounds arming one retry timer.
const armTimeout = 2 * time.Second

// Log lists finished orders, newest first (admin only).
func (s *Service) Log(ctx context.Context, p identity.Principal, f LogFilter) ([]workorder.LogEntry, error) {
	if !p.IsAdmin() {
		return nil, errAdminOnly
	}
	if f.Limit != nil && *f.Limit < 0 {
		return nil, domain.Invalid("limit must not be negative")
	}
	return s.repos.Log.ListLog(ctx, f)
}

// LogEntry returns one finished order (admin only).
func (s *Service) LogEntry(ctx context.Context, p identity.Principal, id uuid.UUID) (workorder.LogEntry, error) {
	if !p.IsAdmin() {
		return workorder.LogEntry{}, errAdminOnly
	}
	return s.repos.Log.GetLogEntry(ctx, id)
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, domain.ErrNotFound) }
