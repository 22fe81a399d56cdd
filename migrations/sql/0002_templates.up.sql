-- Stack templates. A template keeps one stable id across versions
-- (docs/compatibility.md#template-versions): the row in stack_templates is the
-- template, every PUT adds a row to stack_template_versions, and
-- labels/annotations belong to the template so they carry forward to new
-- versions.
CREATE TABLE stack_templates (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    -- NULL is a system template (created by the admin).
    generator_id   uuid REFERENCES generators(id) ON DELETE CASCADE,
    name           varchar(255) NOT NULL,
    latest_version integer NOT NULL DEFAULT 1 CHECK (latest_version >= 1)
);
CREATE UNIQUE INDEX unique_template_name ON stack_templates (generator_id, name) NULLS NOT DISTINCT WHERE deleted_at IS NULL;
CREATE INDEX idx_stack_templates_generator ON stack_templates (generator_id) WHERE deleted_at IS NULL;
CREATE TRIGGER update_stack_templates_timestamp BEFORE UPDATE ON stack_templates
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

CREATE TABLE stack_template_versions (
    template_id       uuid NOT NULL REFERENCES stack_templates(id) ON DELETE CASCADE,
    version           integer NOT NULL CHECK (version >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    description       text,
    template_content  text NOT NULL,
    parameters_schema text NOT NULL,
    checksum          varchar(64) NOT NULL,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE template_labels (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_id uuid NOT NULL REFERENCES stack_templates(id) ON DELETE CASCADE,
    label       varchar(64) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_template_label UNIQUE (template_id, label)
);

CREATE TABLE template_annotations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_id uuid NOT NULL REFERENCES stack_templates(id) ON DELETE CASCADE,
    key         varchar(64) NOT NULL,
    value       varchar(64) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_template_annotation UNIQUE (template_id, key)
);

-- Provenance: which template version and parameters produced an object.
CREATE TABLE rendered_deployment_objects (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    deployment_object_id uuid NOT NULL UNIQUE REFERENCES deployment_objects(id) ON DELETE CASCADE,
    template_id          uuid NOT NULL REFERENCES stack_templates(id),
    template_version     integer NOT NULL,
    template_parameters  jsonb NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (template_id, template_version) REFERENCES stack_template_versions (template_id, version)
);
CREATE INDEX idx_rendered_template ON rendered_deployment_objects (template_id, template_version);

-- Deleting a generator deletes its templates too (the original's T9).
CREATE OR REPLACE FUNCTION brokkr_cascade_soft_delete_generator_templates() RETURNS trigger AS $$
BEGIN
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        UPDATE stack_templates SET deleted_at = NEW.deleted_at
         WHERE generator_id = NEW.id AND deleted_at IS NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER trigger_cascade_soft_delete_generator_templates AFTER UPDATE OF deleted_at ON generators
    FOR EACH ROW EXECUTE FUNCTION brokkr_cascade_soft_delete_generator_templates();
