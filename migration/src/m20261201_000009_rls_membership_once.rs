//! Row-level security that checks membership once per statement, not once per row (PostgreSQL).
//!
//! - `member_workspace_ids()` and `admin_workspace_ids()` return the caller's workspaces (all, or
//!   those where they are OWNER or ADMIN) as one array. They are `STABLE` and run as the caller:
//!   `workspace_members_select_own` already lets a user read their own memberships, so they can
//!   never see more than that, and a `SECURITY DEFINER` owner would be under FORCE ROW LEVEL
//!   SECURITY anyway. Policies call them as `workspace_id = ANY ((SELECT member_workspace_ids())::uuid[])`:
//!   the sub-select is an InitPlan, evaluated once per statement, and each row pays an array test.
//! - The child tables of an entity carry its workspace: `entity_attribute_values` and
//!   `entity_attribute_provenance` gain `workspace_id` (backfilled), and theirs and
//!   `entity_attribute_history`'s are kept equal to their entity's by a composite foreign key
//!   `(entity_id, workspace_id) → entities (id, workspace_id)` (ON DELETE CASCADE), which replaces
//!   the foreign key on `entity_id` alone: still one key check per row. Its target is the new
//!   unique index `uq_entities_id_workspace` (unique already: `id` is the primary key). It leads
//!   with `id` on purpose: a unique index leading with `workspace_id` looked as good as the
//!   source-record index to the planner of a never-analyzed table, and the page's existing-record
//!   lookup then scanned the workspace (bench-scale's tenants: 8,600 → 1,061 records/s).
//! - The same rules as before, evaluated once: members read and write entities, attribute
//!   definitions, values and provenance (provenance is still scoped through its entity: its
//!   workspace is its entity's, by the key above), members read workspaces, connections, history,
//!   sync runs, health logs and sync states, and only OWNERs and ADMINs insert, update or delete
//!   connections. Every policy keeps its name.
//!
//! SQLite has no row-level security: it gets the column (backfilled, written by the engine and
//! the edits) and the unique index, not the composite key (SQLite cannot add one to a table).
//! `down` restores the earlier policies and keys and drops the index, columns and functions.

use crate::sql::Stmt::{self, Both, Postgres, Sqlite};

crate::sql_migration!();

/// The tables whose rows are an entity's children, with their old single-column foreign key.
macro_rules! each_child {
    ($body:literal) => {
        concat!(
            "DO $$
            DECLARE
                child text;
            BEGIN
                FOREACH child IN ARRAY ARRAY['entity_attribute_values', 'entity_attribute_provenance',
                    'entity_attribute_history']
                LOOP
                    ",
            $body,
            "
                END LOOP;
            END
            $$"
        )
    };
}

