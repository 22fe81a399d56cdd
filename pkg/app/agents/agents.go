// Package agents holds the agent use cases: registration, identity,
// explicit targets, heartbeats, reported events and PAK rotation, and the
// agent side of labels and annotations (labels.go, on package labeling), with the role and row scoping of
// docs/compatibility.md#agent-permissions enforced here.
package agents

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// AgentRepository stores agents.
type AgentRepository interface {
	ListAgents(ctx context.Context) ([]agent.Agent, error)
	CreateAgent(ctx context.Context, a *agent.Agent) error
	GetAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error)
	FindAgent(ctx context.Context, name, cluster string) (agent.Agent, error)
	UpdateAgent(ctx context.Context, id uuid.UUID, fn func(*agent.Agent) error) (agent.Agent, error)
	DeleteAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error)
	// ListRegisteredAgents lists the live agents registered with the
	// generator, in ListAgents' order (a generator's GET /agents).
	ListRegisteredAgents(ctx context.Context, generatorID uuid.UUID) ([]agent.Agent, error)
	// Heartbeat stamps the agent's heartbeat and returns the previous one
	// (nil: never seen).
	Heartbeat(ctx context.Context, id uuid.UUID) (agent.Agent, *time.Time, error)
}

// TargetRepository stores an agent's explicit stack targets and answers
// which stacks are associated with it.
type TargetRepository interface {
	ListAgentTargets(ctx context.Context, agentID uuid.UUID) ([]agent.Target, error)
	AddAgentTarget(ctx context.Context, agentID, stackID uuid.UUID) (agent.Target, error)
	RemoveAgentTarget(ctx context.Context, agentID, stackID uuid.UUID) error
	AssociatedStacks(ctx context.Context, agentID uuid.UUID) ([]stack.Stack, error)
}

// EventRepository stores what agents report and answers who may report or
// see it.
type EventRepository interface {
	ListAgentEvents(ctx context.Context, agentID uuid.UUID) ([]agent.Event, error)
	ListEvents(ctx context.Context, scope EventScope) ([]agent.Event, error)
	GetEvent(ctx context.Context, id uuid.UUID) (agent.Event, error)
	CreateAgentEvent(ctx context.Context, e *agent.Event) error
	// AgentMayReport reports whether the agent is (or was) associated with
	// the object's stack; false when the object does not exist.
	AgentMayReport(ctx context.Context, agentID, deploymentObjectID uuid.UUID) (bool, error)
	// GeneratorOwnsObject reports whether generator gen owns the stack of
	// the deployment object.
	GeneratorOwnsObject(ctx context.Context, gen, deploymentObjectID uuid.UUID) (bool, error)
}

// ObjectReader reads a deployment object's stack and marker flag, deleted
// objects included (an agent may report on an object of a stack deleted
// meanwhile).
type ObjectReader interface {
	DeploymentObjectRef(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error)
}

// DependencyWatch tells whether an agent's report on an object may
// release another stack's object to that agent (docs/dependencies.md).
type DependencyWatch interface {
	// ObjectDependedOn reports whether some live stack depends on the
	// object's stack.
	ObjectDependedOn(ctx context.Context, objectID uuid.UUID) (bool, error)
}

// Registrar registers a new agent with the generators POST /agents names
// in generator_ids (the system generator is registered by CreateAgent).
type Registrar interface {
	// Register records the pair; domain.ErrConflict when it exists.
	Register(ctx context.Context, agentID, generatorID uuid.UUID) (agent.Registration, error)
}

// GeneratorChecker tells whether a live generator has an id.
type GeneratorChecker interface {
	GeneratorExists(ctx context.Context, id uuid.UUID) (bool, error)
}

// Repos are the ports the agent use cases persist through; every
// repository joins the transaction Tx carries in the context.
type Repos struct {
	Tx            journal.Transactor
	Journal       journal.Recorder
	Agents        AgentRepository
	Targets       TargetRepository
	Events        EventRepository
	Objects       ObjectReader
	Dependencies  DependencyWatch
	Registrations Registrar
	Generators    GeneratorChecker
}

// EventScope narrows the global event list to what a principal may see.
type EventScope struct {
	AgentID     *uuid.UUID
	GeneratorID *uuid.UUID
	// RegisteredWith keeps the events of agents registered with that
	// generator (GET /agent-events?pak_id=, a view filter).
	RegisteredWith *uuid.UUID
}

