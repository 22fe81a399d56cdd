package stacks

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/labeling"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// LabelRepository stores stack labels and annotations (keys may repeat).
type LabelRepository interface{ labeling.Repository }

// Labels are the label and annotation use cases of stacks: the admin and
// the owning generator change them, associated agents also read them, and
// a change wakes exactly the agents carrying that label or annotation key.
type Labels struct{ *labeling.Service }

// NewLabels wires the stack label use cases on the stack service's policy.
func NewLabels(svc *Service, tx journal.Transactor, rec journal.Recorder, repo LabelRepository) *Labels {
	return &Labels{labeling.NewService(labeling.Config{ResourceType: "stack"}, tx, rec, repo, labelOwner{svc})}
}

type labelOwner struct{ s *Service }

func (o labelOwner) CheckRead(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	_, err := o.s.loadForRead(ctx, p, id)
	return err
}

func (o labelOwner) CheckWrite(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	_, err := o.s.load(ctx, p, id)
	return err
}

func (o labelOwner) Changed(ctx context.Context, _ uuid.UUID, c labeling.Change) {
	if c.Label != "" {
		o.s.changes.StackLabelChanged(ctx, c.Label)
		return
	}
	o.s.changes.StackAnnotationChanged(ctx, c.AnnotationKey)
}
