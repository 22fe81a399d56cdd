// Package templates holds the template use cases of the api: system and
// generator templates with stable ids and versions, their labels and
// annotations, and instantiation into a stack (match → parameters → render →
// store with provenance). Rendering itself happens in the templating service,
// reached through the Renderer port.
package templates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// TemplateRepository stores templates and their immutable versions.
type TemplateRepository interface {
	// ListTemplates returns live templates at their latest version: all when
	// all is set, else system templates plus those of generator gen.
	ListTemplates(ctx context.Context, all bool, gen uuid.UUID) ([]template.Template, error)
	// FindTemplateByName returns the live template of an owner (nil =
	// system) with name, at its latest version (404).
	FindTemplateByName(ctx context.Context, generatorID *uuid.UUID, name string) (template.Template, error)
	// CreateTemplate inserts t as version 1; domain.ErrConflict when the
	// owner already has a live template with the name.
	CreateTemplate(ctx context.Context, t *template.Template) error
	// AddTemplateVersion stores version latest+1 of a live template (404).
	AddTemplateVersion(ctx context.Context, id uuid.UUID, v template.Version) (template.Template, error)
	// GetTemplate returns a live template at its latest version (404).
	GetTemplate(ctx context.Context, id uuid.UUID) (template.Template, error)
	// GetTemplateVersion returns a live template at version (404).
	GetTemplateVersion(ctx context.Context, id uuid.UUID, version int) (template.Template, error)
	// ListTemplateVersions returns every version, oldest first.
	ListTemplateVersions(ctx context.Context, id uuid.UUID) ([]template.Version, error)
	// DeleteTemplate soft-deletes a live template (404).
	DeleteTemplate(ctx context.Context, id uuid.UUID) error
}

// TemplateLabelRepository stores the labels and annotations a stack must
// carry for a template to apply to it.
type TemplateLabelRepository interface {
	ListTemplateLabels(ctx context.Context, id uuid.UUID) ([]template.Label, error)
	// AddTemplateLabel: domain.ErrConflict when the label exists.
	AddTemplateLabel(ctx context.Context, id uuid.UUID, label string) (template.Label, error)
	// RemoveTemplateLabel: 404 "Label not found" when absent.
	RemoveTemplateLabel(ctx context.Context, id uuid.UUID, label string) error
	ListTemplateAnnotations(ctx context.Context, id uuid.UUID) ([]template.TemplateAnnotation, error)
	// AddTemplateAnnotation: domain.ErrConflict when the key exists.
	AddTemplateAnnotation(ctx context.Context, id uuid.UUID, key, value string) (template.TemplateAnnotation, error)
	// RemoveTemplateAnnotation: 404 "Annotation not found" when absent.
	RemoveTemplateAnnotation(ctx context.Context, id uuid.UUID, key string) error
}

// StackLabelReader reads the labels and annotations of the stack a
// template is instantiated into.
type StackLabelReader interface {
	ListLabels(ctx context.Context, stackID uuid.UUID) ([]labels.Label, error)
	ListAnnotations(ctx context.Context, stackID uuid.UUID) ([]labels.Annotation, error)
}

// ProvenanceRecorder stores which template version produced an object.
type ProvenanceRecorder interface {
	RecordProvenance(ctx context.Context, p template.Provenance) error
}

// Repos is the persistence the template use cases need; every port shares
// the transaction Tx opens.
type Repos struct {
	Tx          journal.Transactor
	Journal     journal.Recorder
	Templates   TemplateRepository
	Labels      TemplateLabelRepository
	StackLabels StackLabelReader
	Provenance  ProvenanceRecorder
}

// Renderer is the templating service: syntax and schema checks, parameter
// validation (with schema defaults) and rendering. Errors are domain errors:
// 400 for a client mistake (with validation_errors where relevant), 503 when
// the service cannot be reached.
type Renderer interface {
	ValidateTemplate(ctx context.Context, source string) error
	ValidateSchema(ctx context.Context, schema string) error
	Render(ctx context.Context, source, schema string, params map[string]any) (string, error)
}

