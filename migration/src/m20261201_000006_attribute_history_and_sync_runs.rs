//! Attribute history and sync lineage.
//!
//! - `sync_runs`: one row per sync run (connection, object type, when it started and ended, the
//!   cursor it started from, its counts and outcome). A run that resumes after a crash is the same
//!   run. `integration_sync_states.sync_run_id` names the run in progress, and
//!   `entity_attribute_provenance.sync_run_id` the run that last wrote each value.
//! - `entity_attribute_history`: every change of an attribute's value or provenance, appended:
//!   old → new value, who wrote it (source type, integration, external field, sync run or user)
//!   and when. The cleanup job removes rows older than `ATTRIBUTE_HISTORY_DAYS`, by id (ids are
//!   UUIDv7, so time-ordered: the primary key serves it, no second index). Only the entity is a
//!   foreign key (its rows go with it); the workspace and attribute are not, so an append costs
//!   one key check, not three (an entity's workspace and attributes outlive it anyway).
//!
//! Both are workspace-scoped under the same rules as provenance (PostgreSQL): members of the
//! workspace read, nobody else; the worker role writes. `down` drops them.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS sync_runs (
            id {uuid} PRIMARY KEY {uuid_default},
            workspace_id {uuid} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
            connection_id {uuid} NOT NULL REFERENCES integration_connections (id) ON DELETE CASCADE,
            object_type TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'running'
                CONSTRAINT chk_sync_runs_status CHECK (status IN ('running', 'succeeded', 'failed')),
            cursor_from TEXT,
            started_at {tstz} NOT NULL DEFAULT {now},
            finished_at {tstz},
            created INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0,
            conflicts INTEGER NOT NULL DEFAULT 0,
            error_message TEXT
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_sync_runs_connection_started
         ON sync_runs (connection_id, started_at)",
    ),
    Both("ALTER TABLE integration_sync_states ADD COLUMN sync_run_id {uuid}"),
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN sync_run_id {uuid}"),
    Both(
        "CREATE TABLE IF NOT EXISTS entity_attribute_history (
            id {uuid} PRIMARY KEY {uuid_default},
            workspace_id {uuid} NOT NULL,
            entity_id {uuid} NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
            attribute_id {uuid} NOT NULL,
            old_value {json},
            new_value {json},
            source_type TEXT NOT NULL,
            source_integration_id {uuid},
            source_external_field TEXT,
            sync_run_id {uuid},
            user_id {uuid},
            changed_at {tstz} NOT NULL
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_attribute_history_entity_attribute
         ON entity_attribute_history (entity_id, attribute_id, changed_at)",
    ),
    Postgres("GRANT SELECT ON sync_runs, entity_attribute_history TO authenticated"),
    Postgres(
        "DO $$
        DECLARE
            name text;
        BEGIN
            FOREACH name IN ARRAY ARRAY['sync_runs', 'entity_attribute_history']
            LOOP
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
                EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
                EXECUTE format('DROP POLICY IF EXISTS %I ON %I', name || '_members_read', name);
                EXECUTE format(
                    'CREATE POLICY %I ON %I FOR SELECT TO authenticated USING (workspace_id IN
                        (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid()))',
                    name || '_members_read', name);
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_worker') THEN
                    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO platform_worker', name);
                    EXECUTE format('DROP POLICY IF EXISTS %I ON %I', name || '_platform_worker', name);
                    EXECUTE format(
                        'CREATE POLICY %I ON %I FOR ALL TO platform_worker USING (true) WITH CHECK (true)',
                        name || '_platform_worker', name);
                END IF;
            END LOOP;
        END
        $$",
    ),
];

const DOWN: &[Stmt] = &[
    Both("DROP TABLE IF EXISTS entity_attribute_history"),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN sync_run_id"),
    Both("ALTER TABLE integration_sync_states DROP COLUMN sync_run_id"),
    // The policies go with the tables.
    Both("DROP TABLE IF EXISTS sync_runs"),
];
