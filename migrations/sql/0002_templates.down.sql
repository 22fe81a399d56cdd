DROP TRIGGER IF EXISTS trigger_cascade_soft_delete_generator_templates ON generators;
DROP FUNCTION IF EXISTS brokkr_cascade_soft_delete_generator_templates();
DROP TABLE IF EXISTS rendered_deployment_objects;
DROP TABLE IF EXISTS template_annotations;
DROP TABLE IF EXISTS template_labels;
DROP TABLE IF EXISTS stack_template_versions;
DROP TABLE IF EXISTS stack_templates;
