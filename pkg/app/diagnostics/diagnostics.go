// Package diagnostics holds the on-demand diagnostics use cases: an admin
// asks an agent for pod statuses, events and log tails of a deployment
// object; the agent claims the request atomically, collects and submits the
// result. Expiry and clean-up run in the work-order-scheduler's maintenance
// (pkg/app/housekeeping).
package diagnostics

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// RequestRepository stores diagnostic requests and their results.
type RequestRepository interface {
	// CreateDiagnostic inserts a pending request and fills its id and
	// timestamps.
	CreateDiagnostic(ctx context.Context, r *diagnostic.Request) error
	// GetDiagnostic returns one request (404 when absent).
	GetDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error)
	// GetDiagnosticResult returns a request's result, nil when none.
	GetDiagnosticResult(ctx context.Context, requestID uuid.UUID) (*diagnostic.Result, error)
	// PendingDiagnostics lists an agent's pending, unexpired requests,
	// oldest first.
	PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error)
	// RecentDiagnostics returns an agent's newest requests (any status),
	// newest first, and the results of those that have one.
	RecentDiagnostics(ctx context.Context, agentID uuid.UUID, limit int) ([]diagnostic.Request, []diagnostic.Result, error)
	// ClaimDiagnostic moves a pending, unexpired request to claimed in one
	// statement; ok is false when it was not pending (any more).
	ClaimDiagnostic(ctx context.Context, id uuid.UUID) (r diagnostic.Request, ok bool, err error)
	// CompleteDiagnostic stores the result and moves a claimed request to
	// completed or failed in one transaction; ok is false when it was not
	// claimed.
	CompleteDiagnostic(ctx context.Context, res *diagnostic.Result, status string) (ok bool, err error)
}

// References checks that what a request names exists (live rows only).
type References interface {
	DeploymentObjectExists(ctx context.Context, id uuid.UUID) (bool, error)
	AgentExists(ctx context.Context, id uuid.UUID) (bool, error)
}

// Repos are the ports of the diagnostics use cases.
type Repos struct {
	Tx       journal.Transactor
	Journal  journal.Recorder
	Requests RequestRepository
	Refs     References
}

// LiveNotes tells live views (the console) that something they show
// changed; the notifier coalesces bursts.
type LiveNotes interface {
	Noted(ctx context.Context, what string)
}

// Service implements the diagnostics use cases.
type Service struct {
	repos Repos
	notes LiveNotes
}

// NewService wires the use cases; notes may be nil (nobody watches).
func NewService(repos Repos, notes LiveNotes) *Service { return &Service{repos: repos, notes: notes} }

var errUnauthorized = domain.ForbiddenCode("diagnostic_not_owned", "Unauthorized")

// CreateInput is the body of POST /deployment-objects/{id}/diagnostics.
type CreateInput struct {
	AgentID          uuid.UUID
	RequestedBy      *string
	RetentionMinutes *int
}

// Create asks an agent for diagnostics of a deployment object (admin only).
func (s *Service) Create(ctx context.Context, p identity.Principal, objectID uuid.UUID, in CreateInput) (diagnostic.Request, error) {
	if !p.IsAdmin() {
		return diagnostic.Request{}, errUnauthorized
	}
	ok, err := s.repos.Refs.DeploymentObjectExists(ctx, objectID)
	if err != nil {
		return diagnostic.Request{}, err
	}
	if !ok {
		return diagnostic.Request{}, domain.NotFoundCode("deployment_object_not_found", "Deployment object not found")
	}
	if in.AgentID == uuid.Nil {
		return diagnostic.Request{}, domain.InvalidCode("invalid_diagnostic_request", "agent_id is required")
	}
	if ok, err = s.repos.Refs.AgentExists(ctx, in.AgentID); err != nil {
		return diagnostic.Request{}, err
	} else if !ok {
		return diagnostic.Request{}, domain.NotFoundCode("agent_not_found", "Agent not found")
	}
	retention := diagnostic.DefaultRetentionMinutes
	if in.RetentionMinutes != nil {
		retention = *in.RetentionMinutes
	}
	if retention < 1 || retention > diagnostic.MaxRetentionMinutes {
		return diagnostic.Request{}, domain.InvalidCode("invalid_diagnostic_request", "Retention must be between 1 and 1440 minutes")
	}
	if in.RequestedBy != nil && len(*in.RequestedBy) > 255 {
		return diagnostic.Request{}, domain.InvalidCode("invalid_diagnostic_request", "requested_by cannot exceed 255 characters")
	}
	r := diagnostic.Request{AgentID: in.AgentID, DeploymentObjectID: objectID, Status: diagnostic.Pending,
		RequestedBy: in.RequestedBy, ExpiresAt: time.Now().Add(time.Duration(retention) * time.Minute)}
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Requests.CreateDiagnostic(ctx, &r); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionDiagnosticRequested, "diagnostic_request", r.ID,
			map[string]any{"agent_id": r.AgentID, "deployment_object_id": objectID}))
	})
	return r, err
}

// View is GET /diagnostics/{id}.
type View struct {
	Request diagnostic.Request `json:"request"`
	Result  *diagnostic.Result `json:"result"`
}

// Get returns a request and its result (admin or the request's agent).
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (View, error) {
	r, err := s.load(ctx, p, id)
	if err != nil {
		return View{}, err
	}
	res, err := s.repos.Requests.GetDiagnosticResult(ctx, id)
	if err != nil {
		return View{}, err
	}
	return View{Request: r, Result: res}, nil
}

