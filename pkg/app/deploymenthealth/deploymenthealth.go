// Package deploymenthealth holds the deployment-health use cases: agents
// report the health of what they applied; admins read it per object and per
// stack. A transition to failing emits deployment.failed
// (docs/compatibility.md#event-payloads). Not the services' /healthz nor the
// agent's own /health (docs/architecture.md#names).
package deploymenthealth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/health"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// RecordRepository stores the latest deployment health per (agent,
// deployment object).
type RecordRepository interface {
	// UpsertHealth stores r for (agent, object) and returns the status it
	// replaced ("" when there was none).
	UpsertHealth(ctx context.Context, r health.Record) (previous string, err error)
	// ObjectHealth returns every agent's record for an object, newest first.
	ObjectHealth(ctx context.Context, objectID uuid.UUID) ([]health.Record, error)
	// StackHealth returns the records of a stack's live objects.
	StackHealth(ctx context.Context, stackID uuid.UUID) ([]health.Record, error)
}

// References checks that what a request names exists (live rows only).
type References interface {
	DeploymentObjectExists(ctx context.Context, id uuid.UUID) (bool, error)
	StackExists(ctx context.Context, id uuid.UUID) (bool, error)
}

// ReportPermission decides whether an agent may report on an object.
type ReportPermission interface {
	// AgentMayReport reports whether the agent is (or was) associated with
	// the object's stack; false when the object does not exist.
	AgentMayReport(ctx context.Context, agentID, deploymentObjectID uuid.UUID) (bool, error)
}

// DependencyWatch tells whether an agent's health report on an object may
// release another stack's object to that agent (docs/dependencies.md).
type DependencyWatch interface {
	// ObjectDependedOn reports whether some live stack depends on the
	// object's stack.
	ObjectDependedOn(ctx context.Context, objectID uuid.UUID) (bool, error)
}

// ChangeNotifier wakes an agent's target-state long-polls after commit.
type ChangeNotifier interface {
	AgentChanged(ctx context.Context, agentID uuid.UUID)
}

// Repos are the ports of the deployment-health use cases.
type Repos struct {
	Tx           journal.Transactor
	Journal      journal.Recorder
	Records      RecordRepository
	Refs         References
	Permissions  ReportPermission
	Dependencies DependencyWatch
}

// Service implements the deployment-health use cases.
type Service struct {
	repos   Repos
	changes ChangeNotifier
}

// NewService wires the use cases.
func NewService(repos Repos, changes ChangeNotifier) *Service {
	return &Service{repos: repos, changes: changes}
}

// MaxReports bounds one report so a client cannot hold a transaction open
// over an unbounded batch.
const MaxReports = 1000

// Report is one entry of PATCH /agents/{id}/health-status.
type Report struct {
	DeploymentObjectID uuid.UUID
	Status             string
	// Summary is a JSON object ({pods_ready, pods_total, conditions,
	// resources?}); a JSON string holding an object is accepted too, as the
	// original's agent sent it.
	Summary   json.RawMessage
	CheckedAt time.Time
}

