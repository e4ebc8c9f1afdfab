//! Seed 002 V001: where an entity came from (`source_type`, integration, external id and URL, sync
//! times) and its `sync_version` for optimistic concurrency, with partial indexes.
//!
//! No backfill: `source_type` is added `NOT NULL DEFAULT 'USER_CREATED'`, which PostgreSQL 11+
//! records in the catalog without rewriting the table, so every existing row reads `USER_CREATED`
//! at once. The seed's `UPDATE` over all rows is what made V001 slow on large tables.
//! The foreign key on `source_integration_id` is added by V004 on PostgreSQL; on SQLite it is
//! declared inline here because SQLite cannot add one afterwards.

use crate::sql::Stmt::{self, Both};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "ALTER TABLE entities ADD COLUMN {if_not_exists} source_type VARCHAR(50) NOT NULL DEFAULT 'USER_CREATED'
            CONSTRAINT chk_entities_source_type
            CHECK (source_type IN ('USER_CREATED', 'INTEGRATION', 'IMPORT', 'API'))",
    ),
    Both(
        "ALTER TABLE entities ADD COLUMN {if_not_exists} source_integration_id {uuid} {fk_definitions}",
    ),
    Both("ALTER TABLE entities ADD COLUMN {if_not_exists} source_external_id TEXT"),
    Both("ALTER TABLE entities ADD COLUMN {if_not_exists} source_url TEXT"),
    Both("ALTER TABLE entities ADD COLUMN {if_not_exists} first_synced_at {tstz}"),
    Both("ALTER TABLE entities ADD COLUMN {if_not_exists} last_synced_at {tstz}"),
    Both(
        "ALTER TABLE entities ADD COLUMN {if_not_exists} sync_version BIGINT NOT NULL DEFAULT 0
            CONSTRAINT chk_entities_sync_version CHECK (sync_version >= 0)",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_entities_source_integration_id ON entities (source_integration_id)
            WHERE source_integration_id IS NOT NULL",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_entities_source_external_id ON entities (source_external_id)
            WHERE source_external_id IS NOT NULL",
    ),
    // The sync engine's upsert key: one entity per record of an integration in a workspace.
    Both(
        "CREATE UNIQUE INDEX IF NOT EXISTS uq_entities_source_record
            ON entities (workspace_id, source_integration_id, source_external_id)
            WHERE source_integration_id IS NOT NULL AND source_external_id IS NOT NULL",
    ),
];

const DOWN: &[Stmt] = &[
    Both("DROP INDEX IF EXISTS uq_entities_source_record"),
    Both("DROP INDEX IF EXISTS idx_entities_source_external_id"),
    Both("DROP INDEX IF EXISTS idx_entities_source_integration_id"),
    Both("ALTER TABLE entities DROP COLUMN sync_version"),
    Both("ALTER TABLE entities DROP COLUMN last_synced_at"),
    Both("ALTER TABLE entities DROP COLUMN first_synced_at"),
    Both("ALTER TABLE entities DROP COLUMN source_url"),
    Both("ALTER TABLE entities DROP COLUMN source_external_id"),
    Both("ALTER TABLE entities DROP COLUMN source_integration_id"),
    Both("ALTER TABLE entities DROP COLUMN source_type"),
];
