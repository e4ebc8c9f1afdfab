//! Seed 004: `is_active` with the partial index `idx_active_integrations`, role-aware policies on
//! `integration_connections` (members SELECT; OWNER/ADMIN INSERT, UPDATE, DELETE — replacing V004's
//! member-wide `FOR ALL` policy) and `updated_at` triggers. Every statement is safe to re-run; the
//! seed's guard for an absent table is kept for the index.

use crate::sql::Stmt::{self, Both, Postgres, Sqlite};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} is_active BOOLEAN NOT NULL DEFAULT TRUE",
    ),
    Postgres(
        "DO $$
        BEGIN
            IF EXISTS (SELECT FROM information_schema.tables
                       WHERE table_schema = current_schema() AND table_name = 'integration_connections') THEN
                CREATE INDEX IF NOT EXISTS idx_active_integrations
                    ON integration_connections (workspace_id, integration_id) WHERE is_active = TRUE;
            END IF;
        END
        $$",
    ),
    Sqlite(
        "CREATE INDEX IF NOT EXISTS idx_active_integrations
            ON integration_connections (workspace_id, integration_id) WHERE is_active = TRUE",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_workspace_access ON integration_connections",
    ),
    Postgres("DROP POLICY IF EXISTS integration_connections_select_members ON integration_connections"),
    Postgres(concat!(
        "CREATE POLICY integration_connections_select_members ON integration_connections
            FOR SELECT TO authenticated USING (",
        member_of_workspace!(),
        ")"
    )),
    Postgres("DROP POLICY IF EXISTS integration_connections_insert_admins ON integration_connections"),
    Postgres(concat!(
        "CREATE POLICY integration_connections_insert_admins ON integration_connections
            FOR INSERT TO authenticated WITH CHECK (",
        admin_of_workspace!(),
        ")"
    )),
    Postgres("DROP POLICY IF EXISTS integration_connections_update_admins ON integration_connections"),
    Postgres(concat!(
        "CREATE POLICY integration_connections_update_admins ON integration_connections
            FOR UPDATE TO authenticated USING (",
        admin_of_workspace!(),
        ") WITH CHECK (",
        admin_of_workspace!(),
        ")"
    )),
    Postgres("DROP POLICY IF EXISTS integration_connections_delete_admins ON integration_connections"),
    Postgres(concat!(
        "CREATE POLICY integration_connections_delete_admins ON integration_connections
            FOR DELETE TO authenticated USING (",
        admin_of_workspace!(),
        ")"
    )),
    Postgres("DROP TRIGGER IF EXISTS set_integration_connections_updated_at ON integration_connections"),
    Postgres(
        "CREATE TRIGGER set_integration_connections_updated_at BEFORE UPDATE ON integration_connections
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    Postgres("DROP TRIGGER IF EXISTS set_integration_sync_states_updated_at ON integration_sync_states"),
    Postgres(
        "CREATE TRIGGER set_integration_sync_states_updated_at BEFORE UPDATE ON integration_sync_states
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    Postgres("DROP TRIGGER IF EXISTS set_workspaces_updated_at ON workspaces"),
    Postgres(
        "CREATE TRIGGER set_workspaces_updated_at BEFORE UPDATE ON workspaces
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    Postgres("DROP TRIGGER IF EXISTS set_users_updated_at ON users"),
    Postgres(
        "CREATE TRIGGER set_users_updated_at BEFORE UPDATE ON users
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    Postgres("DROP TRIGGER IF EXISTS set_attribute_definitions_updated_at ON attribute_definitions"),
    Postgres(
        "CREATE TRIGGER set_attribute_definitions_updated_at BEFORE UPDATE ON attribute_definitions
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    Postgres("DROP TRIGGER IF EXISTS set_entities_updated_at ON entities"),
    Postgres(
        "CREATE TRIGGER set_entities_updated_at BEFORE UPDATE ON entities
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
];

const DOWN: &[Stmt] = &[
    Postgres("DROP TRIGGER IF EXISTS set_entities_updated_at ON entities"),
    Postgres(
        "DROP TRIGGER IF EXISTS set_attribute_definitions_updated_at ON attribute_definitions",
    ),
    Postgres("DROP TRIGGER IF EXISTS set_users_updated_at ON users"),
    Postgres("DROP TRIGGER IF EXISTS set_workspaces_updated_at ON workspaces"),
    Postgres(
        "DROP TRIGGER IF EXISTS set_integration_sync_states_updated_at ON integration_sync_states",
    ),
    Postgres(
        "DROP TRIGGER IF EXISTS set_integration_connections_updated_at ON integration_connections",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_delete_admins ON integration_connections",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_update_admins ON integration_connections",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_insert_admins ON integration_connections",
    ),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_select_members ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_workspace_access ON integration_connections
            FOR ALL TO authenticated USING (",
        member_of_workspace!(),
        ") WITH CHECK (",
        member_of_workspace!(),
        ")"
    )),
    Both("DROP INDEX IF EXISTS idx_active_integrations"),
    Both("ALTER TABLE integration_connections DROP COLUMN is_active"),
];
