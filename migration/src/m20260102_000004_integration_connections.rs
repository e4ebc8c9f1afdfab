//! Seed 002 V004: workspace-scoped `integration_connections` (one per workspace and integration),
//! its first row-level-security policies, and the foreign keys of the provenance columns that V001
//! and V002 created, `ON DELETE SET NULL`.
//!
//! The foreign keys are added `NOT VALID` and then validated: validation scans `entities` under a
//! lock that does not block reads or writes, instead of holding an exclusive lock for the scan.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS integration_connections (
            id {uuid} PRIMARY KEY {uuid_default},
            workspace_id {uuid} NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
            integration_id {uuid} NOT NULL REFERENCES integration_definitions (id) ON DELETE RESTRICT,
            nango_connection_id TEXT,
            status VARCHAR(50) NOT NULL DEFAULT 'PENDING_AUTHORIZATION'
                CONSTRAINT chk_integration_connections_status
                CHECK (status IN ('PENDING_AUTHORIZATION', 'ACTIVE', 'PAUSED', 'ERROR', 'DISCONNECTED')),
            connection_metadata {json} NOT NULL DEFAULT '{}',
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now},
            created_by {uuid} REFERENCES users (id) ON DELETE SET NULL,
            updated_by {uuid} REFERENCES users (id) ON DELETE SET NULL,
            CONSTRAINT uq_integration_connections_workspace_integration UNIQUE (workspace_id, integration_id)
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_connections_status ON integration_connections (status)",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_connections_integration_id
            ON integration_connections (integration_id)",
    ),
    Postgres("GRANT SELECT, INSERT, UPDATE, DELETE ON integration_connections TO authenticated"),
    Postgres("ALTER TABLE integration_connections ENABLE ROW LEVEL SECURITY"),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_select_by_workspace ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_select_by_workspace ON integration_connections
            FOR SELECT TO authenticated USING (",
        member_of_workspace!(),
        ")"
    )),
    Postgres(
        "DROP POLICY IF EXISTS integration_connections_workspace_access ON integration_connections",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_connections_workspace_access ON integration_connections
            FOR ALL TO authenticated USING (",
        member_of_workspace!(),
        ") WITH CHECK (",
        member_of_workspace!(),
        ")"
    )),
    Postgres("ALTER TABLE entities DROP CONSTRAINT IF EXISTS fk_entities_source_integration"),
    Postgres(
        "ALTER TABLE entities ADD CONSTRAINT fk_entities_source_integration
            FOREIGN KEY (source_integration_id) REFERENCES integration_definitions (id)
            ON DELETE SET NULL NOT VALID",
    ),
    Postgres("ALTER TABLE entities VALIDATE CONSTRAINT fk_entities_source_integration"),
    Postgres(
        "ALTER TABLE entity_attribute_provenance
            DROP CONSTRAINT IF EXISTS fk_entity_attribute_provenance_source_integration",
    ),
    Postgres(
        "ALTER TABLE entity_attribute_provenance ADD CONSTRAINT fk_entity_attribute_provenance_source_integration
            FOREIGN KEY (source_integration_id) REFERENCES integration_definitions (id)
            ON DELETE SET NULL NOT VALID",
    ),
    Postgres(
        "ALTER TABLE entity_attribute_provenance
            VALIDATE CONSTRAINT fk_entity_attribute_provenance_source_integration",
    ),
];

const DOWN: &[Stmt] = &[
    Postgres(
        "ALTER TABLE entity_attribute_provenance
            DROP CONSTRAINT IF EXISTS fk_entity_attribute_provenance_source_integration",
    ),
    Postgres("ALTER TABLE entities DROP CONSTRAINT IF EXISTS fk_entities_source_integration"),
    Both("DROP TABLE IF EXISTS integration_connections"),
];
