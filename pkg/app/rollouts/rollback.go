package rollouts

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// RollbackInput is the body of POST /stacks/{id}/rollback: exactly one of
// the object's sequence id or its id.
type RollbackInput struct {
	ToSequenceID       *int64
	DeploymentObjectID *uuid.UUID
}

// Rollback creates a new deployment object on the stack with the YAML of
// an earlier one (admin or the owning generator), marked rolled_back_from
// the stack's latest object, audited, with the event stack.rolled_back. It
// reaches every agent at once (it is not rolled out in waves) and ends the
// stack's unfinished rollout as rolled_back (docs/rollouts.md#rollback).
func (s *Service) Rollback(ctx context.Context, p identity.Principal, stackID uuid.UUID, in RollbackInput) (stack.DeploymentObject, error) {
	if _, err := s.stacks.Get(ctx, p, stackID); err != nil {
		return stack.DeploymentObject{}, err
	}
	if (in.ToSequenceID == nil) == (in.DeploymentObjectID == nil) {
		return stack.DeploymentObject{}, domain.UnprocessableCode("rollback_target_required",
			"Give exactly one of to_sequence_id or deployment_object_id")
	}
	objs, err := s.stacks.DeploymentObjects(ctx, p, stackID)
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	var target *stack.DeploymentObject
	for i, o := range objs {
		if (in.ToSequenceID != nil && o.SequenceID == *in.ToSequenceID) ||
			(in.DeploymentObjectID != nil && o.ID == *in.DeploymentObjectID) {
			target = &objs[i]
			break
		}
	}
	switch {
	case target == nil:
		return stack.DeploymentObject{}, domain.NotFoundCode("rollback_target_not_found",
			"No live deployment object of this stack has that sequence id or id")
	case target.IsDeletionMarker:
		return stack.DeploymentObject{}, domain.UnprocessableCode("rollback_target_invalid", "Cannot roll back to a deletion marker")
	case target.ID == objs[0].ID:
		return stack.DeploymentObject{}, domain.UnprocessableCode("rollback_target_invalid",
			"The target is already the stack's latest deployment object")
	}
	var out stack.DeploymentObject
	err = s.inTx(ctx, func(ctx context.Context) error {
		latest, err := s.repos.Rollouts.Latest(ctx, stackID)
		if err != nil && !errors.Is(err, ErrNoRollout) {
			return err
		}
		if err == nil && rollout.Unfinished(latest.State) {
			r, _, _, err := s.repos.Rollouts.Lock(ctx, latest.ID, false)
			if err != nil {
				return err
			}
			if step, ok := rollout.Control(r, rollout.ActionRollback, s.now()); ok {
				if err := s.save(ctx, r, step); err != nil {
					return err
				}
			}
		}
		out, err = s.deployRollback(ctx, p, stackID, *target, objs[0].ID, "requested")
		return err
	})
	return out, err
}

// rollbackTo is on_failure: rollback: the rollout's previous object comes
// back (called inside the advancing transaction).
func (s *Service) rollbackTo(ctx context.Context, p identity.Principal, stackID, targetID, from uuid.UUID, reason string) (stack.DeploymentObject, error) {
	objs, err := s.stacks.DeploymentObjects(ctx, identity.Admin, stackID)
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	for _, o := range objs {
		if o.ID == targetID {
			return s.deployRollback(ctx, p, stackID, o, from, reason)
		}
	}
	return stack.DeploymentObject{}, domain.NotFoundCode("rollback_target_not_found", "The object to roll back to is gone")
}

// deployRollback stores the rollback object through the stack use case
// (its deployment.created event, audit entry and change notification),
// with the stack.rolled_back event and audit entry in the same
// transaction.
func (s *Service) deployRollback(ctx context.Context, p identity.Principal, stackID uuid.UUID, target stack.DeploymentObject, from uuid.UUID, reason string) (stack.DeploymentObject, error) {
	prov := func(ctx context.Context, d stack.DeploymentObject) error {
		details := map[string]any{"stack_id": stackID, "deployment_object_id": d.ID, "sequence_id": d.SequenceID,
			"rolled_back_from": from, "restored_object_id": target.ID, "restored_sequence_id": target.SequenceID,
			"reason": reason}
		ev := event.New(event.StackRolledBack, details)
		return journal.Record(ctx, s.repos.Journal, journal.Entry(ctx, p, ActionRolledBack, "stack", stackID, details), &ev)
	}
	return s.stacks.Deploy(ctx, p, stackID, stacks.DeploymentInput{YAMLContent: target.YAMLContent, RolledBackFrom: &from}, prov)
}