// Deployer stores a rendered deployment object (the stacks use case), with
// the provenance written in the same transaction.
type Deployer interface {
	Get(ctx context.Context, p identity.Principal, id uuid.UUID) (stack.Stack, error)
	Deploy(ctx context.Context, p identity.Principal, id uuid.UUID, in stacks.DeploymentInput, prov stacks.Provenance) (stack.DeploymentObject, error)
}

// Service implements the template use cases.
type Service struct {
	repos    Repos
	renderer Renderer
	deployer Deployer
}

// NewService wires the use cases.
func NewService(repos Repos, renderer Renderer, deployer Deployer) *Service {
	return &Service{repos: repos, renderer: renderer, deployer: deployer}
}

var (
	errRole     = domain.ForbiddenCode("templates_not_accessible", "Admin or generator access required")
	errAccess   = domain.ForbiddenCode("template_not_accessible", "Access denied")
	errNotOwned = domain.ForbiddenCode("template_not_owned", "Access denied")
	errNotFound = domain.NotFoundCode("template_not_found", "Template not found")
)

// AdminOrGenerator admits the roles that may use templates at all.
var AdminOrGenerator = policy.Allow(errRole, policy.Admin, policy.AnyGenerator)

// canRead: the admin reads every template, a generator system ones and its own.
func canRead(p identity.Principal, t template.Template) bool {
	return p.IsAdmin() || (p.Role == identity.RoleGenerator && (t.IsSystem() || t.OwnedBy(p.ID)))
}

// canModify: the admin modifies every template, a generator only its own.
func canModify(p identity.Principal, t template.Template) bool {
	return p.IsAdmin() || (p.Role == identity.RoleGenerator && t.OwnedBy(p.ID))
}

func (s *Service) loadForRead(ctx context.Context, p identity.Principal, id uuid.UUID) (template.Template, error) {
	if err := AdminOrGenerator.Check(p); err != nil {
		return template.Template{}, err
	}
	t, err := s.repos.Templates.GetTemplate(ctx, id)
	if err != nil {
		return template.Template{}, err
	}
	if !canRead(p, t) {
		return template.Template{}, errAccess
	}
	return t, nil
}

func (s *Service) loadForModify(ctx context.Context, p identity.Principal, id uuid.UUID) (template.Template, error) {
	t, err := s.loadForRead(ctx, p, id)
	if err != nil {
		return template.Template{}, err
	}
	if !canModify(p, t) {
		return template.Template{}, errNotOwned
	}
	return t, nil
}

// CheckModify fails as a modification of template id by p would: 403 for a
// caller who may not change it, 404 when it does not exist.
func (s *Service) CheckModify(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	_, err := s.loadForModify(ctx, p, id)
	return err
}

// List returns the templates the caller may see, at their latest version.
func (s *Service) List(ctx context.Context, p identity.Principal) ([]template.Template, error) {
	if err := AdminOrGenerator.Check(p); err != nil {
		return nil, err
	}
	return s.repos.Templates.ListTemplates(ctx, p.IsAdmin(), p.ID)
}

// CreateInput is the body of POST /templates.
type CreateInput struct {
	Name             string
	Description      *string
	TemplateContent  string
	ParametersSchema string
}

func (s *Service) validateSource(ctx context.Context, content, schema string, description *string) error {
	switch {
	case strings.TrimSpace(content) == "":
		return domain.Invalid("template_content cannot be empty")
	case strings.TrimSpace(schema) == "":
		return domain.Invalid("parameters_schema cannot be empty")
	case description != nil && strings.TrimSpace(*description) == "":
		return domain.Invalid("description cannot be blank")
	}
	if err := s.renderer.ValidateTemplate(ctx, content); err != nil {
		return err
	}
	return s.renderer.ValidateSchema(ctx, schema)
}

