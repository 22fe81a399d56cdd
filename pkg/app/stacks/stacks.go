// Package stacks holds the stack use cases: stacks, their labels and
// annotations, and their immutable deployment objects.
package stacks

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// StackRepository stores stacks.
type StackRepository interface {
	// ListStacks returns live stacks, all or only generatorID's.
	ListStacks(ctx context.Context, generatorID *uuid.UUID) ([]stack.Stack, error)
	// CreateStack inserts s, filling id and timestamps; domain.ErrConflict
	// when a live stack has the name.
	CreateStack(ctx context.Context, s *stack.Stack) error
	// GetStack returns a live stack (404 "Stack not found").
	GetStack(ctx context.Context, id uuid.UUID) (stack.Stack, error)
	// UpdateStack locks a live stack, lets fn change it and writes it back.
	UpdateStack(ctx context.Context, id uuid.UUID, fn func(*stack.Stack) error) (stack.Stack, error)
	// DeleteStack soft-deletes a live stack, which soft-deletes its objects
	// and adds a deletion marker (docs/compatibility.md#deletion-markers).
	DeleteStack(ctx context.Context, id uuid.UUID) (stack.Stack, error)
	// AgentAssociated reports whether the stack is associated with the agent
	// (target, label or annotation).
	AgentAssociated(ctx context.Context, agentID, stackID uuid.UUID) (bool, error)
}

// DeploymentObjectRepository stores a stack's immutable deployment objects.
type DeploymentObjectRepository interface {
	// ListDeploymentObjects returns a stack's live objects, newest first.
	ListDeploymentObjects(ctx context.Context, stackID uuid.UUID) ([]stack.DeploymentObject, error)
	// CreateDeploymentObject inserts d with the next sequence id; 404 "Stack
	// not found" unless its stack is live.
	CreateDeploymentObject(ctx context.Context, d *stack.DeploymentObject) error
	// GetDeploymentObject returns a live object (404).
	GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error)
}

// GeneratorChecker tells whether a generator exists (an admin may create a
// stack for any existing generator).
type GeneratorChecker interface {
	GeneratorExists(ctx context.Context, id uuid.UUID) (bool, error)
}

// Repos is the persistence the stack use cases need; every port shares the
// transaction Tx opens.
type Repos struct {
	Tx         journal.Transactor
	Journal    journal.Recorder
	Stacks     StackRepository
	Objects    DeploymentObjectRepository
	Generators GeneratorChecker
	// Dependencies and Withheld serve stack dependencies
	// (dependencies.go).
	Dependencies DependencyRepository
	Withheld     WithheldReader
}

// ChangeNotifier wakes target-state long-polls after commit.
type ChangeNotifier interface {
	// StackChanged: the stack's latest object changed, or it was deleted.
	StackChanged(ctx context.Context, stackID uuid.UUID)
	// StackLabelChanged: a stack gained or lost label, which changes the
	// association of exactly the agents carrying it.
	StackLabelChanged(ctx context.Context, label string)
	// StackAnnotationChanged: a stack gained or lost an annotation with key.
	StackAnnotationChanged(ctx context.Context, key string)
}

// Service implements the stack use cases.
type Service struct {
	repos   Repos
	changes ChangeNotifier
}

// NewService wires the use cases.
func NewService(repos Repos, changes ChangeNotifier) *Service {
	return &Service{repos: repos, changes: changes}
}

// errAccess refuses a caller that neither is admin nor owns the stack;
// errRole one whose role may not manage stacks at all (0.9.1's codes,
// docs/error-codes.md).
var (
	errAccess = domain.ForbiddenCode("stack_not_owned", "Access denied")
	errRole   = domain.ForbiddenCode("stack_not_accessible", "Access denied")
)

// AdminOrGenerator admits the roles that may manage stacks at all;
// ownership needs the row and is checked by the use cases.
var AdminOrGenerator = policy.Allow(errRole, policy.Admin, policy.AnyGenerator)

