//! Seed 002 V006: row-level security on `entity_attribute_provenance`, scoped through
//! `entities.workspace_id`, and removal of what V003/V004 made redundant (the slug and workspace
//! indexes, which their unique constraints already provide, and the SELECT policy that the
//! `FOR ALL` policy supersedes). Every drop is `IF EXISTS`, so databases that never had them pass.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Postgres("ALTER TABLE entity_attribute_provenance ENABLE ROW LEVEL SECURITY"),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_provenance_workspace_access ON entity_attribute_provenance",
    ),
    Postgres(
        "CREATE POLICY entity_attribute_provenance_workspace_access ON entity_attribute_provenance
            FOR ALL TO authenticated
            USING (EXISTS (
                SELECT 1 FROM entities e JOIN workspace_members wm ON wm.workspace_id = e.workspace_id
                WHERE e.id = entity_attribute_provenance.entity_id AND wm.user_id = auth.uid()))
            WITH CHECK (EXISTS (
                SELECT 1 FROM entities e JOIN workspace_members wm ON wm.workspace_id = e.workspace_id
                WHERE e.id = entity_attribute_provenance.entity_id AND wm.user_id = auth.uid()))",
    ),
    Both("DROP INDEX IF EXISTS idx_integration_definitions_slug"),
    Both("DROP INDEX IF EXISTS idx_integration_connections_workspace"),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_select_by_workspace ON integration_connections",
    ),
];

// The dropped indexes were redundant and are not recreated; the SELECT policy is, as V004 left it.
const DOWN: &[Stmt] = &[
    Postgres(concat!(
        "CREATE POLICY integration_connections_select_by_workspace ON integration_connections
            FOR SELECT TO authenticated USING (",
        member_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_provenance_workspace_access ON entity_attribute_provenance",
    ),
    Postgres("ALTER TABLE entity_attribute_provenance DISABLE ROW LEVEL SECURITY"),
];