// ReportHealth stores an agent's health reports in one transaction.
func (s *Service) ReportHealth(ctx context.Context, p identity.Principal, agentID uuid.UUID, reports []Report) error {
	if !p.IsAdmin() && !p.IsAgent(agentID) {
		return domain.Forbidden("Unauthorized")
	}
	if len(reports) > MaxReports {
		return domain.InvalidCode("invalid_health_record", fmt.Sprintf("at most %d reports per request", MaxReports))
	}
	records := make([]health.Record, len(reports))
	for i, r := range reports {
		if !health.Valid(r.Status) {
			return domain.InvalidCode("invalid_health_record", fmt.Sprintf("deployment_objects[%d].status must be healthy, degraded, failing or unknown", i))
		}
		if r.DeploymentObjectID == uuid.Nil {
			return domain.InvalidCode("invalid_health_record", fmt.Sprintf("deployment_objects[%d].id is required", i))
		}
		summary, err := normaliseSummary(r.Summary)
		if err != nil {
			return domain.InvalidCode("invalid_health_record", fmt.Sprintf("deployment_objects[%d].summary: %v", i, err))
		}
		checked := r.CheckedAt
		if checked.IsZero() {
			checked = time.Now()
		}
		records[i] = health.Record{AgentID: agentID, DeploymentObjectID: r.DeploymentObjectID, Status: r.Status,
			Summary: summary, CheckedAt: checked}
	}
	releases := false
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		for _, r := range records {
			// Only objects of stacks the agent is (or was) associated with;
			// another tenant's object reads like a missing one.
			if !p.IsAdmin() {
				ok, err := s.repos.Permissions.AgentMayReport(ctx, agentID, r.DeploymentObjectID)
				if err != nil {
					return err
				}
				if !ok {
					return domain.Unprocessable("Deployment object not found: " + r.DeploymentObjectID.String())
				}
			}
			prev, err := s.repos.Records.UpsertHealth(ctx, r)
			if err != nil {
				return domain.Rephrase(err, domain.ErrUnprocessable, "Deployment object not found: "+r.DeploymentObjectID.String())
			}
			// Becoming healthy or ceasing to be may release (or hold)
			// another stack's object for this agent.
			if !releases && (prev == health.Healthy) != (r.Status == health.Healthy) {
				if releases, err = s.repos.Dependencies.ObjectDependedOn(ctx, r.DeploymentObjectID); err != nil {
					return err
				}
			}
			if r.Status == health.Failing && prev != health.Failing {
				ev := event.New(event.DeploymentFailed, map[string]any{
					"agent_id": agentID, "deployment_object_id": r.DeploymentObjectID, "status": r.Status,
					"reason": "health", "error": "deployment health is failing", "summary": r.Summary,
					"checked_at": r.CheckedAt,
				})
				if err := s.repos.Journal.Emit(ctx, ev); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil && releases {
		s.changes.AgentChanged(ctx, agentID)
	}
	return err
}

// normaliseSummary accepts null, an object, or a string holding an object.
func normaliseSummary(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		raw = json.RawMessage(s)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("must be a JSON object")
	}
	return json.Marshal(obj)
}

// ObjectHealthView is GET /deployment-objects/{id}/health.
type ObjectHealthView struct {
	DeploymentObjectID uuid.UUID       `json:"deployment_object_id"`
	HealthRecords      []health.Record `json:"health_records"`
	OverallStatus      string          `json:"overall_status"`
}

var (
	errObjectNotFound = domain.NotFoundCode("deployment_object_not_found", "Deployment object not found")
	errStackNotFound  = domain.NotFoundCode("stack_not_found", "Stack not found")
)

// adminViewOf admits the admin to the health view of thing id: a 403 for
// anyone else comes before notFound when exists says there is no such
// thing.
func adminViewOf(ctx context.Context, p identity.Principal, id uuid.UUID, exists func(context.Context, uuid.UUID) (bool, error), notFound error) error {
	if !p.IsAdmin() {
		return domain.Forbidden("Unauthorized")
	}
	ok, err := exists(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return notFound
	}
	return nil
}

// ObjectHealth returns every agent's health of one object (admin only).
func (s *Service) ObjectHealth(ctx context.Context, p identity.Principal, id uuid.UUID) (ObjectHealthView, error) {
	if err := adminViewOf(ctx, p, id, s.repos.Refs.DeploymentObjectExists, errObjectNotFound); err != nil {
		return ObjectHealthView{}, err
	}
	recs, err := s.repos.Records.ObjectHealth(ctx, id)
	if err != nil {
		return ObjectHealthView{}, err
	}
	statuses := make([]string, len(recs))
	for i, r := range recs {
		statuses[i] = r.Status
	}
	return ObjectHealthView{DeploymentObjectID: id, HealthRecords: recs, OverallStatus: health.Overall(statuses...)}, nil
}

// ObjectSummary is one object in a stack's health view.
type ObjectSummary struct {
	ID             uuid.UUID `json:"id"`
	Status         string    `json:"status"`
	HealthyAgents  int       `json:"healthy_agents"`
	DegradedAgents int       `json:"degraded_agents"`
	FailingAgents  int       `json:"failing_agents"`
}

// StackHealthView is GET /stacks/{id}/health.
type StackHealthView struct {
	StackID           uuid.UUID       `json:"stack_id"`
	OverallStatus     string          `json:"overall_status"`
	DeploymentObjects []ObjectSummary `json:"deployment_objects"`
}

// StackHealth aggregates the health of a stack's live objects (admin only).
func (s *Service) StackHealth(ctx context.Context, p identity.Principal, id uuid.UUID) (StackHealthView, error) {
	if err := adminViewOf(ctx, p, id, s.repos.Refs.StackExists, errStackNotFound); err != nil {
		return StackHealthView{}, err
	}
	recs, err := s.repos.Records.StackHealth(ctx, id)
	if err != nil {
		return StackHealthView{}, err
	}
	view := StackHealthView{StackID: id, DeploymentObjects: []ObjectSummary{}}
	index := map[uuid.UUID]int{}
	perObject := map[uuid.UUID][]string{}
	var all []string
	for _, r := range recs {
		i, ok := index[r.DeploymentObjectID]
		if !ok {
			i = len(view.DeploymentObjects)
			index[r.DeploymentObjectID] = i
			view.DeploymentObjects = append(view.DeploymentObjects, ObjectSummary{ID: r.DeploymentObjectID})
		}
		o := &view.DeploymentObjects[i]
		switch r.Status {
		case health.Healthy:
			o.HealthyAgents++
		case health.Degraded:
			o.DegradedAgents++
		case health.Failing:
			o.FailingAgents++
		}
		perObject[r.DeploymentObjectID] = append(perObject[r.DeploymentObjectID], r.Status)
		all = append(all, r.Status)
	}
	for i := range view.DeploymentObjects {
		o := &view.DeploymentObjects[i]
		o.Status = health.Overall(perObject[o.ID]...)
	}
	view.OverallStatus = health.Overall(all...)
	return view, nil
}
