package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
)

var (
	_ agents.LabelRepository = (*AgentLabels)(nil)
	_ stacks.LabelRepository = (*StackLabels)(nil)
)

// Labels is the one repository of labels and annotations, parameterised by
// the owner's tables: agent_labels/agent_annotations keyed by agent_id, and
// stack_labels/stack_annotations keyed by stack_id.
type Labels struct {
	s   *Store
	sql *labelSQL
}

// labelSQL are an owner kind's statements, built once from constant table
// names.
type labelSQL struct {
	listLabels, addLabel, removeLabel                string
	listAnnotations, addAnnotation, removeAnnotation string
	// The stable codes of a missing label or annotation
	// (docs/error-codes.md), such as agent_label_not_found.
	labelNotFound, annotationNotFound string
}

// labelTables names an owner kind's tables. annotationOrder sorts its
// annotations: an agent has one value per key, a stack's keys may repeat.
type labelTables struct {
	labels, annotations, owner, annotationOrder string
	// kind names the owner in error codes: "agent", "stack".
	kind string
}

var (
	agentLabelSQL = newLabelSQL(labelTables{labels: "agent_labels", annotations: "agent_annotations",
		owner: "agent_id", annotationOrder: "key", kind: "agent"})
	stackLabelSQL = newLabelSQL(labelTables{labels: "stack_labels", annotations: "stack_annotations",
		owner: "stack_id", annotationOrder: "key, value", kind: "stack"})
)

func newLabelSQL(t labelTables) *labelSQL {
	return &labelSQL{
		listLabels: `SELECT id, ` + t.owner + ` AS owner_id, label FROM ` + t.labels + ` WHERE ` + t.owner + ` = $1 ORDER BY label`,
		addLabel: `INSERT INTO ` + t.labels + ` (` + t.owner + `, label) VALUES ($1, $2)
		RETURNING id, ` + t.owner + ` AS owner_id, label`,
		removeLabel: `DELETE FROM ` + t.labels + ` WHERE ` + t.owner + ` = $1 AND label = $2`,
		listAnnotations: `SELECT id, ` + t.owner + ` AS owner_id, key, value FROM ` + t.annotations + ` WHERE ` + t.owner +
			` = $1 ORDER BY ` + t.annotationOrder,
		addAnnotation: `INSERT INTO ` + t.annotations + ` (` + t.owner + `, key, value) VALUES ($1, $2, $3)
		RETURNING id, ` + t.owner + ` AS owner_id, key, value`,
		removeAnnotation:   `DELETE FROM ` + t.annotations + ` WHERE ` + t.owner + ` = $1 AND key = $2`,
		labelNotFound:      t.kind + "_label_not_found",
		annotationNotFound: t.kind + "_annotation_not_found",
	}
}

// AgentLabels are the agents' labels and annotations.
type AgentLabels struct{ Labels }

// NewAgentLabels returns the agent label repository on s.
func NewAgentLabels(s *Store) *AgentLabels {
	return &AgentLabels{Labels{s: s, sql: agentLabelSQL}}
}

// StackLabels are the stacks' labels and annotations.
type StackLabels struct{ Labels }

// NewStackLabels returns the stack label repository on s.
func NewStackLabels(s *Store) *StackLabels {
	return &StackLabels{Labels{s: s, sql: stackLabelSQL}}
}

// ListLabels returns the owner's labels.
func (r *Labels) ListLabels(ctx context.Context, owner uuid.UUID) ([]labels.Label, error) {
	return selectAll[labels.Label](ctx, r.s.q(ctx), r.sql.listLabels, owner)
}

// AddLabel inserts a label; a duplicate is a conflict.
func (r *Labels) AddLabel(ctx context.Context, owner uuid.UUID, label string) (labels.Label, error) {
	var l labels.Label
	err := r.s.q(ctx).GetContext(ctx, &l, r.sql.addLabel, owner, label)
	return l, mapErr(err)
}

// RemoveLabel deletes a label; 404 when absent.
func (r *Labels) RemoveLabel(ctx context.Context, owner uuid.UUID, label string) error {
	return r.s.deleteOne(ctx, r.sql.labelNotFound, "Label not found", r.sql.removeLabel, owner, label)
}

// ListAnnotations returns the owner's annotations.
func (r *Labels) ListAnnotations(ctx context.Context, owner uuid.UUID) ([]labels.Annotation, error) {
	return selectAll[labels.Annotation](ctx, r.s.q(ctx), r.sql.listAnnotations, owner)
}

// AddAnnotation inserts an annotation.
func (r *Labels) AddAnnotation(ctx context.Context, owner uuid.UUID, key, value string) (labels.Annotation, error) {
	var a labels.Annotation
	err := r.s.q(ctx).GetContext(ctx, &a, r.sql.addAnnotation, owner, key, value)
	return a, mapErr(err)
}

// RemoveAnnotation deletes every annotation with key; 404 when none.
func (r *Labels) RemoveAnnotation(ctx context.Context, owner uuid.UUID, key string) error {
	return r.s.deleteOne(ctx, r.sql.annotationNotFound, "Annotation not found", r.sql.removeAnnotation, owner, key)
}
