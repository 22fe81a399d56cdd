package rollouts

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// Control runs pause, resume, promote or abort on the stack's newest
// rollout (admin or the owning generator), audited; 409
// rollout_state_conflict when its state does not allow the action. After
// resume and promote the rollout is advanced at once.
func (s *Service) Control(ctx context.Context, p identity.Principal, stackID uuid.UUID, action string) (Status, error) {
	switch action {
	case rollout.ActionPause, rollout.ActionResume, rollout.ActionPromote, rollout.ActionAbort:
	default:
		return Status{}, domain.NotFoundCode("rollout_action_unknown", "Unknown rollout action "+action)
	}
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return Status{}, err
	}
	var id uuid.UUID
	err := s.inTx(ctx, func(ctx context.Context) error {
		latest, err := s.repos.Rollouts.Latest(ctx, stackID)
		if err != nil {
			return err
		}
		id = latest.ID
		r, agents, _, err := s.repos.Rollouts.Lock(ctx, id, false)
		if err != nil {
			return err
		}
		step, ok := rollout.Control(r, action, s.now())
		if !ok {
			return domain.ConflictCode("rollout_state_conflict",
				fmt.Sprintf("Cannot %s a rollout that is %s", action, r.State))
		}
		if action == rollout.ActionPromote {
			if r.CurrentWave < 0 {
				cands, err := s.repos.Rollouts.Candidates(ctx, stackID)
				if err != nil {
					return err
				}
				agents = rollout.Assigned(r.Policy, cands)
			}
			step = rollout.Promote(r, agents, s.now())
		}
		if err := s.save(ctx, r, step); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, ActionControl+action, "stack", stackID,
			map[string]any{"rollout_id": r.ID, "deployment_object_id": r.DeploymentObjectID, "from": r.State, "to": step.State}))
	})
	if err != nil {
		return Status{}, err
	}
	if action == rollout.ActionResume || action == rollout.ActionPromote {
		if _, err := s.Advance(ctx, id); err != nil {
			return Status{}, err
		}
	}
	return s.Status(ctx, p, stackID)
}