// Create stores a template: a system template for the admin, the caller's
// own for a generator. A live template with the same owner and name gets a
// new version instead, as in the original.
func (s *Service) Create(ctx context.Context, p identity.Principal, in CreateInput) (template.Template, error) {
	if err := AdminOrGenerator.Check(p); err != nil {
		return template.Template{}, err
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 255 {
		return template.Template{}, domain.Invalid("name must be 1 to 255 characters")
	}
	if err := s.validateSource(ctx, in.TemplateContent, in.ParametersSchema, in.Description); err != nil {
		return template.Template{}, err
	}
	var owner *uuid.UUID
	if p.Role == identity.RoleGenerator {
		id := p.ID
		owner = &id
	}
	var out template.Template
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		existing, err := s.repos.Templates.FindTemplateByName(ctx, owner, in.Name)
		switch {
		case err == nil:
			out, err = s.repos.Templates.AddTemplateVersion(ctx, existing.ID, template.Version{
				Description: coalesce(in.Description, existing.Description), TemplateContent: in.TemplateContent,
				ParametersSchema: in.ParametersSchema, Checksum: template.Checksum(in.TemplateContent)})
		case isNotFound(err):
			out = template.Template{GeneratorID: owner, Name: in.Name, Description: in.Description,
				TemplateContent: in.TemplateContent, ParametersSchema: in.ParametersSchema,
				Checksum: template.Checksum(in.TemplateContent)}
			err = s.repos.Templates.CreateTemplate(ctx, &out)
		}
		if err != nil {
			return domain.Rephrase(err, domain.ErrConflict, "A template with this name already exists")
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionTemplateCreated, "template", out.ID,
			map[string]any{"name": out.Name, "version": out.Version}))
	})
	return out, err
}

// Get returns a template at its latest version.
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (template.Template, error) {
	return s.loadForRead(ctx, p, id)
}

// Versions lists every version of a template, oldest first.
func (s *Service) Versions(ctx context.Context, p identity.Principal, id uuid.UUID) ([]template.Version, error) {
	if _, err := s.loadForRead(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Templates.ListTemplateVersions(ctx, id)
}

// UpdateInput is the body of PUT /templates/{id}; a nil Description keeps
// the previous one.
type UpdateInput struct {
	Description      *string
	TemplateContent  string
	ParametersSchema string
}

// Update stores version n+1 under the same id; labels and annotations carry
// forward because they belong to the template.
func (s *Service) Update(ctx context.Context, p identity.Principal, id uuid.UUID, in UpdateInput) (template.Template, error) {
	cur, err := s.loadForModify(ctx, p, id)
	if err != nil {
		return template.Template{}, err
	}
	if err := s.validateSource(ctx, in.TemplateContent, in.ParametersSchema, in.Description); err != nil {
		return template.Template{}, err
	}
	var out template.Template
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.repos.Templates.AddTemplateVersion(ctx, id, template.Version{
			Description: coalesce(in.Description, cur.Description), TemplateContent: in.TemplateContent,
			ParametersSchema: in.ParametersSchema, Checksum: template.Checksum(in.TemplateContent)})
		if err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionTemplateUpdated, "template", id,
			map[string]any{"name": out.Name, "version": out.Version}))
	})
	return out, err
}

// Delete soft-deletes a template with all its versions.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if _, err := s.loadForModify(ctx, p, id); err != nil {
		return err
	}
	return s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Templates.DeleteTemplate(ctx, id); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionTemplateDeleted, "template", id, nil))
	})
}

