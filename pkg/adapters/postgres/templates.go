package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Templates is the template repository: templates with their immutable
// versions, their labels and annotations (which stacks they fit), and the
// provenance of the objects they rendered.
type Templates struct{ s *Store }

// NewTemplates returns the template repository over s.
func NewTemplates(s *Store) *Templates { return &Templates{s: s} }

// templateSelect joins a template with one of its versions; the caller adds
// the version condition.
const templateSelect = `SELECT t.id, t.created_at, t.updated_at, t.deleted_at, t.generator_id, t.name,
	v.description, v.version, v.template_content, v.parameters_schema, v.checksum
	FROM stack_templates t JOIN stack_template_versions v ON v.template_id = t.id`

// ListTemplates returns live templates at their latest version.
func (r *Templates) ListTemplates(ctx context.Context, all bool, gen uuid.UUID) ([]template.Template, error) {
	return selectAll[template.Template](ctx, r.s.q(ctx), templateSelect+`
		WHERE v.version = t.latest_version AND t.deleted_at IS NULL
		  AND ($1 OR t.generator_id IS NULL OR t.generator_id = $2)
		ORDER BY t.created_at, t.id`, all, gen)
}

// FindTemplateByName returns the live template of an owner (nil = system)
// with name, at its latest version.
func (r *Templates) FindTemplateByName(ctx context.Context, generatorID *uuid.UUID, name string) (template.Template, error) {
	return getOne[template.Template](ctx, r.s.q(ctx), "template_not_found", "Template not found",
		templateSelect+`
		WHERE v.version = t.latest_version AND t.deleted_at IS NULL
		  AND t.generator_id IS NOT DISTINCT FROM $1 AND t.name = $2`, generatorID, name)
}

// CreateTemplate inserts a template with its first version.
func (r *Templates) CreateTemplate(ctx context.Context, t *template.Template) error {
	return r.s.InTx(ctx, func(ctx context.Context) error {
		var id uuid.UUID
		if err := r.s.q(ctx).GetContext(ctx, &id, `INSERT INTO stack_templates (generator_id, name)
			VALUES ($1, $2) RETURNING id`, t.GeneratorID, t.Name); err != nil {
			return mapErr(err)
		}
		if _, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO stack_template_versions
			(template_id, version, description, template_content, parameters_schema, checksum)
			VALUES ($1, 1, $2, $3, $4, $5)`, id, t.Description, t.TemplateContent, t.ParametersSchema, t.Checksum); err != nil {
			return mapErr(err)
		}
		var err error
		*t, err = r.GetTemplate(ctx, id)
		return err
	})
}

// AddTemplateVersion stores version latest+1 under the same id.
func (r *Templates) AddTemplateVersion(ctx context.Context, id uuid.UUID, v template.Version) (template.Template, error) {
	var out template.Template
	err := r.s.InTx(ctx, func(ctx context.Context) error {
		var next int
		if err := r.s.q(ctx).GetContext(ctx, &next, `UPDATE stack_templates SET latest_version = latest_version + 1
			WHERE id = $1 AND deleted_at IS NULL RETURNING latest_version`, id); err != nil {
			return notFound(err, "template_not_found", "Template not found")
		}
		if _, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO stack_template_versions
			(template_id, version, description, template_content, parameters_schema, checksum)
			VALUES ($1, $2, $3, $4, $5, $6)`, id, next, v.Description, v.TemplateContent, v.ParametersSchema, v.Checksum); err != nil {
			return mapErr(err)
		}
		var err error
		out, err = r.GetTemplate(ctx, id)
		return err
	})
	return out, err
}

// GetTemplate returns a live template at its latest version.
func (r *Templates) GetTemplate(ctx context.Context, id uuid.UUID) (template.Template, error) {
	return getOne[template.Template](ctx, r.s.q(ctx), "template_not_found", "Template not found",
		templateSelect+`
		WHERE t.id = $1 AND v.version = t.latest_version AND t.deleted_at IS NULL`, id)
}