// ChangeNotifier wakes target-state long-polls of an agent after commit.
type ChangeNotifier interface {
	AgentChanged(ctx context.Context, agentID uuid.UUID)
	// ObjectAcknowledged: a SUCCESS event hides the object from the agent's
	// default target state.
	ObjectAcknowledged(ctx context.Context, agentID, objectID uuid.UUID)
	// Noted tells live views (the console) that something they show
	// changed without a target-state change; coalesced by the notifier.
	Noted(ctx context.Context, what string)
}

// Service implements the agent use cases.
type Service struct {
	repos   Repos
	creds   authn.Credentials
	changes ChangeNotifier
}

// NewService wires the use cases.
func NewService(repos Repos, paks authn.PAKIssuer, inval authn.Invalidator, changes ChangeNotifier) *Service {
	return &Service{repos: repos, creds: authn.Credentials{Issuer: paks, Inval: inval}, changes: changes}
}

// The refusals carry 0.9.1's codes (docs/error-codes.md): admin_required
// where only the admin may act, agent_pak_mismatch where the caller is not
// the agent in the path.
var (
	errUnauthorized = domain.ForbiddenCode("admin_required", "Unauthorized")
	errNotSelf      = domain.ForbiddenCode("agent_pak_mismatch", "Unauthorized")
)

// Policies of the agent use cases; the HTTP layer runs the same values as
// route guards (see package policy).
var (
	AdminOnly = policy.Allow(errUnauthorized, policy.Admin)
	// Listers may call GET /agents: the admin (every agent) and a
	// generator (the agents registered with it); anybody else gets 0.9.1's
	// 403 generator_required.
	Listers     = policy.Allow(domain.ForbiddenCode(CodeGeneratorRequired, "Unauthorized"), policy.Admin, policy.AnyGenerator)
	AdminOrSelf = policy.Allow(errNotSelf, policy.Admin, policy.SelfAgent)
	// SelfOnly admits only the agent itself (heartbeats).
	SelfOnly = policy.Allow(errNotSelf, policy.SelfAgent)
)

func adminOrSelf(p identity.Principal, id uuid.UUID) error { return AdminOrSelf.CheckID(p, id) }

// readable checks that the caller may read agent id and that it exists, so
// a list under an unknown agent is a 404 rather than []
// (docs/compatibility.md#check-order).
func (s *Service) readable(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := adminOrSelf(p, id); err != nil {
		return err
	}
	_, err := s.repos.Agents.GetAgent(ctx, id)
	return err
}

func adminOrSystem(p identity.Principal) bool {
	return p.IsAdmin() || p.Role == identity.RoleSystem
}

// Codes of 0.9.1's catalogue (docs/error-codes.md).
const (
	// CodeInvalidGeneratorID: a generator_ids entry of POST /agents names
	// no live generator (400).
	CodeInvalidGeneratorID = "invalid_generator_id"
	// CodeGeneratorRequired: GET /agents by a caller that is neither the
	// admin nor a generator (403).
	CodeGeneratorRequired = "generator_required"
	// CodeNotATenant: GET /agents by the system generator, which is no
	// tenant (403; nothing authenticates as it today).
	CodeNotATenant = "system_generator_not_a_tenant"
)

// CreateInput is the body of POST /agents.
type CreateInput struct {
	Name        string
	ClusterName string
	// GeneratorIDs are registered with the new agent in its creating
	// transaction, on top of the system generator (0.9.1's generator_ids).
	GeneratorIDs []uuid.UUID
}

func validateNames(name, cluster string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return domain.InvalidCode("invalid_agent", "name cannot be empty")
	case strings.TrimSpace(cluster) == "":
		return domain.InvalidCode("invalid_agent", "cluster_name cannot be empty")
	case len(name) > 255 || len(cluster) > 255:
		return domain.InvalidCode("invalid_agent", "name and cluster_name cannot exceed 255 characters")
	}
	return nil
}