// List returns live stacks: all for the admin, its own for a generator.
func (s *Service) List(ctx context.Context, p identity.Principal) ([]stack.Stack, error) {
	switch p.Role {
	case identity.RoleAdmin:
		return s.repos.Stacks.ListStacks(ctx, nil)
	case identity.RoleGenerator:
		return s.repos.Stacks.ListStacks(ctx, &p.ID)
	}
	return nil, domain.ForbiddenCode("stacks_list_denied", "Admin or generator access required")
}

// ListTenant is List narrowed to the stacks of one generator (0.9.1's
// GET /stacks?pak_id=, a view filter: docs/compatibility.md#pak-id-filter);
// the system generator's id names the system stacks. It never widens what
// List shows the caller.
func (s *Service) ListTenant(ctx context.Context, p identity.Principal, tenant uuid.UUID) ([]stack.Stack, error) {
	all, err := s.List(ctx, p)
	if err != nil {
		return nil, err
	}
	out := []stack.Stack{}
	for _, st := range all {
		if st.OwnedBy(tenant) || (st.GeneratorID == nil && tenant == generator.SystemID) {
			out = append(out, st)
		}
	}
	return out, nil
}

// CreateInput is the body of POST /stacks. GeneratorID nil (or the nil
// UUID) from an admin makes a system stack
// (docs/compatibility.md#system-stacks).
type CreateInput struct {
	Name        string
	Description *string
	GeneratorID *uuid.UUID
	// DependsOn lists the stacks this one depends on (docs/dependencies.md).
	DependsOn []uuid.UUID
}

func validateStack(name string, description *string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return domain.Invalid("name cannot be empty")
	case len(name) > 255:
		return domain.Invalid("name cannot exceed 255 characters")
	case description != nil && strings.TrimSpace(*description) == "":
		return domain.Invalid("description cannot be blank")
	}
	return nil
}

// Create makes a stack.
func (s *Service) Create(ctx context.Context, p identity.Principal, in CreateInput) (stack.Stack, error) {
	// The nil UUID and the system generator's id both name a system stack,
	// stored without a generator (docs/compatibility.md#system-stacks).
	if in.GeneratorID != nil && (*in.GeneratorID == uuid.Nil || *in.GeneratorID == generator.SystemID) {
		in.GeneratorID = nil
	}
	switch p.Role {
	case identity.RoleAdmin:
	case identity.RoleGenerator:
		if in.GeneratorID != nil && *in.GeneratorID != p.ID {
			return stack.Stack{}, domain.ForbiddenCode("stack_generator_mismatch", "Generator can only create stacks for itself")
		}
		id := p.ID
		in.GeneratorID = &id
	default:
		return stack.Stack{}, domain.ForbiddenCode("stack_create_denied", "Admin or generator access required")
	}
	if err := validateStack(in.Name, in.Description); err != nil {
		return stack.Stack{}, err
	}
	st := stack.Stack{Name: in.Name, Description: in.Description, GeneratorID: in.GeneratorID}
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if st.GeneratorID != nil && p.IsAdmin() {
			ok, err := s.repos.Generators.GeneratorExists(ctx, *st.GeneratorID)
			if err != nil {
				return err
			}
			if !ok {
				return domain.Unprocessable("Generator not found")
			}
		}
		if err := s.repos.Stacks.CreateStack(ctx, &st); err != nil {
			return domain.Rephrase(err, domain.ErrConflict, "A stack with this name already exists")
		}
		if len(in.DependsOn) > 0 {
			deps, err := s.setDependencies(ctx, st, in.DependsOn)
			if err != nil {
				return err
			}
			st.DependsOn = deps
		}
		ev := event.New(event.StackCreated, map[string]any{
			"stack_id": st.ID, "name": st.Name, "description": st.Description, "generator_id": st.GeneratorID,
			"created_at": st.CreatedAt,
		})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, audit.ActionStackCreated, "stack", st.ID,
			map[string]any{"name": st.Name, "generator_id": st.GeneratorID, "depends_on": st.DependsOn}), &ev)
	})
	return st, err
}

