// Package registrations holds generator registration: an agent's consent to
// receive a generator's stacks (docs/compatibility.md#generator-registration).
// Every agent is registered with the system generator when it is created
// (pkg/adapters/postgres Agents.CreateAgent); these use cases add and remove
// the others and list them. Whether registration also limits which stacks
// reach an agent is the broker setting broker.require_generator_registration
// (Boundary).
package registrations

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Boundary is the consent-boundary setting
// (broker.require_generator_registration). Off (the seed's behaviour): any
// stack reaches any agent its targets, labels or annotations name. On
// (0.9.1's behaviour): a stack reaches an agent only when the agent is
// registered with the stack's generator, whatever the association path,
// and explicit targets can be added or removed only for such stacks.
type Boundary struct{ Required bool }

// Repository stores registrations.
type Repository interface {
	// Register records the pair; domain.ErrConflict when it exists.
	Register(ctx context.Context, agentID, generatorID uuid.UUID) (agent.Registration, error)
	// Deregister removes the pair and the agent's explicit targets on the
	// generator's stacks; removed reports whether the pair existed.
	Deregister(ctx context.Context, agentID, generatorID uuid.UUID) (removed bool, err error)
	ListByAgent(ctx context.Context, agentID uuid.UUID) ([]agent.Registration, error)
	ListByGenerator(ctx context.Context, generatorID uuid.UUID) ([]agent.Registration, error)
	// IsRegistered reports whether the agent may receive stacks of
	// generator gen; a nil gen is a system stack (the system generator).
	IsRegistered(ctx context.Context, agentID uuid.UUID, gen *uuid.UUID) (bool, error)
}

// GeneratorReader reads a live generator.
type GeneratorReader interface {
	GetGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error)
}

// AgentReader reads a live agent.
type AgentReader interface {
	GetAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error)
}

// Repos are the ports the registration use cases persist through.
type Repos struct {
	Tx            journal.Transactor
	Journal       journal.Recorder
	Registrations Repository
	Generators    GeneratorReader
	Agents        AgentReader
}

// ChangeNotifier tells target state that an agent's registrations changed
// (its targets or, under the boundary, its label and annotation matches).
type ChangeNotifier interface {
	AgentChanged(ctx context.Context, agentID uuid.UUID)
}

// Service implements the registration use cases.
type Service struct {
	repos   Repos
	changes ChangeNotifier
}

// NewService wires the use cases.
func NewService(repos Repos, changes ChangeNotifier) *Service {
	return &Service{repos: repos, changes: changes}
}

// Codes of 0.9.1's catalogue (docs/error-codes.md#registration-codes).
const (
	CodeAlreadyRegistered  = "already_registered"
	CodeMissingAgentID     = "missing_agent_id"
	CodeGeneratorNotFound  = "generator_not_found"
	CodeAgentNotFound      = "agent_not_found"
	CodeNotATenant         = "system_generator_not_a_tenant"
	CodeAgentNotRegistered = "agent_not_registered"
)

var errForbidden = domain.Forbidden("Only the agent itself or an admin may change its registrations")

// Policies of the registration use cases; the HTTP layer runs the same
// values as route guards (see package policy).
var (
	// Changers may register and deregister: the admin (and the CLI) for
	// any agent, an agent for itself. A generator never may (0.9.1).
	Changers = policy.Allow(errForbidden, policy.Admin, policy.System, policy.AnyAgent)
	// AgentReaders may list an agent's registrations.
	AgentReaders = policy.Allow(domain.Forbidden("Unauthorized access"), policy.Admin, policy.SelfAgent)
	// GeneratorReaders may list the agents registered with a generator.
	GeneratorReaders = policy.Allow(domain.Forbidden("Unauthorized access"), policy.Admin, policy.SelfGenerator)
)

// NotRegistered is the error of a target change the boundary refuses.
func NotRegistered() error {
	return domain.WithCode(domain.Forbidden("Agent is not registered with the stack's generator"), CodeAgentNotRegistered)
}

// CheckChange runs what a register/deregister call checks before its body
// is read: the caller's role, then that the generator exists (403, then
// 404 generator_not_found, before any 400: docs/compatibility.md#check-order).
func (s *Service) CheckChange(ctx context.Context, p identity.Principal, genID uuid.UUID) error {
	if err := Changers.Check(p); err != nil {
		return err
	}
	_, err := s.generator(ctx, genID)
	return err
}