func (s *Service) load(ctx context.Context, p identity.Principal, id uuid.UUID) (diagnostic.Request, error) {
	if !p.IsAdmin() && p.Role != identity.RoleAgent {
		return diagnostic.Request{}, errUnauthorized
	}
	r, err := s.repos.Requests.GetDiagnostic(ctx, id)
	if err != nil {
		return diagnostic.Request{}, err
	}
	if !p.IsAdmin() && !p.IsAgent(r.AgentID) {
		return diagnostic.Request{}, errUnauthorized
	}
	return r, nil
}

// Recent lists an agent's newest requests of any status with their results,
// newest first, at most limit (1–100) of them (admin or the agent itself).
func (s *Service) Recent(ctx context.Context, p identity.Principal, agentID uuid.UUID, limit int) ([]View, error) {
	if !p.IsAdmin() && !p.IsAgent(agentID) {
		return nil, errUnauthorized
	}
	if limit < 1 || limit > 100 {
		return nil, domain.Invalid("limit must be between 1 and 100")
	}
	reqs, results, err := s.repos.Requests.RecentDiagnostics(ctx, agentID, limit)
	if err != nil {
		return nil, err
	}
	byRequest := make(map[uuid.UUID]*diagnostic.Result, len(results))
	for i := range results {
		byRequest[results[i].RequestID] = &results[i]
	}
	out := make([]View, len(reqs))
	for i, r := range reqs {
		out[i] = View{Request: r, Result: byRequest[r.ID]}
	}
	return out, nil
}

// Pending lists an agent's pending, unexpired requests, oldest first.
func (s *Service) Pending(ctx context.Context, p identity.Principal, agentID uuid.UUID) ([]diagnostic.Request, error) {
	if !p.IsAdmin() && !p.IsAgent(agentID) {
		return nil, errUnauthorized
	}
	return s.repos.Requests.PendingDiagnostics(ctx, agentID)
}

// Claim takes a pending request; exactly one of concurrent claimers wins.
func (s *Service) Claim(ctx context.Context, p identity.Principal, id uuid.UUID) (diagnostic.Request, error) {
	if _, err := s.load(ctx, p, id); err != nil {
		return diagnostic.Request{}, err
	}
	r, ok, err := s.repos.Requests.ClaimDiagnostic(ctx, id)
	if err != nil {
		return diagnostic.Request{}, err
	}
	if !ok {
		cur, err := s.repos.Requests.GetDiagnostic(ctx, id)
		if err != nil {
			return diagnostic.Request{}, err
		}
		status := cur.Status
		if status == diagnostic.Pending {
			status = diagnostic.Expired // past expires_at, not yet swept
		}
		return diagnostic.Request{}, domain.ConflictCode("diagnostic_already_claimed", "Request is already "+status)
	}
	return r, nil
}

// ResultInput is the body of POST /diagnostics/{id}/result. Each data field
// is a JSON document, sent as a JSON string (the original) or as JSON. Error
// set instead of data reports a failed collection.
type ResultInput struct {
	PodStatuses json.RawMessage
	Events      json.RawMessage
	LogTails    json.RawMessage
	Error       *string
	CollectedAt time.Time
}

// CheckSubmit fails as SubmitResult would before looking at the body: 404
// for an unknown request, 403 for anyone but the request's agent (even the
// admin), 409 unless it is claimed.
func (s *Service) CheckSubmit(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	r, err := s.repos.Requests.GetDiagnostic(ctx, id)
	if err != nil {
		return err
	}
	if !p.IsAgent(r.AgentID) {
		return errUnauthorized
	}
	if r.Status != diagnostic.Claimed {
		return domain.ConflictCode("diagnostic_not_claimed", "Request status is "+r.Status+", expected 'claimed'")
	}
	return nil
}

// SubmitResult stores what the agent collected (only the request's agent).
func (s *Service) SubmitResult(ctx context.Context, p identity.Principal, id uuid.UUID, in ResultInput) (diagnostic.Result, error) {
	if err := s.CheckSubmit(ctx, p, id); err != nil {
		return diagnostic.Result{}, err
	}
	res := diagnostic.Result{RequestID: id, CollectedAt: in.CollectedAt}
	if res.CollectedAt.IsZero() {
		res.CollectedAt = time.Now()
	}
	status := diagnostic.Completed
	if in.Error != nil && strings.TrimSpace(*in.Error) != "" {
		status = diagnostic.Failed
		res.Error = in.Error
	}
	res.PodStatuses = document(in.PodStatuses)
	res.Events = document(in.Events)
	if status == diagnostic.Completed {
		switch {
		case res.PodStatuses == "":
			return diagnostic.Result{}, domain.InvalidCode("invalid_diagnostic_result", "Pod statuses cannot be empty")
		case res.Events == "":
			return diagnostic.Result{}, domain.InvalidCode("invalid_diagnostic_result", "Events cannot be empty")
		}
	}
	if lt := document(in.LogTails); lt != "" {
		res.LogTails = &lt
	}
	ok, err := s.repos.Requests.CompleteDiagnostic(ctx, &res, status)
	if err != nil {
		return diagnostic.Result{}, err
	}
	if !ok {
		return diagnostic.Result{}, domain.ConflictCode("diagnostic_not_claimed", "Request status changed, expected 'claimed'")
	}
	// The agent page shows results: open pages refresh at once.
	if s.notes != nil {
		aftercommit.Do(ctx, func() { s.notes.Noted(ctx, "diagnostics") })
	}
	return res, nil
}

// document turns a field sent as a JSON string or as raw JSON into the text
// stored and returned ("" for absent or null).
func document(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