// load returns a live stack the caller may manage: admin or owning generator.
func (s *Service) load(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error) {
	if !p.IsAdmin() && p.Role != identity.RoleGenerator {
		return stack.Stack{}, errRole
	}
	st, err := s.repos.Stacks.GetStack(ctx, id)
	if err != nil {
		return stack.Stack{}, err
	}
	if !p.IsAdmin() && !st.OwnedBy(p.ID) {
		return stack.Stack{}, errAccess
	}
	return st, nil
}

// loadForRead also admits an agent associated with the stack.
func (s *Service) loadForRead(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error) {
	if p.Role != identity.RoleAgent {
		return s.load(ctx, p, id)
	}
	st, err := s.repos.Stacks.GetStack(ctx, id)
	if err != nil {
		return stack.Stack{}, err
	}
	ok, err := s.repos.Stacks.AgentAssociated(ctx, p.ID, id)
	if err != nil {
		return stack.Stack{}, err
	}
	if !ok {
		return stack.Stack{}, errRole
	}
	return st, nil
}

// Get returns one stack.
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error) {
	return s.load(ctx, p, id)
}

// UpdateInput is a partial update; ClearDescription sets it to null.
type UpdateInput struct {
	ID               *uuid.UUID
	Name             *string
	Description      *string
	ClearDescription bool
	// DependsOn, when not nil, replaces the stack's dependencies (an empty
	// list removes them).
	DependsOn *[]uuid.UUID
}

// Update renames or re-describes a stack, or replaces its dependencies.
func (s *Service) Update(ctx context.Context, p identity.Principal, id uuid.UUID, in UpdateInput) (stack.Stack, error) {
	if _, err := s.load(ctx, p, id); err != nil {
		return stack.Stack{}, err
	}
	if in.ID != nil && *in.ID != id {
		return stack.Stack{}, domain.InvalidCode("stack_id_mismatch", "Stack ID mismatch")
	}
	var out stack.Stack
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.repos.Stacks.UpdateStack(ctx, id, func(st *stack.Stack) error {
			if in.Name != nil {
				st.Name = *in.Name
			}
			switch {
			case in.ClearDescription:
				st.Description = nil
			case in.Description != nil:
				st.Description = in.Description
			}
			return validateStack(st.Name, st.Description)
		})
		if err != nil {
			return domain.Rephrase(err, domain.ErrConflict, "A stack with this name already exists")
		}
		details := map[string]any{"name": out.Name}
		if in.DependsOn != nil {
			if out.DependsOn, err = s.setDependencies(ctx, out, *in.DependsOn); err != nil {
				return err
			}
			details["depends_on"] = out.DependsOn
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionStackUpdated, "stack", id, details))
	})
	if err == nil && in.DependsOn != nil {
		// Gating changed: the index reloads the stack's agents.
		s.changes.StackChanged(ctx, id)
	}
	return out, err
}

// Delete soft-deletes a stack; its objects go with it and a deletion marker
// tells associated agents to remove what they applied
// (docs/compatibility.md#deletion-markers).
func (s *Service) Delete(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if _, err := s.load(ctx, p, id); err != nil {
		return err
	}
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.refuseIfDependedOn(ctx, id); err != nil {
			return err
		}
		st, err := s.repos.Stacks.DeleteStack(ctx, id)
		if err != nil {
			return err
		}
		ev := event.New(event.StackDeleted, map[string]any{"stack_id": id, "name": st.Name, "deleted_at": st.DeletedAt})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, audit.ActionStackDeleted, "stack", id, nil), &ev)
	})
	if err == nil {
		s.changes.StackChanged(ctx, id)
	}
	return err
}