// subject resolves which agent a register/deregister call is about: the
// calling agent itself (agent_id omitted or its own), or the agent_id an
// admin names.
func subject(p identity.Principal, agentID *uuid.UUID) (uuid.UUID, error) {
	if p.Role == identity.RoleAgent {
		if agentID != nil && *agentID != p.ID {
			return uuid.Nil, errForbidden
		}
		return p.ID, nil
	}
	if agentID == nil || *agentID == uuid.Nil {
		return uuid.Nil, domain.WithCode(domain.Invalid("agent_id is required"), CodeMissingAgentID)
	}
	return *agentID, nil
}

func (s *Service) generator(ctx context.Context, id uuid.UUID) (generator.Generator, error) {
	g, err := s.repos.Generators.GetGenerator(ctx, id)
	return g, domain.WithCode(err, CodeGeneratorNotFound)
}

// Register registers an agent with generator genID
// (POST /generators/{id}/register). Not idempotent: a repeat is a 409
// already_registered.
func (s *Service) Register(ctx context.Context, p identity.Principal, genID uuid.UUID, agentID *uuid.UUID) (agent.Registration, error) {
	if err := s.CheckChange(ctx, p, genID); err != nil {
		return agent.Registration{}, err
	}
	who, err := subject(p, agentID)
	if err != nil {
		return agent.Registration{}, err
	}
	if _, err := s.repos.Agents.GetAgent(ctx, who); err != nil {
		return agent.Registration{}, domain.WithCode(err, CodeAgentNotFound)
	}
	var out agent.Registration
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if out, err = s.repos.Registrations.Register(ctx, who, genID); err != nil {
			if errors.Is(err, domain.ErrConflict) {
				// 0.9.1's code, not the generic unique_violation.
				return domain.WithCode(domain.Conflict("Agent is already registered with this generator"), CodeAlreadyRegistered)
			}
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionAgentRegistered, "agent", who,
			map[string]any{"generator_id": genID}))
	})
	if err != nil {
		return agent.Registration{}, err
	}
	s.changes.AgentChanged(ctx, who)
	return out, nil
}

// Deregister removes an agent's registration with generator genID and the
// agent's explicit targets on that generator's stacks; the agent prunes
// what they delivered through its normal target-state flow. Deregistering
// a pair that was never registered is a no-op (204), as in 0.9.1.
func (s *Service) Deregister(ctx context.Context, p identity.Principal, genID uuid.UUID, agentID *uuid.UUID) error {
	if err := s.CheckChange(ctx, p, genID); err != nil {
		return err
	}
	who, err := subject(p, agentID)
	if err != nil {
		return err
	}
	removed := false
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		if removed, err = s.repos.Registrations.Deregister(ctx, who, genID); err != nil || !removed {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionAgentDeregistered, "agent", who,
			map[string]any{"generator_id": genID}))
	})
	if err != nil {
		return err
	}
	if removed {
		s.changes.AgentChanged(ctx, who)
	}
	return nil
}

// ForAgent lists an agent's registrations (GET /agents/{id}/registrations):
// admin or the agent itself.
func (s *Service) ForAgent(ctx context.Context, p identity.Principal, agentID uuid.UUID) ([]agent.Registration, error) {
	if err := AgentReaders.CheckID(p, agentID); err != nil {
		return nil, err
	}
	if _, err := s.repos.Agents.GetAgent(ctx, agentID); err != nil {
		return nil, domain.WithCode(err, CodeAgentNotFound)
	}
	return s.repos.Registrations.ListByAgent(ctx, agentID)
}

// ForGenerator lists the agents registered with a generator
// (GET /generators/{id}/registered-agents): admin or the generator itself.
// The system generator is no tenant: every agent is registered with it, so
// only the admin may list it.
func (s *Service) ForGenerator(ctx context.Context, p identity.Principal, genID uuid.UUID) ([]agent.Registration, error) {
	if err := GeneratorReaders.CheckID(p, genID); err != nil {
		return nil, err
	}
	g, err := s.generator(ctx, genID)
	if err != nil {
		return nil, err
	}
	if g.IsSystem && !p.IsAdmin() {
		return nil, domain.WithCode(domain.Forbidden("The system generator is not a tenant"), CodeNotATenant)
	}
	return s.repos.Registrations.ListByGenerator(ctx, genID)
}
