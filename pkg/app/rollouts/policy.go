package rollouts

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// Audit actions (docs/rollouts.md#status-and-control).
const (
	ActionPolicyUpdated = "rollout_policy.updated"
	ActionControl       = "rollout." // + pause, resume, promote, abort
	ActionRolledBack    = "stack.rolled_back"
)

// Policy returns the stack's rollout policy: admin or the owning generator.
func (s *Service) Policy(ctx context.Context, p identity.Principal, stackID uuid.UUID) (rollout.Policy, error) {
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return rollout.Policy{}, err
	}
	return s.repos.Policies.Policy(ctx, stackID)
}

// PutPolicy replaces the stack's rollout policy (422 rollout_* when it is
// invalid). It applies to objects created from now on; a rollout already
// running keeps the policy it started with.
func (s *Service) PutPolicy(ctx context.Context, p identity.Principal, stackID uuid.UUID, in rollout.Policy) (rollout.Policy, error) {
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return rollout.Policy{}, err
	}
	if err := in.Normalize(); err != nil {
		return rollout.Policy{}, err
	}
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Policies.PutPolicy(ctx, stackID, in); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, ActionPolicyUpdated, "stack", stackID, in))
	})
	if err != nil {
		return rollout.Policy{}, err
	}
	// The stack may become gated or stop being gated: reload its agents.
	s.changes.StackChanged(ctx, stackID)
	return in, nil
}