// Labels lists a template's labels.
func (s *Service) Labels(ctx context.Context, p identity.Principal, id uuid.UUID) ([]template.Label, error) {
	if _, err := s.loadForRead(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Labels.ListTemplateLabels(ctx, id)
}

// AddLabel restricts the template to stacks carrying label.
func (s *Service) AddLabel(ctx context.Context, p identity.Principal, id uuid.UUID, label string) (template.Label, error) {
	if _, err := s.loadForModify(ctx, p, id); err != nil {
		return template.Label{}, err
	}
	if err := labels.ValidateLabel(label); err != nil {
		return template.Label{}, err
	}
	var out template.Label
	err := s.mutate(ctx, p, id, func(ctx context.Context) (err error) {
		out, err = s.repos.Labels.AddTemplateLabel(ctx, id, label)
		return domain.Rephrase(err, domain.ErrConflict, "Label already exists")
	}, audit.ActionLabelAdded, map[string]any{"label": label})
	return out, err
}

// RemoveLabel removes a template label.
func (s *Service) RemoveLabel(ctx context.Context, p identity.Principal, id uuid.UUID, label string) error {
	if _, err := s.loadForModify(ctx, p, id); err != nil {
		return err
	}
	return s.mutate(ctx, p, id, func(ctx context.Context) error {
		return s.repos.Labels.RemoveTemplateLabel(ctx, id, label)
	}, audit.ActionLabelRemoved, map[string]any{"label": label})
}

// Annotations lists a template's annotations.
func (s *Service) Annotations(ctx context.Context, p identity.Principal, id uuid.UUID) ([]template.TemplateAnnotation, error) {
	if _, err := s.loadForRead(ctx, p, id); err != nil {
		return nil, err
	}
	return s.repos.Labels.ListTemplateAnnotations(ctx, id)
}

// AddAnnotation restricts the template to stacks carrying key=value.
func (s *Service) AddAnnotation(ctx context.Context, p identity.Principal, id uuid.UUID, key, value string) (template.TemplateAnnotation, error) {
	if _, err := s.loadForModify(ctx, p, id); err != nil {
		return template.TemplateAnnotation{}, err
	}
	if err := labels.ValidateAnnotation(key, value); err != nil {
		return template.TemplateAnnotation{}, err
	}
	var out template.TemplateAnnotation
	err := s.mutate(ctx, p, id, func(ctx context.Context) (err error) {
		out, err = s.repos.Labels.AddTemplateAnnotation(ctx, id, key, value)
		return domain.Rephrase(err, domain.ErrConflict, "Annotation key already exists")
	}, audit.ActionAnnotationAdded, map[string]any{"key": key, "value": value})
	return out, err
}

// RemoveAnnotation removes a template annotation by key.
func (s *Service) RemoveAnnotation(ctx context.Context, p identity.Principal, id uuid.UUID, key string) error {
	if _, err := s.loadForModify(ctx, p, id); err != nil {
		return err
	}
	return s.mutate(ctx, p, id, func(ctx context.Context) error {
		return s.repos.Labels.RemoveTemplateAnnotation(ctx, id, key)
	}, audit.ActionAnnotationRemoved, map[string]any{"key": key})
}

func (s *Service) mutate(ctx context.Context, p identity.Principal, id uuid.UUID, fn func(ctx context.Context) error, action string, details map[string]any) error {
	return s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, action, "template", id, details))
	})
}

// InstantiateInput is the body of POST /stacks/{id}/deployment-objects/from-template.
type InstantiateInput struct {
	TemplateID uuid.UUID
	// Version selects an older version; nil means the latest.
	Version    *int
	Parameters json.RawMessage
}

