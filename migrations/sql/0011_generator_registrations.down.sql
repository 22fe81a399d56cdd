DROP TABLE IF EXISTS agent_generator_registrations;
DELETE FROM generators WHERE id = '00000000-0000-4000-8000-000000000001' AND is_system;
DROP INDEX IF EXISTS unique_system_generator;
ALTER TABLE generators DROP COLUMN IF EXISTS is_system;
