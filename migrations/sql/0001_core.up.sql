-- Core data model of the broker: agents, generators, stacks, deployment
-- objects, agent events, the admin role, audit logs and the domain-event
-- outbox. Names, columns and triggers follow the original Brokkr schema
-- except where docs/compatibility.md says otherwise.

CREATE OR REPLACE FUNCTION brokkr_touch_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- agents ---------------------------------------------------------------
CREATE TABLE agents (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    name           varchar(255) NOT NULL,
    cluster_name   varchar(255) NOT NULL,
    last_heartbeat timestamptz,
    status         varchar(50) NOT NULL DEFAULT 'ACTIVE',
    pak_hash       text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX unique_agent_cluster ON agents (name, cluster_name) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_pak_hash ON agents (pak_hash) WHERE deleted_at IS NULL AND pak_hash <> '';
CREATE INDEX idx_agents_status ON agents (status) WHERE deleted_at IS NULL;
CREATE TRIGGER update_agent_timestamp BEFORE UPDATE ON agents
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

CREATE TABLE agent_labels (
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    label    varchar(64) NOT NULL,
    CONSTRAINT unique_agent_label UNIQUE (agent_id, label)
);
CREATE INDEX idx_agent_labels_label ON agent_labels (label);

CREATE TABLE agent_annotations (
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    key      varchar(64) NOT NULL,
    value    varchar(64) NOT NULL,
    CONSTRAINT unique_agent_annotation UNIQUE (agent_id, key)
);
CREATE INDEX idx_agent_annotations_kv ON agent_annotations (key, value);

-- generators -------------------------------------------------------------
CREATE TABLE generators (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz,
    name           varchar(255) NOT NULL,
    description    text,
    pak_hash       text,
    last_active_at timestamptz,
    is_active      boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX unique_generator_name ON generators (name) WHERE deleted_at IS NULL;
CREATE INDEX idx_generators_pak_hash ON generators (pak_hash) WHERE deleted_at IS NULL AND pak_hash IS NOT NULL;
CREATE TRIGGER update_generators_timestamp BEFORE UPDATE ON generators
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

-- stacks -------------------------------------------------------------------
-- generator_id NULL is a system stack created by an admin
-- (docs/compatibility.md#system-stacks).
CREATE TABLE stacks (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    name         varchar(255) NOT NULL,
    description  text,
    generator_id uuid REFERENCES generators(id)
);
CREATE UNIQUE INDEX unique_stack_name ON stacks (name) WHERE deleted_at IS NULL;
CREATE INDEX idx_stacks_generator_id ON stacks (generator_id) WHERE deleted_at IS NULL;
CREATE TRIGGER update_stack_timestamp BEFORE UPDATE ON stacks
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

CREATE TABLE stack_labels (
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stack_id uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    label    varchar(64) NOT NULL,
    CONSTRAINT unique_stack_label UNIQUE (stack_id, label)
);
CREATE INDEX idx_stack_labels_label ON stack_labels (label);

-- No uniqueness on (stack_id, key), as in the original: DELETE by key removes
-- every row with that key.
CREATE TABLE stack_annotations (
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stack_id uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    key      varchar(64) NOT NULL,
    value    varchar(64) NOT NULL
);
CREATE INDEX idx_stack_annotations_stack ON stack_annotations (stack_id);
CREATE INDEX idx_stack_annotations_kv ON stack_annotations (key, value);

CREATE TABLE agent_targets (
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    stack_id uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    CONSTRAINT unique_agent_stack UNIQUE (agent_id, stack_id)
);
CREATE INDEX idx_agent_targets_stack ON agent_targets (stack_id);

-- deployment objects ---------------------------------------------------------
-- sequence_id comes from one global sequence
-- (docs/compatibility.md#global-sequence).
CREATE TABLE deployment_objects (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz,
    sequence_id        bigserial NOT NULL UNIQUE,
    stack_id           uuid NOT NULL REFERENCES stacks(id),
    yaml_content       text NOT NULL,
    yaml_checksum      text NOT NULL,
    submitted_at       timestamptz NOT NULL DEFAULT now(),
    is_deletion_marker boolean NOT NULL DEFAULT false
);
-- The hot query: the latest live object of a stack.
CREATE INDEX idx_deployment_objects_stack_latest ON deployment_objects (stack_id, sequence_id DESC) WHERE deleted_at IS NULL;

-- Objects are immutable: only a soft delete, or an edit of a deletion marker,
-- may change a row.
CREATE OR REPLACE FUNCTION brokkr_prevent_deployment_object_changes() RETURNS trigger AS $$
BEGIN
    IF (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
       OR (OLD.is_deletion_marker AND NEW.is_deletion_marker) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'Deployment objects cannot be modified except for soft deletion or updating deletion markers'
        USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER prevent_deployment_object_update BEFORE UPDATE ON deployment_objects
    FOR EACH ROW EXECUTE FUNCTION brokkr_prevent_deployment_object_changes();

-- Stack soft delete: soft-delete its objects and insert one deletion marker,
-- which associated agents receive until they acknowledge it
-- (docs/compatibility.md#deletion-markers).
CREATE OR REPLACE FUNCTION brokkr_handle_stack_soft_delete() RETURNS trigger AS $$
BEGIN
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        UPDATE deployment_objects SET deleted_at = NEW.deleted_at
         WHERE stack_id = NEW.id AND deleted_at IS NULL;
        INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum, submitted_at, is_deletion_marker)
        VALUES (NEW.id, '', md5(''), NEW.deleted_at, true);
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER trigger_handle_stack_soft_delete AFTER UPDATE OF deleted_at ON stacks
    FOR EACH ROW EXECUTE FUNCTION brokkr_handle_stack_soft_delete();

-- Generator soft delete: soft-delete its stacks (each gets a deletion marker
-- through the stack trigger). Unlike the original, the markers stay live so
-- agents clean up what the generator deployed.
CREATE OR REPLACE FUNCTION brokkr_cascade_soft_delete_generators() RETURNS trigger AS $$
BEGIN
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        UPDATE stacks SET deleted_at = NEW.deleted_at
         WHERE generator_id = NEW.id AND deleted_at IS NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cascade_soft_delete_generators AFTER UPDATE OF deleted_at ON generators
    FOR EACH ROW EXECUTE FUNCTION brokkr_cascade_soft_delete_generators();

-- agent events -----------------------------------------------------------------
CREATE TABLE agent_events (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    agent_id             uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    deployment_object_id uuid NOT NULL REFERENCES deployment_objects(id),
    event_type           varchar(50) NOT NULL,
    status               varchar(10) NOT NULL,
    message              text
);
CREATE INDEX idx_agent_events_agent ON agent_events (agent_id, created_at DESC) WHERE deleted_at IS NULL;
-- Target state hides objects this agent acknowledged with SUCCESS.
CREATE INDEX idx_agent_events_ack ON agent_events (agent_id, deployment_object_id) WHERE deleted_at IS NULL AND status = 'SUCCESS';
CREATE INDEX idx_agent_events_object ON agent_events (deployment_object_id);
CREATE TRIGGER update_agent_event_timestamp BEFORE UPDATE ON agent_events
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

CREATE OR REPLACE FUNCTION brokkr_cascade_soft_delete_agents() RETURNS trigger AS $$
BEGIN
    IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        UPDATE agent_events SET deleted_at = NEW.deleted_at
         WHERE agent_id = NEW.id AND deleted_at IS NULL;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cascade_soft_delete_agents AFTER UPDATE OF deleted_at ON agents
    FOR EACH ROW EXECUTE FUNCTION brokkr_cascade_soft_delete_agents();

-- admin ---------------------------------------------------------------------
CREATE TABLE app_initialization (
    id             serial PRIMARY KEY,
    initialized_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_role (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    pak_hash   text NOT NULL
);
CREATE TRIGGER update_admin_role_timestamp BEFORE UPDATE ON admin_role
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

-- audit -----------------------------------------------------------------------
CREATE TABLE audit_logs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    timestamp     timestamptz NOT NULL DEFAULT now(),
    actor_type    varchar(20) NOT NULL CHECK (actor_type IN ('admin', 'agent', 'generator', 'system')),
    actor_id      uuid,
    action        varchar(100) NOT NULL,
    resource_type varchar(50) NOT NULL,
    resource_id   uuid,
    details       jsonb,
    ip_address    text,
    user_agent    text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_audit_logs_timestamp ON audit_logs (timestamp DESC);
CREATE INDEX idx_audit_logs_actor ON audit_logs (actor_type, actor_id, timestamp DESC);
CREATE INDEX idx_audit_logs_resource ON audit_logs (resource_type, resource_id, timestamp DESC);
CREATE INDEX idx_audit_logs_action ON audit_logs (action text_pattern_ops, timestamp DESC);
CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at);

-- outbox ------------------------------------------------------------------------
-- Domain events written in the same transaction as the state change they
-- describe; a relay (webhook-dispatch) moves them on and sets dispatched_at.
CREATE TABLE outbox_events (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type    varchar(100) NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz
);
CREATE INDEX idx_outbox_events_pending ON outbox_events (created_at) WHERE dispatched_at IS NULL;
