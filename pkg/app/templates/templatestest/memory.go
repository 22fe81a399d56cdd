// Package templatestest holds what tests of the template use cases share:
// an in-memory implementation of their ports (Memory) and the contract
// every implementation must meet (contract.go), run against Memory here and
// against PostgreSQL in pkg/adapters/postgres.
package templatestest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

type record struct {
	t        template.Template // head fields; version = latest
	versions []template.Version
}

// Memory implements the template ports in memory with the database's
// rules: one live template per owner and name, versions numbered from 1,
// one label per template, one annotation per key, one provenance per
// object. Stack labels are set with SetStackLabels. InTx is all-or-nothing.
type Memory struct {
	mu          sync.Mutex
	templates   map[uuid.UUID]record
	labels      map[uuid.UUID][]template.Label
	annotations map[uuid.UUID][]template.TemplateAnnotation
	provenance  map[uuid.UUID]template.Provenance
	stackLabels map[uuid.UUID][]string
	stackAnns   map[uuid.UUID]map[string]string
	clock       testsupport.Clock
	journaltest.Recorder
}

var (
	_ templates.TemplateRepository      = (*Memory)(nil)
	_ templates.TemplateLabelRepository = (*Memory)(nil)
	_ templates.StackLabelReader        = (*Memory)(nil)
	_ templates.ProvenanceRecorder      = (*Memory)(nil)
)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{templates: map[uuid.UUID]record{}, labels: map[uuid.UUID][]template.Label{},
		annotations: map[uuid.UUID][]template.TemplateAnnotation{}, provenance: map[uuid.UUID]template.Provenance{},
		stackLabels: map[uuid.UUID][]string{}, stackAnns: map[uuid.UUID]map[string]string{}}
}

// SetStackLabels gives a stack labels and annotations.
func (m *Memory) SetStackLabels(stackID uuid.UUID, labels []string, annotations map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stackLabels[stackID], m.stackAnns[stackID] = labels, annotations
}

// Provenance returns what RecordProvenance stored for an object.
func (m *Memory) Provenance(objectID uuid.UUID) (template.Provenance, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.provenance[objectID]
	return p, ok
}

// InTx runs fn; when fn fails every change it made is undone.
func (m *Memory) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return testsupport.SnapshotTx(ctx, &m.mu, func() func() {
		ts, ls, as, ps, rewind := maps.Clone(m.templates), maps.Clone(m.labels), maps.Clone(m.annotations),
			maps.Clone(m.provenance), m.Mark()
		return func() {
			m.templates, m.labels, m.annotations, m.provenance = ts, ls, as, ps
			rewind()
		}
	}, fn)
}

var errNotFound = domain.NotFoundCode("template_not_found", "Template not found")

func at(r record, v template.Version) template.Template {
	t := r.t
	t.Version, t.Description, t.TemplateContent, t.ParametersSchema, t.Checksum =
		v.Version, v.Description, v.TemplateContent, v.ParametersSchema, v.Checksum
	return t
}

func (m *Memory) live(id uuid.UUID) (record, bool) {
	r, ok := m.templates[id]
	return r, ok && r.t.DeletedAt == nil
}

func sameOwner(a, b *uuid.UUID) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// ListTemplates returns live templates at their latest version.
func (m *Memory) ListTemplates(_ context.Context, all bool, gen uuid.UUID) ([]template.Template, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []template.Template{}
	for _, r := range m.templates {
		if r.t.DeletedAt == nil && (all || r.t.GeneratorID == nil || *r.t.GeneratorID == gen) {
			out = append(out, at(r, r.versions[len(r.versions)-1]))
		}
	}
	slices.SortFunc(out, func(a, b template.Template) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return out, nil
}

// FindTemplateByName returns the owner's live template with name.
func (m *Memory) FindTemplateByName(_ context.Context, generatorID *uuid.UUID, name string) (template.Template, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.templates {
		if r.t.DeletedAt == nil && r.t.Name == name && sameOwner(r.t.GeneratorID, generatorID) {
			return at(r, r.versions[len(r.versions)-1]), nil
		}
	}
	return template.Template{}, errNotFound
}

// CreateTemplate stores t as version 1.
func (m *Memory) CreateTemplate(_ context.Context, t *template.Template) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(t.Name) > 255 {
		return domain.Invalid("value too long")
	}
	for _, r := range m.templates {
		if r.t.DeletedAt == nil && r.t.Name == t.Name && sameOwner(r.t.GeneratorID, t.GeneratorID) {
			return domain.Conflict("already exists")
		}
	}
	now := m.clock.Now()
	head := template.Template{ID: uuid.New(), CreatedAt: now, UpdatedAt: now, GeneratorID: t.GeneratorID, Name: t.Name}
	v := template.Version{TemplateID: head.ID, Version: 1, CreatedAt: now, Description: t.Description,
		TemplateContent: t.TemplateContent, ParametersSchema: t.ParametersSchema, Checksum: t.Checksum}
	r := record{t: head, versions: []template.Version{v}}
	m.templates[head.ID] = r
	*t = at(r, v)
	return nil
}

// AddTemplateVersion stores version latest+1.
func (m *Memory) AddTemplateVersion(_ context.Context, id uuid.UUID, v template.Version) (template.Template, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(id)
	if !ok {
		return template.Template{}, errNotFound
	}
	now := m.clock.Now()
	v.TemplateID, v.Version, v.CreatedAt = id, len(r.versions)+1, now
	r.versions = append(slices.Clone(r.versions), v)
	r.t.UpdatedAt = now
	m.templates[id] = r
	return at(r, v), nil
}