// List returns every live agent to the admin and, to a generator, the live
// agents registered with it (0.9.1's tenant-scoped GET /agents).
func (s *Service) List(ctx context.Context, p identity.Principal) ([]agent.Agent, error) {
	if err := Listers.Check(p); err != nil {
		return nil, err
	}
	if p.IsAdmin() {
		return s.repos.Agents.ListAgents(ctx)
	}
	if p.ID == generator.SystemID {
		return nil, domain.ForbiddenCode(CodeNotATenant, "The system generator is not a tenant")
	}
	return s.repos.Agents.ListRegisteredAgents(ctx, p.ID)
}

// extraGenerators checks POST /agents' generator_ids before anything is
// created and returns them without repeats and without the system
// generator, which every agent is registered with anyway.
func (s *Service) extraGenerators(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error) {
	var out []uuid.UUID
	seen := map[uuid.UUID]bool{generator.SystemID: true}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		ok, err := s.repos.Generators.GeneratorExists(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, domain.InvalidCode(CodeInvalidGeneratorID, "Invalid generator ID: "+id.String())
		}
		out = append(out, id)
	}
	return out, nil
}

// Create registers an agent and returns its initial PAK, shown once.
func (s *Service) Create(ctx context.Context, p identity.Principal, in CreateInput) (agent.Agent, secret.String, error) {
	if !adminOrSystem(p) {
		return agent.Agent{}, "", errUnauthorized
	}
	if err := validateNames(in.Name, in.ClusterName); err != nil {
		return agent.Agent{}, "", err
	}
	extra, err := s.extraGenerators(ctx, in.GeneratorIDs)
	if err != nil {
		return agent.Agent{}, "", err
	}
	pak, hash, err := s.creds.Issue(ctx, "Failed to create PAK")
	if err != nil {
		return agent.Agent{}, "", err
	}
	a := agent.Agent{Name: in.Name, ClusterName: in.ClusterName, Status: agent.StatusActive, PakHash: hash}
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Agents.CreateAgent(ctx, &a); err != nil {
			return conflictMsg(err, "An agent with this name and cluster_name already exists")
		}
		for _, g := range extra {
			if _, err := s.repos.Registrations.Register(ctx, a.ID, g); err != nil {
				return err
			}
		}
		ev := event.New(event.AgentRegistered, map[string]any{
			"agent_id": a.ID, "name": a.Name, "cluster_name": a.ClusterName, "cluster": a.ClusterName,
			"status": a.Status, "created_at": a.CreatedAt,
		})
		return journal.Record(ctx, s.repos.Journal,
			journal.Entry(ctx, p, audit.ActionAgentCreated, "agent", a.ID,
				map[string]any{"name": a.Name, "cluster_name": a.ClusterName, "generator_ids": registeredWith(extra)}), &ev)
	})
	if err != nil {
		return agent.Agent{}, "", err
	}
	return a, pak, nil
}

// Search finds an agent by name and cluster (GET /agents/?name=&cluster_name=).
func (s *Service) Search(ctx context.Context, p identity.Principal, name, cluster string) (agent.Agent, error) {
	// Role before validation (docs/compatibility.md#check-order): a
	// generator may never search.
	if !p.IsAdmin() && p.Role != identity.RoleAgent {
		return agent.Agent{}, errUnauthorized
	}
	if name == "" || cluster == "" {
		return agent.Agent{}, domain.InvalidCode("name_and_cluster_required", "Invalid request: name and cluster_name are required")
	}
	a, err := s.repos.Agents.FindAgent(ctx, name, cluster)
	if err != nil {
		return agent.Agent{}, err
	}
	if err := adminOrSelf(p, a.ID); err != nil {
		return agent.Agent{}, err
	}
	return a, nil
}

// Get returns one agent (admin or the agent itself).
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (agent.Agent, error) {
	if err := adminOrSelf(p, id); err != nil {
		return agent.Agent{}, err
	}
	return s.repos.Agents.GetAgent(ctx, id)
}

// UpdateInput is a partial update; nil fields are unchanged.
type UpdateInput struct {
	Name        *string
	ClusterName *string
	Status      *string
}

