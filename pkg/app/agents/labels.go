package agents

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/labeling"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// LabelRepository stores agent labels and annotations (one value per key).
type LabelRepository interface{ labeling.Repository }

// Labels are the label and annotation use cases of agents: the admin or
// the agent itself reads them, only the admin changes them
// (docs/compatibility.md#agent-permissions), and a change wakes the agent's
// target-state long-poll.
type Labels struct{ *labeling.Service }

// NewLabels wires the agent label use cases on the agent service's policy.
func NewLabels(svc *Service, tx journal.Transactor, rec journal.Recorder, repo LabelRepository) *Labels {
	return &Labels{labeling.NewService(labeling.Config{
		ResourceType:       "agent",
		AnnotationConflict: "Annotation key already exists",
	}, tx, rec, repo, labelOwner{svc})}
}

type labelOwner struct{ s *Service }

func (o labelOwner) CheckRead(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	return o.s.readable(ctx, p, id)
}

func (o labelOwner) CheckWrite(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := AdminOnly.Check(p); err != nil {
		return err
	}
	_, err := o.s.repos.Agents.GetAgent(ctx, id)
	return err
}

func (o labelOwner) Changed(ctx context.Context, id uuid.UUID, _ labeling.Change) {
	o.s.changes.AgentChanged(ctx, id)
}
