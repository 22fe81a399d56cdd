-- Stack dependencies (docs/dependencies.md): stack_id's objects reach an
-- agent only once every depends_on stack's latest object is applied (SUCCESS)
-- and healthy on that agent. Both stacks have the same owner (the same
-- generator, or both system stacks); cycles are refused by the api under a
-- transaction-scoped advisory lock (pkg/adapters/postgres/dependencies.go).

CREATE TABLE IF NOT EXISTS stack_dependencies (
    stack_id   uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    depends_on uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stack_id, depends_on),
    CONSTRAINT stack_dependency_not_self CHECK (stack_id <> depends_on)
);
-- The primary key serves "what does a stack depend on"; this one serves
-- "who depends on a stack" (deletion check, wake-ups on agent reports).
CREATE INDEX IF NOT EXISTS idx_stack_dependencies_depends_on ON stack_dependencies (depends_on);