// Update changes name, cluster or status. An agent may rename itself but
// never change its own status (docs/compatibility.md#agent-permissions).
func (s *Service) Update(ctx context.Context, p identity.Principal, id uuid.UUID, in UpdateInput) (agent.Agent, error) {
	if err := adminOrSelf(p, id); err != nil {
		return agent.Agent{}, err
	}
	if in.Status != nil {
		if !p.IsAdmin() {
			return agent.Agent{}, domain.ForbiddenCode("admin_required", "Agents cannot change their own status")
		}
		st := strings.ToUpper(strings.TrimSpace(*in.Status))
		if st != agent.StatusActive && st != agent.StatusInactive {
			return agent.Agent{}, domain.InvalidCode("invalid_agent", "status must be ACTIVE or INACTIVE")
		}
		in.Status = &st
	}
	var out agent.Agent
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.repos.Agents.UpdateAgent(ctx, id, func(a *agent.Agent) error {
			if in.Name != nil {
				a.Name = *in.Name
			}
			if in.ClusterName != nil {
				a.ClusterName = *in.ClusterName
			}
			if in.Status != nil {
				a.Status = *in.Status
			}
			return validateNames(a.Name, a.ClusterName)
		})
		if err != nil {
			return conflictMsg(err, "An agent with this name and cluster_name already exists")
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionAgentUpdated, "agent", id,
			map[string]any{"name": out.Name, "cluster_name": out.ClusterName, "status": out.Status}))
	})
	if err != nil {
		return agent.Agent{}, err
	}
	s.changes.AgentChanged(ctx, id)
	return out, nil
}

// Delete soft-deletes an agent; its PAK stops working at once everywhere.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := AdminOnly.Check(p); err != nil {
		return err
	}
	var deleted agent.Agent
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if deleted, err = s.repos.Agents.DeleteAgent(ctx, id); err != nil {
			return err
		}
		ev := event.New(event.AgentDeregistered, map[string]any{
			"agent_id": id, "name": deleted.Name, "deleted_at": deleted.DeletedAt,
		})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, audit.ActionAgentDeleted, "agent", id, nil), &ev)
	})
	if err != nil {
		return err
	}
	s.creds.Revoke(ctx, deleted.PakHash)
	s.changes.AgentChanged(ctx, id)
	return nil
}

// RotatePAK issues a new PAK for the agent; the old one fails at once.
func (s *Service) RotatePAK(ctx context.Context, p identity.Principal, id uuid.UUID) (agent.Agent, secret.String, error) {
	if !adminOrSystem(p) && !p.IsAgent(id) {
		return agent.Agent{}, "", domain.ForbiddenCode("agent_pak_mismatch", "Unauthorized access")
	}
	if _, err := s.repos.Agents.GetAgent(ctx, id); err != nil {
		return agent.Agent{}, "", err
	}
	return authn.RotateRecord(ctx, s.creds, s.repos.Tx.InTx,
		func(ctx context.Context, hash string) (out agent.Agent, old string, err error) {
			out, err = s.repos.Agents.UpdateAgent(ctx, id, func(a *agent.Agent) error {
				old, a.PakHash = a.PakHash, hash
				return nil
			})
			return out, old, err
		},
		func(ctx context.Context, a agent.Agent) error {
			return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionPakRotated, "agent", id,
				map[string]any{"agent_name": a.Name}))
		})
}

// Heartbeat records that the agent is alive and returns its record, so the
// agent learns status changes on its next beat
// (docs/compatibility.md#heartbeat-returns-agent).
func (s *Service) Heartbeat(ctx context.Context, p identity.Principal, id uuid.UUID) (agent.Agent, error) {
	if err := SelfOnly.CheckID(p, id); err != nil {
		return agent.Agent{}, err
	}
	a, previous, err := s.repos.Agents.Heartbeat(ctx, id)
	if err != nil {
		return a, err
	}
	// The console shows heartbeat ages relative to the stamp, so only a
	// transition needs a push: seen for the first time, or again after
	// being stale. Steady heartbeats of a fleet publish nothing.
	if a.LastHeartbeat != nil && (previous == nil || a.LastHeartbeat.Sub(*previous) > agent.StaleAfter) {
		s.changes.Noted(ctx, "heartbeat")
	}
	return a, nil
}

