// Package rollouts holds the rollout use cases: a stack's rollout policy,
// the status and control of its rollout, advancing rollouts (the
// work-order-scheduler's periodic task and wake-ups) and rollback
// (docs/rollouts.md).
package rollouts

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/aftercommit"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// PolicyRepository stores stacks' rollout policies.
type PolicyRepository interface {
	// Policy returns the stack's policy, rollout.Default() when it has none.
	Policy(ctx context.Context, stackID uuid.UUID) (rollout.Policy, error)
	// PutPolicy stores the stack's (normalized) policy.
	PutPolicy(ctx context.Context, stackID uuid.UUID, p rollout.Policy) error
}

// RolloutRepository stores rollouts, their agents and their event log.
// A rollout row is created with its deployment object (by the database,
// in the same transaction), so no agent sees an object before its wave.
type RolloutRepository interface {
	// Latest returns the stack's newest rollout (404 rollout_not_found).
	Latest(ctx context.Context, stackID uuid.UUID) (rollout.Rollout, error)
	// Lock locks a rollout row for the current transaction and returns it
	// with its agents and what they reported for the object. With
	// skipLocked, a row another transaction holds answers ok=false.
	Lock(ctx context.Context, id uuid.UUID, skipLocked bool) (r rollout.Rollout, agents []rollout.Agent, ok bool, err error)
	// Agents returns the rollout's agents (no observations), by wave and id.
	Agents(ctx context.Context, id uuid.UUID) ([]rollout.Agent, error)
	// Candidates returns the ACTIVE agents the stack is associated with.
	Candidates(ctx context.Context, stackID uuid.UUID) ([]rollout.Candidate, error)
	// Save writes a step: agent rows (inserted or updated), log entries,
	// and the rollout's state, wave and reason.
	Save(ctx context.Context, id uuid.UUID, s rollout.Step) error
	// Progressing lists up to limit ids of progressing rollouts greater
	// than after, in id order (uuid.Nil: from the start).
	Progressing(ctx context.Context, after uuid.UUID, limit int) ([]uuid.UUID, error)
}

// Stacks is what rollouts need of the stack use cases (stacks.Service):
// access checks, the objects to roll back to, and creating the rollback
// object with its event, audit entry and change notification.
type Stacks interface {
	Get(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error)
	DeploymentObjects(ctx context.Context, p identity.Principal, id uuid.UUID) ([]stack.DeploymentObject, error)
	Deploy(ctx context.Context, p identity.Principal, id uuid.UUID, in stacks.DeploymentInput, prov stacks.Provenance) (stack.DeploymentObject, error)
}

// ChangeNotifier wakes target-state long-polls after commit: a released
// agent's target state now holds the object.
type ChangeNotifier interface {
	AgentChanged(ctx context.Context, agentID uuid.UUID)
	StackChanged(ctx context.Context, stackID uuid.UUID)
}

// Repos is the persistence the rollout use cases need.
type Repos struct {
	Tx       journal.Transactor
	Journal  journal.Recorder
	Policies PolicyRepository
	Rollouts RolloutRepository
}

// Service implements the rollout use cases.
type Service struct {
	repos   Repos
	stacks  Stacks
	changes ChangeNotifier
	now     func() time.Time
}

// NewService wires the use cases.
func NewService(repos Repos, st Stacks, changes ChangeNotifier) *Service {
	return &Service{repos: repos, stacks: st, changes: changes, now: func() time.Time { return time.Now().UTC() }}
}

// WithClock replaces the clock (tests).
func (s *Service) WithClock(now func() time.Time) *Service { s.now = now; return s }

// system is the actor of what the scheduler does on its own.
var system = identity.Principal{Role: identity.RoleSystem}

// inTx runs fn in one transaction and the queued change notifications
// after its commit: at once, or, when a caller holds an outer transaction
// (an Idempotency-Key request), after that one commits.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	inner, after := aftercommit.Defer(ctx)
	if err := s.repos.Tx.InTx(inner, fn); err != nil {
		after.Drop()
		return err
	}
	aftercommit.Do(ctx, after.Run)
	return nil
}

// notify queues the change notifications of a saved step.
func (s *Service) notify(ctx context.Context, stackID uuid.UUID, st rollout.Step) {
	for _, id := range st.Released {
		s.changes.AgentChanged(ctx, id)
	}
	if st.State != rollout.StateProgressing && !rollout.Unfinished(st.State) {
		// Finished: agents that joined the stack meanwhile receive it now.
		s.changes.StackChanged(ctx, stackID)
	}
}

// ErrNoRollout: the stack never had a rollout (repositories return this
// value).
var ErrNoRollout = domain.NotFoundCode("rollout_not_found", "The stack has no rollout")