// Instantiate renders a template into a new deployment object of the stack.
// Checks run in the documented order: stack (404/403), template (404),
// label/annotation matching (422), parameters (400), render (400).
func (s *Service) Instantiate(ctx context.Context, p identity.Principal, stackID uuid.UUID, in InstantiateInput) (stack.DeploymentObject, error) {
	if _, err := s.deployer.Get(ctx, p, stackID); err != nil {
		return stack.DeploymentObject{}, err
	}
	if in.TemplateID == uuid.Nil {
		return stack.DeploymentObject{}, domain.Invalid("template_id is required")
	}
	t, err := s.repos.Templates.GetTemplate(ctx, in.TemplateID)
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	// A generator may use system templates and its own; another
	// generator's template is reported as absent rather than confirmed.
	if !canRead(p, t) {
		return stack.DeploymentObject{}, errNotFound
	}
	if in.Version != nil && (*in.Version < 1 || *in.Version > math.MaxInt32) {
		// Versions are PostgreSQL integers; a larger number can name none.
		return stack.DeploymentObject{}, domain.Unprocessable(fmt.Sprintf("version must be between 1 and %d", math.MaxInt32))
	}
	if in.Version != nil && *in.Version != t.Version {
		if t, err = s.repos.Templates.GetTemplateVersion(ctx, in.TemplateID, *in.Version); err != nil {
			return stack.DeploymentObject{}, err
		}
	}
	if err := s.match(ctx, t.ID, stackID); err != nil {
		return stack.DeploymentObject{}, err
	}
	params := map[string]any{}
	if len(in.Parameters) > 0 && string(in.Parameters) != "null" {
		if err := json.Unmarshal(in.Parameters, &params); err != nil {
			return stack.DeploymentObject{}, domain.Invalid("parameters must be a JSON object")
		}
	}
	yaml, err := s.renderer.Render(ctx, t.TemplateContent, t.ParametersSchema, params)
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	if strings.TrimSpace(yaml) == "" {
		return stack.DeploymentObject{}, domain.InvalidCode("invalid_deployment_object", "Template rendering failed: the template rendered to empty YAML")
	}
	if _, err := stack.SplitYAML(yaml); err != nil {
		return stack.DeploymentObject{}, domain.InvalidCode("invalid_deployment_object", "Template rendering failed: the output is not valid YAML: "+err.Error())
	}
	stored, err := json.Marshal(params)
	if err != nil {
		return stack.DeploymentObject{}, err
	}
	return s.deployer.Deploy(ctx, p, stackID, stacks.DeploymentInput{YAMLContent: yaml},
		func(ctx context.Context, d stack.DeploymentObject) error {
			return s.repos.Provenance.RecordProvenance(ctx, template.Provenance{DeploymentObjectID: d.ID, TemplateID: t.ID,
				TemplateVersion: t.Version, Parameters: stored})
		})
}

// match applies the AND rule over the template's labels and annotations.
func (s *Service) match(ctx context.Context, templateID, stackID uuid.UUID) error {
	tl, err := s.repos.Labels.ListTemplateLabels(ctx, templateID)
	if err != nil {
		return err
	}
	ta, err := s.repos.Labels.ListTemplateAnnotations(ctx, templateID)
	if err != nil {
		return err
	}
	if len(tl) == 0 && len(ta) == 0 {
		return nil
	}
	sl, err := s.repos.StackLabels.ListLabels(ctx, stackID)
	if err != nil {
		return err
	}
	sa, err := s.repos.StackLabels.ListAnnotations(ctx, stackID)
	if err != nil {
		return err
	}
	var tLabels, sLabels []string
	var tAnn, sAnn []template.Annotation
	for _, l := range tl {
		tLabels = append(tLabels, l.Label)
	}
	for _, a := range ta {
		tAnn = append(tAnn, template.Annotation{Key: a.Key, Value: a.Value})
	}
	for _, l := range sl {
		sLabels = append(sLabels, l.Label)
	}
	for _, a := range sa {
		sAnn = append(sAnn, template.Annotation{Key: a.Key, Value: a.Value})
	}
	res := template.Match(tLabels, tAnn, sLabels, sAnn)
	if res.Matches {
		return nil
	}
	return domain.WithFields(domain.UnprocessableCode("template_stack_mismatch", "Template labels do not match stack"), map[string]any{
		"missing_labels": res.MissingLabels, "missing_annotations": res.MissingAnnotationStrings()})
}

func coalesce(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
