-- Health-gated progressive rollouts and rollback (docs/rollouts.md).

-- Provenance of an object made by a rollback: the stack's latest object
-- when it was rolled back (docs/rollouts.md#rollback).
ALTER TABLE deployment_objects
    ADD COLUMN rolled_back_from uuid REFERENCES deployment_objects(id);

-- One policy per stack; a stack without a row rolls out to every agent at
-- once (strategy all). The whole policy is kept as JSON; strategy is a
-- column because the target-state queries test it.
CREATE TABLE rollout_policies (
    stack_id   uuid PRIMARY KEY REFERENCES stacks(id) ON DELETE CASCADE,
    strategy   varchar(10) NOT NULL CHECK (strategy IN ('all', 'waves')),
    policy     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER update_rollout_policy_timestamp BEFORE UPDATE ON rollout_policies
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

-- One rollout per deployment object created on a stack with strategy waves.
-- While it is unfinished (progressing, paused, halted) the object reaches
-- only the agents released in rollout_agents (docs/rollouts.md#target-state).
CREATE TABLE rollouts (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stack_id             uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    deployment_object_id uuid NOT NULL UNIQUE REFERENCES deployment_objects(id) ON DELETE CASCADE,
    previous_object_id   uuid REFERENCES deployment_objects(id) ON DELETE SET NULL,
    policy               jsonb NOT NULL,
    state                varchar(20) NOT NULL DEFAULT 'progressing'
                         CHECK (state IN ('progressing', 'paused', 'halted', 'complete', 'rolled_back', 'aborted', 'superseded')),
    current_wave         integer NOT NULL DEFAULT -1,
    reason               text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz
);
CREATE INDEX idx_rollouts_stack ON rollouts (stack_id, created_at DESC);
CREATE INDEX idx_rollouts_progressing ON rollouts (id) WHERE state = 'progressing';
CREATE TRIGGER update_rollout_timestamp BEFORE UPDATE ON rollouts
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

CREATE TABLE rollout_agents (
    rollout_id    uuid NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    agent_id      uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    wave          integer NOT NULL,
    released_at   timestamptz,
    applied_at    timestamptz,
    healthy_since timestamptz,
    healthy_at    timestamptz,
    failed_at     timestamptz,
    reason        text,
    PRIMARY KEY (rollout_id, agent_id)
);
CREATE INDEX idx_rollout_agents_agent ON rollout_agents (agent_id, rollout_id) WHERE released_at IS NOT NULL;

-- The event log: every transition in the order it happened
-- (docs/rollouts.md#event-log).
CREATE TABLE rollout_events (
    id         bigserial PRIMARY KEY,
    rollout_id uuid NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
    agent_id   uuid,
    wave       integer NOT NULL,
    kind       varchar(20) NOT NULL,
    reason     text,
    at         timestamptz NOT NULL
);
CREATE INDEX idx_rollout_events_rollout ON rollout_events (rollout_id, id);

-- A new object on a stack with strategy waves starts a rollout in the
-- same transaction, so no agent can receive it before its wave
-- (docs/rollouts.md#model); it supersedes the stack's unfinished rollout.
-- A rollback object is not rolled out: it restores what agents ran and
-- ends the unfinished rollout as rolled_back. Deletion markers are never
-- gated.
CREATE OR REPLACE FUNCTION brokkr_start_rollout() RETURNS trigger AS $$
DECLARE
    pol rollout_policies%ROWTYPE;
BEGIN
    IF NEW.is_deletion_marker THEN
        RETURN NEW;
    END IF;
    IF NEW.rolled_back_from IS NOT NULL THEN
        UPDATE rollouts SET state = 'rolled_back', finished_at = now(),
               reason = coalesce(reason, 'rolled back by a new object')
         WHERE stack_id = NEW.stack_id AND state IN ('progressing', 'paused', 'halted');
        RETURN NEW;
    END IF;
    SELECT * INTO pol FROM rollout_policies WHERE stack_id = NEW.stack_id AND strategy = 'waves';
    IF NOT FOUND THEN
        RETURN NEW;
    END IF;
    UPDATE rollouts SET state = 'superseded', finished_at = now(), reason = 'superseded by a newer object'
     WHERE stack_id = NEW.stack_id AND state IN ('progressing', 'paused', 'halted');
    INSERT INTO rollouts (stack_id, deployment_object_id, previous_object_id, policy)
    VALUES (NEW.stack_id, NEW.id,
            (SELECT id FROM deployment_objects
              WHERE stack_id = NEW.stack_id AND id <> NEW.id AND deleted_at IS NULL AND NOT is_deletion_marker
              ORDER BY sequence_id DESC LIMIT 1),
            pol.policy);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER start_rollout AFTER INSERT ON deployment_objects
    FOR EACH ROW EXECUTE FUNCTION brokkr_start_rollout();
