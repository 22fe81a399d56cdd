package rollouts

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// AdvanceBatch is how many progressing rollouts one page of a periodic
// run reads.
const AdvanceBatch = 200

// AdvanceAll advances every progressing rollout once (the
// work-order-scheduler's periodic task). Replicas may run it at the same
// time: each rollout is advanced under its row lock, and a rollout another
// replica holds is skipped. It returns how many rollouts changed.
func (s *Service) AdvanceAll(ctx context.Context) (int, error) {
	n := 0
	var errs []error
	after := uuid.Nil
	for {
		ids, err := s.repos.Rollouts.Progressing(ctx, after, AdvanceBatch)
		if err != nil {
			return n, errors.Join(append(errs, err)...)
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			changed, err := s.Advance(ctx, id)
			if err != nil {
				errs = append(errs, err)
			}
			if changed {
				n++
			}
		}
		if len(ids) < AdvanceBatch {
			return n, errors.Join(errs...)
		}
		after = ids[len(ids)-1]
	}
}

// WakeStack advances the stack's newest rollout now (a wake-up after an
// agent reported on the stack); nothing when it has none.
func (s *Service) WakeStack(ctx context.Context, stackID uuid.UUID) (bool, error) {
	r, err := s.repos.Rollouts.Latest(ctx, stackID)
	if errors.Is(err, ErrNoRollout) || (err == nil && r.State != rollout.StateProgressing) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return s.Advance(ctx, r.ID)
}

// Advance moves one rollout forward (rollout.Advance) in one transaction
// under its row lock: assigning its agents to waves when it starts,
// recording what released agents reported, applying on_failure (a
// rollback creates the rollback object in the same transaction) and
// releasing agents. Released agents' long-polls wake after the commit.
// A rollout locked by another replica is left to it (changed=false).
func (s *Service) Advance(ctx context.Context, id uuid.UUID) (changed bool, err error) {
	err = s.inTx(ctx, func(ctx context.Context) error {
		r, agents, ok, err := s.repos.Rollouts.Lock(ctx, id, true)
		if err != nil || !ok || r.State != rollout.StateProgressing {
			return err
		}
		if r.CurrentWave < 0 {
			cands, err := s.repos.Rollouts.Candidates(ctx, r.StackID)
			if err != nil {
				return err
			}
			agents = rollout.Assigned(r.Policy, cands)
		}
		step := rollout.Advance(r, agents, s.now())
		if !step.Changed() {
			return nil
		}
		changed = true
		if step.State == rollout.StateRolledBack && r.PreviousObjectID == nil {
			// Nothing to roll back to (the stack's first object): halt.
			reason := *step.Reason + "; no earlier object to roll back to, halted"
			step.State, step.Reason = rollout.StateHalted, &reason
			last := &step.Transitions[len(step.Transitions)-1]
			last.Kind, last.Reason = rollout.KindHalted, reason
		}
		if err := s.save(ctx, r, step); err != nil {
			return err
		}
		if step.State == rollout.StateRolledBack {
			_, err := s.rollbackTo(ctx, system, r.StackID, *r.PreviousObjectID, r.DeploymentObjectID, *step.Reason)
			return err
		}
		return nil
	})
	return changed, err
}

// save writes a step, emits its events and queues its notifications.
func (s *Service) save(ctx context.Context, r rollout.Rollout, st rollout.Step) error {
	if err := s.repos.Rollouts.Save(ctx, r.ID, st); err != nil {
		return err
	}
	for _, t := range st.Transitions {
		typ := ""
		switch t.Kind {
		case rollout.KindWaveStarted:
			typ = event.RolloutWaveStarted
		case rollout.KindHalted:
			typ = event.RolloutHalted
		case rollout.KindCompleted:
			typ = event.RolloutCompleted
		default:
			continue
		}
		data := map[string]any{"rollout_id": r.ID, "stack_id": r.StackID, "deployment_object_id": r.DeploymentObjectID,
			"sequence_id": r.SequenceID, "wave": t.Wave, "wave_name": rollout.WaveName(r.Policy, t.Wave)}
		if t.Reason != "" && t.Kind != rollout.KindWaveStarted {
			data["reason"] = t.Reason
		}
		if err := s.repos.Journal.Emit(ctx, event.New(typ, data)); err != nil {
			return err
		}
	}
	s.notify(ctx, r.StackID, st)
	return nil
}