// Stacks returns the stacks associated with the agent.
func (s *Service) Stacks(ctx context.Context, p identity.Principal, id uuid.UUID) ([]stack.Stack, error) {
	if err := s.readable(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Targets.AssociatedStacks(ctx, id)
}

// Targets lists the agent's explicit stack targets.
func (s *Service) Targets(ctx context.Context, p identity.Principal, id uuid.UUID) ([]agent.Target, error) {
	if err := s.readable(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Targets.ListAgentTargets(ctx, id)
}

// AddTarget binds the agent to a stack (admin only:
// docs/compatibility.md#agent-permissions).
func (s *Service) AddTarget(ctx context.Context, p identity.Principal, id, stackID uuid.UUID) (agent.Target, error) {
	if err := AdminOnly.Check(p); err != nil {
		return agent.Target{}, err
	}
	var out agent.Target
	err := s.mutate(ctx, p, id, func(ctx context.Context) (err error) {
		out, err = s.repos.Targets.AddAgentTarget(ctx, id, stackID)
		return conflictMsg(err, "Target already exists")
	}, audit.ActionTargetAdded, map[string]any{"stack_id": stackID})
	return out, err
}

// RemoveTarget unbinds the agent from a stack; nothing is deleted in the
// cluster (docs/compatibility.md#untarget-keeps-objects).
func (s *Service) RemoveTarget(ctx context.Context, p identity.Principal, id, stackID uuid.UUID) error {
	if err := AdminOnly.Check(p); err != nil {
		return err
	}
	return s.mutate(ctx, p, id, func(ctx context.Context) error {
		return s.repos.Targets.RemoveAgentTarget(ctx, id, stackID)
	}, audit.ActionTargetRemoved, map[string]any{"stack_id": stackID})
}

// mutate runs a change to one of the agent's associations with its audit
// entry in one transaction, then wakes the agent's long-poll.
func (s *Service) mutate(ctx context.Context, p identity.Principal, id uuid.UUID, fn func(ctx context.Context) error, action string, details map[string]any) error {
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.repos.Agents.GetAgent(ctx, id); err != nil {
			return err
		}
		if err := fn(ctx); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, action, "agent", id, details))
	})
	if err == nil {
		s.changes.AgentChanged(ctx, id)
	}
	return err
}

// Events lists the agent's events, newest first.
func (s *Service) Events(ctx context.Context, p identity.Principal, id uuid.UUID) ([]agent.Event, error) {
	if err := s.readable(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Events.ListAgentEvents(ctx, id)
}

// EventInput is the body of POST /agents/{id}/events.
type EventInput struct {
	AgentID            *uuid.UUID
	DeploymentObjectID uuid.UUID
	EventType          string
	Status             string
	Message            *string
}

// ReportEvent stores what the agent did with a deployment object and emits
// deployment.applied or deployment.failed.
func (s *Service) ReportEvent(ctx context.Context, p identity.Principal, id uuid.UUID, in EventInput) (agent.Event, error) {
	if err := adminOrSelf(p, id); err != nil {
		return agent.Event{}, err
	}
	if in.AgentID != nil && *in.AgentID != id {
		return agent.Event{}, domain.InvalidCode("agent_id_mismatch", "agent_id in the body must match the path")
	}
	switch {
	case in.DeploymentObjectID == uuid.Nil:
		return agent.Event{}, domain.Invalid("deployment_object_id is required")
	case strings.TrimSpace(in.EventType) == "" || len(in.EventType) > 50:
		return agent.Event{}, domain.Invalid("event_type must be 1 to 50 characters")
	case strings.TrimSpace(in.Status) == "" || len(in.Status) > 10:
		return agent.Event{}, domain.Invalid("status must be 1 to 10 characters")
	}
	// Normalise the two statuses target state depends on, so "success" from
	// a lenient client acknowledges the object too.
	for _, known := range []string{agent.EventSuccess, agent.EventFailure} {
		if strings.EqualFold(in.Status, known) {
			in.Status = known
		}
	}
	e := agent.Event{AgentID: id, DeploymentObjectID: in.DeploymentObjectID, EventType: in.EventType,
		Status: in.Status, Message: in.Message}
	releases := false
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.repos.Agents.GetAgent(ctx, id); err != nil {
			return err
		}
		// An agent reports only on objects of stacks it is (or was)
		// associated with; another tenant's object is answered exactly
		// like a missing one, so its existence is not confirmed either.
		if !p.IsAdmin() {
			ok, err := s.repos.Events.AgentMayReport(ctx, id, e.DeploymentObjectID)
			if err != nil {
				return err
			}
			if !ok {
				return errObjectNotFound
			}
		}
		if err := s.repos.Events.CreateAgentEvent(ctx, &e); err != nil {
			return err
		}
		obj, err := s.repos.Objects.DeploymentObjectRef(ctx, e.DeploymentObjectID)
		if err != nil {
			return err
		}
		if e.Status == agent.EventSuccess || e.Status == agent.EventFailure {
			if releases, err = s.repos.Dependencies.ObjectDependedOn(ctx, e.DeploymentObjectID); err != nil {
				return err
			}
		}
		ev := event.New(eventType(e, obj.IsDeletionMarker), map[string]any{
			"agent_event_id": e.ID, "agent_id": id, "deployment_object_id": e.DeploymentObjectID,
			"stack_id": obj.StackID, "event_type": e.EventType, "status": e.Status, "message": e.Message,
			"error": failureMessage(e), "created_at": e.CreatedAt,
		})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, audit.ActionAgentEventCreated, "agent_event", e.ID,
			map[string]any{"agent_id": id, "deployment_object_id": e.DeploymentObjectID, "status": e.Status}), &ev)
	})
	if err == nil && e.Status == agent.EventSuccess {
		// A SUCCESS hides the object from the agent's target state; other
		// statuses change nothing there.
		s.changes.ObjectAcknowledged(ctx, id, e.DeploymentObjectID)
	}
	if err == nil && releases {
		// Another stack's object may now reach (or wait for) this agent.
		s.changes.AgentChanged(ctx, id)
	}
	return e, err
}