const UP: &[Stmt] = &[
    Postgres(
        "CREATE OR REPLACE FUNCTION member_workspace_ids() RETURNS uuid[]
         LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
             SELECT coalesce(array_agg(workspace_id), '{}'::uuid[])
             FROM workspace_members WHERE user_id = auth.uid()
         $$",
    ),
    Postgres(
        "CREATE OR REPLACE FUNCTION admin_workspace_ids() RETURNS uuid[]
         LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
             SELECT coalesce(array_agg(workspace_id), '{}'::uuid[])
             FROM workspace_members WHERE user_id = auth.uid() AND role IN ('OWNER', 'ADMIN')
         $$",
    ),
    Both("CREATE UNIQUE INDEX IF NOT EXISTS uq_entities_id_workspace ON entities (id, workspace_id)"),
    Both("ALTER TABLE entity_attribute_values ADD COLUMN workspace_id {uuid}"),
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN workspace_id {uuid}"),
    // The owner migrates; FORCE ROW LEVEL SECURITY would hide the rows from it while it backfills.
    Postgres(each_child!(
        "EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', child);"
    )),
    Postgres("ALTER TABLE entities NO FORCE ROW LEVEL SECURITY"),
    Postgres(
        "UPDATE entity_attribute_values v SET workspace_id = e.workspace_id
         FROM entities e WHERE e.id = v.entity_id",
    ),
    Postgres(
        "UPDATE entity_attribute_provenance p SET workspace_id = e.workspace_id
         FROM entities e WHERE e.id = p.entity_id",
    ),
    Sqlite(
        "UPDATE entity_attribute_values SET workspace_id =
            (SELECT e.workspace_id FROM entities e WHERE e.id = entity_attribute_values.entity_id)",
    ),
    Sqlite(
        "UPDATE entity_attribute_provenance SET workspace_id =
            (SELECT e.workspace_id FROM entities e WHERE e.id = entity_attribute_provenance.entity_id)",
    ),
    Postgres("ALTER TABLE entity_attribute_values ALTER COLUMN workspace_id SET NOT NULL"),
    Postgres("ALTER TABLE entity_attribute_provenance ALTER COLUMN workspace_id SET NOT NULL"),
    Postgres(each_child!(
        "EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I', child, child || '_entity_id_fkey');
         EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (entity_id, workspace_id)
             REFERENCES entities (id, workspace_id) ON DELETE CASCADE', child, 'fk_' || child || '_entity');
         EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', child);"
    )),
    Postgres("ALTER TABLE entities FORCE ROW LEVEL SECURITY"),
    // The policies, once per statement.
    Postgres("DROP POLICY IF EXISTS entities_workspace_access ON entities"),
    Postgres(
        "CREATE POLICY entities_workspace_access ON entities FOR ALL TO authenticated
         USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))
         WITH CHECK (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS attribute_definitions_workspace_access ON attribute_definitions",
    ),
    Postgres(
        "CREATE POLICY attribute_definitions_workspace_access ON attribute_definitions
         FOR ALL TO authenticated
         USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))
         WITH CHECK (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_values_workspace_access ON entity_attribute_values",
    ),
    Postgres(
        "CREATE POLICY entity_attribute_values_workspace_access ON entity_attribute_values
         FOR ALL TO authenticated
         USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))
         WITH CHECK (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_provenance_workspace_access ON entity_attribute_provenance",
    ),
    Postgres(
        "CREATE POLICY entity_attribute_provenance_workspace_access ON entity_attribute_provenance
         FOR ALL TO authenticated
         USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))
         WITH CHECK (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_history_members_read ON entity_attribute_history",
    ),
    Postgres(
        "CREATE POLICY entity_attribute_history_members_read ON entity_attribute_history
         FOR SELECT TO authenticated USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres("DROP POLICY IF EXISTS sync_runs_members_read ON sync_runs"),
    Postgres(
        "CREATE POLICY sync_runs_members_read ON sync_runs
         FOR SELECT TO authenticated USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres("DROP POLICY IF EXISTS workspaces_select_members ON workspaces"),
    Postgres(
        "CREATE POLICY workspaces_select_members ON workspaces
         FOR SELECT TO authenticated USING (id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_select_members ON integration_connections",
    ),
    Postgres(
        "CREATE POLICY integration_connections_select_members ON integration_connections
         FOR SELECT TO authenticated USING (workspace_id = ANY ((SELECT member_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_insert_admins ON integration_connections",
    ),
    Postgres(
        "CREATE POLICY integration_connections_insert_admins ON integration_connections
         FOR INSERT TO authenticated WITH CHECK (workspace_id = ANY ((SELECT admin_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_update_admins ON integration_connections",
    ),
    Postgres(
        "CREATE POLICY integration_connections_update_admins ON integration_connections
         FOR UPDATE TO authenticated
         USING (workspace_id = ANY ((SELECT admin_workspace_ids())::uuid[]))
         WITH CHECK (workspace_id = ANY ((SELECT admin_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_delete_admins ON integration_connections",
    ),
    Postgres(
        "CREATE POLICY integration_connections_delete_admins ON integration_connections
         FOR DELETE TO authenticated USING (workspace_id = ANY ((SELECT admin_workspace_ids())::uuid[]))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_health_logs_select_members ON integration_health_logs",
    ),
    Postgres(
        "CREATE POLICY integration_health_logs_select_members ON integration_health_logs
         FOR SELECT TO authenticated USING (connection_id IN (SELECT c.id FROM integration_connections c
             WHERE c.workspace_id = ANY ((SELECT member_workspace_ids())::uuid[])))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_sync_states_select_members ON integration_sync_states",
    ),
    Postgres(
        "CREATE POLICY integration_sync_states_select_members ON integration_sync_states
         FOR SELECT TO authenticated USING (connection_id IN (SELECT c.id FROM integration_connections c
             WHERE c.workspace_id = ANY ((SELECT member_workspace_ids())::uuid[])))",
    ),
];

const DOWN: &[Stmt] = &[
    Postgres("DROP POLICY IF EXISTS entities_workspace_access ON entities"),
    Postgres(concat!(
        "CREATE POLICY entities_workspace_access ON entities FOR ALL TO authenticated USING (",
        member_of_workspace!(),
        ") WITH CHECK (",
        member_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS attribute_definitions_workspace_access ON attribute_definitions",
    ),
    Postgres(concat!(
        "CREATE POLICY attribute_definitions_workspace_access ON attribute_definitions FOR ALL TO authenticated USING (",
        member_of_workspace!(),
        ") WITH CHECK (",
        member_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_values_workspace_access ON entity_attribute_values",
    ),
    Postgres(
        "CREATE POLICY entity_attribute_values_workspace_access ON entity_attribute_values
            FOR ALL TO authenticated
            USING (EXISTS (
                SELECT 1 FROM entities e JOIN workspace_members wm ON wm.workspace_id = e.workspace_id
                WHERE e.id = entity_attribute_values.entity_id AND wm.user_id = auth.uid()))
            WITH CHECK (EXISTS (
                SELECT 1 FROM entities e JOIN workspace_members wm ON wm.workspace_id = e.workspace_id
                WHERE e.id = entity_attribute_values.entity_id AND wm.user_id = auth.uid()))",
    ),
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
    Postgres(
        "DROP POLICY IF EXISTS entity_attribute_history_members_read ON entity_attribute_history",
    ),
    Postgres(concat!(
        "CREATE POLICY entity_attribute_history_members_read ON entity_attribute_history FOR SELECT TO authenticated USING (",
        member_of_workspace!(),
        ")"
    )),
    Postgres("DROP POLICY IF EXISTS sync_runs_members_read ON sync_runs"),
    Postgres(concat!(
        "CREATE POLICY sync_runs_members_read ON sync_runs FOR SELECT TO authenticated USING (",
        member_of_workspace!(),
        ")"
    )),
    Postgres("DROP POLICY IF EXISTS workspaces_select_members ON workspaces"),
    Postgres(
        "CREATE POLICY workspaces_select_members ON workspaces FOR SELECT TO authenticated
            USING (id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_select_members ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_select_members ON integration_connections FOR SELECT TO authenticated USING (",
        member_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_insert_admins ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_insert_admins ON integration_connections FOR INSERT TO authenticated WITH CHECK (",
        admin_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_update_admins ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_update_admins ON integration_connections FOR UPDATE TO authenticated USING (",
        admin_of_workspace!(),
        ") WITH CHECK (",
        admin_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_delete_admins ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_delete_admins ON integration_connections FOR DELETE TO authenticated USING (",
        admin_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS integration_health_logs_select_members ON integration_health_logs",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_health_logs_select_members ON integration_health_logs FOR SELECT TO authenticated
            USING (connection_id IN (SELECT c.id FROM integration_connections c WHERE c.",
        member_of_workspace!(),
        "))"
    )),
    Postgres(
        "DROP POLICY IF EXISTS integration_sync_states_select_members ON integration_sync_states",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_sync_states_select_members ON integration_sync_states FOR SELECT TO authenticated
            USING (connection_id IN (SELECT c.id FROM integration_connections c WHERE c.",
        member_of_workspace!(),
        "))"
    )),
    Postgres(each_child!(
        "EXECUTE format('ALTER TABLE %I DROP CONSTRAINT IF EXISTS %I', child, 'fk_' || child || '_entity');
         EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (entity_id)
             REFERENCES entities (id) ON DELETE CASCADE', child, child || '_entity_id_fkey');"
    )),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN workspace_id"),
    Both("ALTER TABLE entity_attribute_values DROP COLUMN workspace_id"),
    Both("DROP INDEX IF EXISTS uq_entities_id_workspace"),
    Postgres("DROP FUNCTION IF EXISTS admin_workspace_ids()"),
    Postgres("DROP FUNCTION IF EXISTS member_workspace_ids()"),
];