// DeploymentObjects lists a stack's live objects, newest first.
func (s *Service) DeploymentObjects(ctx context.Context, p identity.Principal, id uuid.UUID) ([]stack.DeploymentObject, error) {
	if _, err := s.load(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Objects.ListDeploymentObjects(ctx, id)
}

// DeploymentInput is the body of POST /stacks/{id}/deployment-objects.
type DeploymentInput struct {
	YAMLContent      string
	IsDeletionMarker bool
	// RolledBackFrom marks an object made by a rollback (pkg/app/rollouts).
	RolledBackFrom *uuid.UUID
}

// CreateDeploymentObject stores a new immutable version of the stack's YAML.
// Every document must parse, so a typo is a 400 now rather than a FAILURE
// event in every cluster later.
func (s *Service) CreateDeploymentObject(ctx context.Context, p identity.Principal, id uuid.UUID, in DeploymentInput) (stack.DeploymentObject, error) {
	if _, err := s.load(ctx, p, id); err != nil {
		return stack.DeploymentObject{}, err
	}
	if strings.TrimSpace(in.YAMLContent) == "" {
		return stack.DeploymentObject{}, domain.InvalidCode("invalid_deployment_object", "YAML content cannot be empty")
	}
	if _, err := stack.SplitYAML(in.YAMLContent); err != nil {
		return stack.DeploymentObject{}, domain.InvalidCode("invalid_deployment_object", "Invalid YAML: "+err.Error())
	}
	return s.Deploy(ctx, p, id, in, nil)
}

// Provenance is stored with an object in the same transaction (templates).
type Provenance func(ctx context.Context, d stack.DeploymentObject) error

// Deploy inserts a deployment object already validated by the caller, with
// its outbox event and audit entry, plus optional provenance, in one
// transaction. Exposed for template instantiation.
func (s *Service) Deploy(ctx context.Context, p identity.Principal, id uuid.UUID, in DeploymentInput, prov Provenance) (stack.DeploymentObject, error) {
	d := stack.DeploymentObject{StackID: id, YAMLContent: in.YAMLContent,
		YAMLChecksum: stack.Checksum(in.YAMLContent), IsDeletionMarker: in.IsDeletionMarker,
		RolledBackFrom: in.RolledBackFrom}
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Objects.CreateDeploymentObject(ctx, &d); err != nil {
			return err
		}
		if prov != nil {
			if err := prov(ctx, d); err != nil {
				return err
			}
		}
		ev := event.New(event.DeploymentCreated, map[string]any{
			"deployment_object_id": d.ID, "stack_id": id, "sequence_id": d.SequenceID,
			"is_deletion_marker": d.IsDeletionMarker, "created_at": d.CreatedAt,
		})
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, audit.ActionDeploymentCreated, "deployment_object", d.ID,
			map[string]any{"stack_id": id, "sequence_id": d.SequenceID, "is_deletion_marker": d.IsDeletionMarker}), &ev)
	})
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	s.changes.StackChanged(ctx, id)
	return d, nil
}

// GetDeploymentObject returns one object if the caller may see it: admin,
// the owning generator, or an agent the stack is associated with.
func (s *Service) GetDeploymentObject(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.DeploymentObject, error) {
	d, err := s.repos.Objects.GetDeploymentObject(ctx, id)
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	switch p.Role {
	case identity.RoleAdmin:
		return d, nil
	case identity.RoleAgent:
		ok, err := s.repos.Stacks.AgentAssociated(ctx, p.ID, d.StackID)
		if err != nil {
			return stack.DeploymentObject{}, err
		}
		if ok {
			return d, nil
		}
		return stack.DeploymentObject{}, domain.ForbiddenCode("agent_not_associated", "Agent is not associated with this deployment object")
	case identity.RoleGenerator:
		st, err := s.repos.Stacks.GetStack(ctx, d.StackID)
		if err != nil {
			return stack.DeploymentObject{}, domain.NotFoundCode("stack_not_found", "Stack not found for this deployment object")
		}
		if st.OwnedBy(p.ID) {
			return d, nil
		}
		return stack.DeploymentObject{}, domain.ForbiddenCode("generator_not_associated", "Generator is not associated with this deployment object")
	}
	return stack.DeploymentObject{}, errAccess
}
