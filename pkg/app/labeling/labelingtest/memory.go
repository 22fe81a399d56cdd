// Package labelingtest holds an in-memory labeling.Repository and the
// contract every labeling.Repository must meet, run against both the memory
// one and PostgreSQL (pkg/adapters/postgres).
package labelingtest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
)

// Memory is an in-memory labeling.Repository with the same rules as the
// tables: a label is unique per owner; an annotation key is unique per
// owner when UniqueKeys (agents), otherwise annotations are not unique at
// all, not even the same pair twice (stacks, as the original's table).
type Memory struct {
	UniqueKeys bool
	// Kind names the owner in the not-found codes ("agent", "stack"), as
	// the tables' repositories do (docs/error-codes.md).
	Kind string

	mu          sync.Mutex
	labels      []labels.Label
	annotations []labels.Annotation
}

// NewMemory returns an empty repository: an agent's (unique annotation
// keys) or a stack's.
func NewMemory(uniqueKeys bool) *Memory {
	kind := "stack"
	if uniqueKeys {
		kind = "agent"
	}
	return &Memory{UniqueKeys: uniqueKeys, Kind: kind}
}

var errDuplicate = &domain.Error{Kind: domain.ErrConflict, Code: "unique_violation", Msg: "already exists"}

func (m *Memory) ListLabels(_ context.Context, owner uuid.UUID) ([]labels.Label, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []labels.Label{}
	for _, l := range m.labels {
		if l.OwnerID == owner {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b labels.Label) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

func (m *Memory) AddLabel(_ context.Context, owner uuid.UUID, label string) (labels.Label, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.labels {
		if l.OwnerID == owner && l.Label == label {
			return labels.Label{}, errDuplicate
		}
	}
	l := labels.Label{ID: uuid.New(), OwnerID: owner, Label: label}
	m.labels = append(m.labels, l)
	return l, nil
}

func (m *Memory) RemoveLabel(_ context.Context, owner uuid.UUID, label string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.labels)
	m.labels = slices.DeleteFunc(m.labels, func(l labels.Label) bool { return l.OwnerID == owner && l.Label == label })
	if len(m.labels) == n {
		return domain.NotFoundCode(m.Kind+"_label_not_found", "Label not found")
	}
	return nil
}

func (m *Memory) ListAnnotations(_ context.Context, owner uuid.UUID) ([]labels.Annotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []labels.Annotation{}
	for _, a := range m.annotations {
		if a.OwnerID == owner {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b labels.Annotation) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out, nil
}

func (m *Memory) AddAnnotation(_ context.Context, owner uuid.UUID, key, value string) (labels.Annotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.annotations {
		if m.UniqueKeys && a.OwnerID == owner && a.Key == key {
			return labels.Annotation{}, errDuplicate
		}
	}
	a := labels.Annotation{ID: uuid.New(), OwnerID: owner, Key: key, Value: value}
	m.annotations = append(m.annotations, a)
	return a, nil
}

func (m *Memory) RemoveAnnotation(_ context.Context, owner uuid.UUID, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.annotations)
	m.annotations = slices.DeleteFunc(m.annotations, func(a labels.Annotation) bool { return a.OwnerID == owner && a.Key == key })
	if len(m.annotations) == n {
		return domain.NotFoundCode(m.Kind+"_annotation_not_found", "Annotation not found")
	}
	return nil
}
