// Package labeling holds the label and annotation use cases shared by every
// owner that carries them (agents and stacks): list, add and remove, with
// validation (pkg/domain/labels), the audit entry in the same transaction,
// and a notification after commit. What differs per owner (who may read or
// change, who hears of a change, a duplicate annotation's message) is the
// Owner and Config the owner's package gives; the rules themselves are
// written once here.
package labeling

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
)

// Repository stores one owner kind's labels and annotations. Remove* answer
// domain.ErrNotFound when nothing matched; Add* answer domain.ErrConflict on
// a duplicate.
type Repository interface {
	ListLabels(ctx context.Context, owner uuid.UUID) ([]labels.Label, error)
	AddLabel(ctx context.Context, owner uuid.UUID, label string) (labels.Label, error)
	RemoveLabel(ctx context.Context, owner uuid.UUID, label string) error
	ListAnnotations(ctx context.Context, owner uuid.UUID) ([]labels.Annotation, error)
	AddAnnotation(ctx context.Context, owner uuid.UUID, key, value string) (labels.Annotation, error)
	// RemoveAnnotation removes every annotation with key.
	RemoveAnnotation(ctx context.Context, owner uuid.UUID, key string) error
}

// Owner is the owner kind's policy and notification.
type Owner interface {
	// CheckRead fails when p may not read owner id's labels (403) or the
	// owner does not exist (404), so a list under an unknown owner is a 404
	// rather than [] (docs/compatibility.md#check-order).
	CheckRead(ctx context.Context, p identity.Principal, id uuid.UUID) error
	// CheckWrite is CheckRead for changes; it runs before validation.
	CheckWrite(ctx context.Context, p identity.Principal, id uuid.UUID) error
	// Changed runs after a committed change of owner id's labels.
	Changed(ctx context.Context, id uuid.UUID, c Change)
}

// Change names what changed: a label, or the key of an annotation.
type Change struct {
	Label         string
	AnnotationKey string
}

// Config is what else differs per owner kind.
type Config struct {
	// ResourceType is the audit entries' resource_type ("agent", "stack").
	ResourceType string
	// AnnotationConflict rephrases a duplicate annotation; empty keeps the
	// repository's message.
	AnnotationConflict string
}

// Service implements the label and annotation use cases of one owner kind.
type Service struct {
	cfg   Config
	tx    journal.Transactor
	rec   journal.Recorder
	repo  Repository
	owner Owner
}

// NewService wires the use cases of one owner kind.
func NewService(cfg Config, tx journal.Transactor, rec journal.Recorder, repo Repository, owner Owner) *Service {
	return &Service{cfg: cfg, tx: tx, rec: rec, repo: repo, owner: owner}
}

// Labels lists owner id's labels, sorted.
func (s *Service) Labels(ctx context.Context, p identity.Principal, id uuid.UUID) ([]labels.Label, error) {
	if err := s.owner.CheckRead(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repo.ListLabels(ctx, id)
}

// AddLabel adds a label; a duplicate is a 409.
func (s *Service) AddLabel(ctx context.Context, p identity.Principal, id uuid.UUID, label string) (labels.Label, error) {
	if err := s.owner.CheckWrite(ctx, p, id); err != nil {
		return labels.Label{}, err
	}
	if err := labels.ValidateLabel(label); err != nil {
		return labels.Label{}, err
	}
	var out labels.Label
	err := s.mutate(ctx, p, id, Change{Label: label}, func(ctx context.Context) (err error) {
		out, err = s.repo.AddLabel(ctx, id, label)
		return domain.Rephrase(err, domain.ErrConflict, "Label already exists")
	}, audit.ActionLabelAdded, map[string]any{"label": label})
	return out, err
}

// RemoveLabel removes a label; 404 when absent.
func (s *Service) RemoveLabel(ctx context.Context, p identity.Principal, id uuid.UUID, label string) error {
	if err := s.owner.CheckWrite(ctx, p, id); err != nil {
		return err
	}
	return s.mutate(ctx, p, id, Change{Label: label}, func(ctx context.Context) error {
		return s.repo.RemoveLabel(ctx, id, label)
	}, audit.ActionLabelRemoved, map[string]any{"label": label})
}

// Annotations lists owner id's annotations, sorted by key.
func (s *Service) Annotations(ctx context.Context, p identity.Principal, id uuid.UUID) ([]labels.Annotation, error) {
	if err := s.owner.CheckRead(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repo.ListAnnotations(ctx, id)
}

// AddAnnotation adds an annotation.
func (s *Service) AddAnnotation(ctx context.Context, p identity.Principal, id uuid.UUID, key, value string) (labels.Annotation, error) {
	if err := s.owner.CheckWrite(ctx, p, id); err != nil {
		return labels.Annotation{}, err
	}
	if err := labels.ValidateAnnotation(key, value); err != nil {
		return labels.Annotation{}, err
	}
	var out labels.Annotation
	err := s.mutate(ctx, p, id, Change{AnnotationKey: key}, func(ctx context.Context) (err error) {
		out, err = s.repo.AddAnnotation(ctx, id, key, value)
		if s.cfg.AnnotationConflict != "" {
			err = domain.Rephrase(err, domain.ErrConflict, s.cfg.AnnotationConflict)
		}
		return err
	}, audit.ActionAnnotationAdded, map[string]any{"key": key, "value": value})
	return out, err
}

// RemoveAnnotation removes every annotation with key; 404 when none.
func (s *Service) RemoveAnnotation(ctx context.Context, p identity.Principal, id uuid.UUID, key string) error {
	if err := s.owner.CheckWrite(ctx, p, id); err != nil {
		return err
	}
	return s.mutate(ctx, p, id, Change{AnnotationKey: key}, func(ctx context.Context) error {
		return s.repo.RemoveAnnotation(ctx, id, key)
	}, audit.ActionAnnotationRemoved, map[string]any{"key": key})
}

// mutate runs a change with its audit entry in one transaction, then tells
// the owner (which wakes the long-polls of exactly the agents concerned).
func (s *Service) mutate(ctx context.Context, p identity.Principal, id uuid.UUID, c Change, fn func(ctx context.Context) error, action string, details map[string]any) error {
	err := s.tx.InTx(ctx, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return err
		}
		return s.rec.Audit(ctx, journal.Entry(ctx, p, action, s.cfg.ResourceType, id, details))
	})
	if err == nil {
		s.owner.Changed(ctx, id, c)
	}
	return err
}