// GetTemplate returns a live template at its latest version.
func (m *Memory) GetTemplate(_ context.Context, id uuid.UUID) (template.Template, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(id)
	if !ok {
		return template.Template{}, errNotFound
	}
	return at(r, r.versions[len(r.versions)-1]), nil
}

// GetTemplateVersion returns a live template at version.
func (m *Memory) GetTemplateVersion(_ context.Context, id uuid.UUID, version int) (template.Template, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(id)
	if !ok || version < 1 || version > len(r.versions) {
		return template.Template{}, domain.NotFoundCode("template_version_not_found", "Template version not found")
	}
	return at(r, r.versions[version-1]), nil
}

// ListTemplateVersions returns every version, oldest first.
func (m *Memory) ListTemplateVersions(_ context.Context, id uuid.UUID) ([]template.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]template.Version{}, m.templates[id].versions...), nil
}

// DeleteTemplate soft-deletes a live template.
func (m *Memory) DeleteTemplate(_ context.Context, id uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live(id)
	if !ok {
		return errNotFound
	}
	now := m.clock.Now()
	r.t.DeletedAt = &now
	m.templates[id] = r
	return nil
}

// ListTemplateLabels returns a template's labels by label.
func (m *Memory) ListTemplateLabels(_ context.Context, id uuid.UUID) ([]template.Label, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]template.Label{}, m.labels[id]...)
	slices.SortFunc(out, func(a, b template.Label) int { return strings.Compare(a.Label, b.Label) })
	return out, nil
}

// AddTemplateLabel adds a label; ErrConflict when present.
func (m *Memory) AddTemplateLabel(_ context.Context, id uuid.UUID, label string) (template.Label, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.templates[id]; !ok {
		return template.Label{}, domain.Unprocessable("referenced entity does not exist")
	}
	for _, l := range m.labels[id] {
		if l.Label == label {
			return template.Label{}, domain.Conflict("already exists")
		}
	}
	l := template.Label{ID: uuid.New(), TemplateID: id, Label: label, CreatedAt: m.clock.Now()}
	m.labels[id] = append(slices.Clone(m.labels[id]), l)
	return l, nil
}

// RemoveTemplateLabel removes a label; 404 when absent.
func (m *Memory) RemoveTemplateLabel(_ context.Context, id uuid.UUID, label string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	before := m.labels[id]
	after := slices.DeleteFunc(slices.Clone(before), func(l template.Label) bool { return l.Label == label })
	if len(after) == len(before) {
		return domain.NotFoundCode("template_label_not_found", "Label not found")
	}
	m.labels[id] = after
	return nil
}

// ListTemplateAnnotations returns a template's annotations by key.
func (m *Memory) ListTemplateAnnotations(_ context.Context, id uuid.UUID) ([]template.TemplateAnnotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := append([]template.TemplateAnnotation{}, m.annotations[id]...)
	slices.SortFunc(out, func(a, b template.TemplateAnnotation) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// AddTemplateAnnotation adds an annotation; ErrConflict when the key exists.
func (m *Memory) AddTemplateAnnotation(_ context.Context, id uuid.UUID, key, value string) (template.TemplateAnnotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.templates[id]; !ok {
		return template.TemplateAnnotation{}, domain.Unprocessable("referenced entity does not exist")
	}
	for _, a := range m.annotations[id] {
		if a.Key == key {
			return template.TemplateAnnotation{}, domain.Conflict("already exists")
		}
	}
	a := template.TemplateAnnotation{ID: uuid.New(), TemplateID: id, Key: key, Value: value, CreatedAt: m.clock.Now()}
	m.annotations[id] = append(slices.Clone(m.annotations[id]), a)
	return a, nil
}

// RemoveTemplateAnnotation removes an annotation by key; 404 when absent.
func (m *Memory) RemoveTemplateAnnotation(_ context.Context, id uuid.UUID, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	before := m.annotations[id]
	after := slices.DeleteFunc(slices.Clone(before), func(a template.TemplateAnnotation) bool { return a.Key == key })
	if len(after) == len(before) {
		return domain.NotFoundCode("template_annotation_not_found", "Annotation not found")
	}
	m.annotations[id] = after
	return nil
}

// RecordProvenance stores p; one per object.
func (m *Memory) RecordProvenance(_ context.Context, p template.Provenance) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.provenance[p.DeploymentObjectID]; ok {
		return domain.Conflict("already exists")
	}
	m.provenance[p.DeploymentObjectID] = p
	return nil
}

// ListLabels returns the labels SetStackLabels gave the stack.
func (m *Memory) ListLabels(_ context.Context, stackID uuid.UUID) ([]labels.Label, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []labels.Label{}
	for _, l := range m.stackLabels[stackID] {
		out = append(out, labels.Label{ID: uuid.New(), OwnerID: stackID, Label: l})
	}
	return out, nil
}

// ListAnnotations returns the annotations SetStackLabels gave the stack.
func (m *Memory) ListAnnotations(_ context.Context, stackID uuid.UUID) ([]labels.Annotation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []labels.Annotation{}
	for k, v := range m.stackAnns[stackID] {
		out = append(out, labels.Annotation{ID: uuid.New(), OwnerID: stackID, Key: k, Value: v})
	}
	return out, nil
}
