-- Generator registration (docs/compatibility.md#generator-registration): the
-- singleton system generator, and which agents accepted which generators'
-- stacks. The system generator has a fixed id so stacks without a generator
-- (system stacks) can answer it in generator_id without a lookup
-- (pkg/domain/generator.SystemID).

ALTER TABLE generators ADD COLUMN IF NOT EXISTS is_system boolean NOT NULL DEFAULT false;
-- At most one system generator, live or not.
CREATE UNIQUE INDEX IF NOT EXISTS unique_system_generator ON generators (is_system) WHERE is_system;

-- A user generator that happens to be called __system__ keeps working under
-- a suffixed name; the name belongs to the system generator from now on.
UPDATE generators SET name = left(name || '-' || left(id::text, 8), 255)
 WHERE name = '__system__' AND deleted_at IS NULL AND id <> '00000000-0000-4000-8000-000000000001';

-- No PAK: nothing can authenticate as the system generator.
INSERT INTO generators (id, name, description, pak_hash, is_active, is_system)
VALUES ('00000000-0000-4000-8000-000000000001', '__system__',
        'System generator: carries the stacks every agent receives', NULL, true, true)
ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS agent_generator_registrations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id      uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    generator_id  uuid NOT NULL REFERENCES generators(id) ON DELETE CASCADE,
    registered_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_agent_generator_registration UNIQUE (agent_id, generator_id)
);
-- The unique constraint serves lookups by agent; this one serves
-- GET /generators/{id}/registered-agents.
CREATE INDEX IF NOT EXISTS idx_agent_generator_registrations_generator
    ON agent_generator_registrations (generator_id, agent_id);

-- Back-fill: every existing agent with the system generator, and every
-- explicit target's generator, so switching the consent boundary on
-- (broker.require_generator_registration) does not cut existing targets.
INSERT INTO agent_generator_registrations (agent_id, generator_id)
SELECT a.id, '00000000-0000-4000-8000-000000000001' FROM agents a
ON CONFLICT DO NOTHING;
INSERT INTO agent_generator_registrations (agent_id, generator_id)
SELECT DISTINCT t.agent_id, s.generator_id FROM agent_targets t
  JOIN stacks s ON s.id = t.stack_id
 WHERE s.generator_id IS NOT NULL
ON CONFLICT DO NOTHING;