// eventType maps an agent event to the domain event it announces: drift
// reports are deployment.drifted; a successfully processed deletion marker
// is deployment.deleted (docs/compatibility.md#event-payloads); otherwise
// applied or failed.
func eventType(e agent.Event, marker bool) string {
	success := strings.EqualFold(e.Status, agent.EventSuccess)
	switch {
	case strings.EqualFold(e.EventType, agent.EventTypeDrift):
		return event.DeploymentDrifted
	case marker && success:
		return event.DeploymentDeleted
	case success:
		return event.DeploymentApplied
	}
	return event.DeploymentFailed
}

// failureMessage fills the docs' `error` field of deployment.failed.
func failureMessage(e agent.Event) *string {
	if strings.EqualFold(e.Status, agent.EventSuccess) {
		return nil
	}
	return e.Message
}

// AllEvents lists events scoped to the caller: admin all, an agent its own,
// a generator those on its stacks' objects
// (docs/compatibility.md#agent-events-scope).
// tenant, when set, narrows the list further to the events of agents
// registered with that generator (0.9.1's ?pak_id=: a view filter that
// never widens what the caller may see).
func (s *Service) AllEvents(ctx context.Context, p identity.Principal, tenant *uuid.UUID) ([]agent.Event, error) {
	scope := EventScope{RegisteredWith: tenant}
	switch p.Role {
	case identity.RoleAdmin:
	case identity.RoleAgent:
		scope.AgentID = &p.ID
	case identity.RoleGenerator:
		scope.GeneratorID = &p.ID
	default:
		return nil, errUnauthorized
	}
	return s.repos.Events.ListEvents(ctx, scope)
}

// GetEvent returns one event if the caller may see it.
func (s *Service) GetEvent(ctx context.Context, p identity.Principal, id uuid.UUID) (agent.Event, error) {
	e, err := s.repos.Events.GetEvent(ctx, id)
	if err != nil {
		return agent.Event{}, err
	}
	switch {
	case p.IsAdmin(), p.IsAgent(e.AgentID):
		return e, nil
	case p.Role == identity.RoleGenerator:
		ok, err := s.repos.Events.GeneratorOwnsObject(ctx, p.ID, e.DeploymentObjectID)
		if err != nil {
			return agent.Event{}, err
		}
		if ok {
			return e, nil
		}
	}
	return agent.Event{}, errUnauthorized
}

// errObjectNotFound answers an event on an object the agent may not report
// on, or that does not exist.
var errObjectNotFound = domain.Unprocessable("Deployment object not found")

// conflictMsg gives a unique violation a message naming what clashed.
func conflictMsg(err error, msg string) error {
	return domain.Rephrase(err, domain.ErrConflict, msg)
}

// registeredWith lists every generator a new agent is registered with, the
// system generator first.
func registeredWith(extra []uuid.UUID) []uuid.UUID {
	return append([]uuid.UUID{generator.SystemID}, extra...)
}