// GetTemplateVersion returns a live template at a given version.
func (r *Templates) GetTemplateVersion(ctx context.Context, id uuid.UUID, version int) (template.Template, error) {
	return getOne[template.Template](ctx, r.s.q(ctx), "template_version_not_found", "Template version not found",
		templateSelect+`
		WHERE t.id = $1 AND v.version = $2 AND t.deleted_at IS NULL`, id, version)
}

// ListTemplateVersions returns every version, oldest first.
func (r *Templates) ListTemplateVersions(ctx context.Context, id uuid.UUID) ([]template.Version, error) {
	return selectAll[template.Version](ctx, r.s.q(ctx), `SELECT template_id, version, created_at, description,
		template_content, parameters_schema, checksum FROM stack_template_versions
		WHERE template_id = $1 ORDER BY version`, id)
}

// DeleteTemplate soft-deletes a live template.
func (r *Templates) DeleteTemplate(ctx context.Context, id uuid.UUID) error {
	res, err := r.s.q(ctx).ExecContext(ctx, `UPDATE stack_templates SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL`, id)
	if err != nil {
		return mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domain.NotFoundCode("template_not_found", "Template not found")
	}
	return nil
}

// ListTemplateLabels returns a template's labels.
func (r *Templates) ListTemplateLabels(ctx context.Context, id uuid.UUID) ([]template.Label, error) {
	return selectAll[template.Label](ctx, r.s.q(ctx), `SELECT id, template_id, label, created_at FROM template_labels
		WHERE template_id = $1 ORDER BY label`, id)
}

// AddTemplateLabel inserts a label.
func (r *Templates) AddTemplateLabel(ctx context.Context, id uuid.UUID, label string) (template.Label, error) {
	var l template.Label
	err := r.s.q(ctx).GetContext(ctx, &l, `INSERT INTO template_labels (template_id, label) VALUES ($1, $2)
		RETURNING id, template_id, label, created_at`, id, label)
	return l, mapErr(err)
}

// RemoveTemplateLabel deletes a label; 404 when absent.
func (r *Templates) RemoveTemplateLabel(ctx context.Context, id uuid.UUID, label string) error {
	return r.s.deleteOne(ctx, "template_label_not_found", "Label not found", `DELETE FROM template_labels WHERE template_id = $1 AND label = $2`, id, label)
}

// ListTemplateAnnotations returns a template's annotations.
func (r *Templates) ListTemplateAnnotations(ctx context.Context, id uuid.UUID) ([]template.TemplateAnnotation, error) {
	return selectAll[template.TemplateAnnotation](ctx, r.s.q(ctx), `SELECT id, template_id, key, value, created_at FROM template_annotations
		WHERE template_id = $1 ORDER BY key`, id)
}

// AddTemplateAnnotation inserts an annotation (one value per key).
func (r *Templates) AddTemplateAnnotation(ctx context.Context, id uuid.UUID, key, value string) (template.TemplateAnnotation, error) {
	var a template.TemplateAnnotation
	err := r.s.q(ctx).GetContext(ctx, &a, `INSERT INTO template_annotations (template_id, key, value) VALUES ($1, $2, $3)
		RETURNING id, template_id, key, value, created_at`, id, key, value)
	return a, mapErr(err)
}

// RemoveTemplateAnnotation deletes an annotation by key; 404 when absent.
func (r *Templates) RemoveTemplateAnnotation(ctx context.Context, id uuid.UUID, key string) error {
	return r.s.deleteOne(ctx, "template_annotation_not_found", "Annotation not found", `DELETE FROM template_annotations WHERE template_id = $1 AND key = $2`, id, key)
}

// RecordProvenance stores which template version produced an object.
func (r *Templates) RecordProvenance(ctx context.Context, p template.Provenance) error {
	_, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO rendered_deployment_objects
		(deployment_object_id, template_id, template_version, template_parameters) VALUES ($1, $2, $3, $4::jsonb)`,
		p.DeploymentObjectID, p.TemplateID, p.TemplateVersion, string(p.Parameters))
	return mapErr(err)
}
