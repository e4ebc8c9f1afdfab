//! Seed 003: the webhook dedupe table `webhook_events` (unique `event_id`, 30-day `expires_at`) and
//! incremental-sync state. The seed's sync columns go on `integration_connections` as the
//! connection-wide summary and settings (`sync_config`, `property_mappings`, and `sync_cursor` for
//! account-wide change feeds such as Stripe events or Gmail history); `integration_sync_states`
//! holds the same state per object type, because contacts and companies never share a cursor.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    // `event_id` is the provider's delivery id, namespaced by the inbox (provider and account), so
    // ids from two providers cannot collide in the one unique column.
    Both(
        "CREATE TABLE IF NOT EXISTS webhook_events (
            id {uuid} PRIMARY KEY {uuid_default},
            event_id TEXT NOT NULL,
            provider VARCHAR(100) NOT NULL,
            connection_id {uuid} REFERENCES integration_connections (id) ON DELETE SET NULL,
            event_type TEXT,
            processed_at {tstz} DEFAULT {now},
            expires_at {tstz} NOT NULL,
            CONSTRAINT uq_webhook_events_event_id UNIQUE (event_id)
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_webhook_events_expires_at ON webhook_events (expires_at)",
    ),
    Postgres("ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY"),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} sync_config {json}"),
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_sync_created INTEGER
            NOT NULL DEFAULT 0",
    ),
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_sync_updated INTEGER
            NOT NULL DEFAULT 0",
    ),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_modified_sync {tstz}"),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_sync_at {tstz}"),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} sync_cursor TEXT"),
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} sync_status VARCHAR(20)
            NOT NULL DEFAULT 'idle'
            CONSTRAINT chk_sync_status CHECK (sync_status IN ('idle', 'syncing', 'error', 'disabled'))",
    ),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_error_message TEXT"),
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} error_count INTEGER
            NOT NULL DEFAULT 0",
    ),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} property_mappings {json}"),
    Both(
        "CREATE TABLE IF NOT EXISTS integration_sync_states (
            id {uuid} PRIMARY KEY {uuid_default},
            connection_id {uuid} NOT NULL REFERENCES integration_connections (id) ON DELETE CASCADE,
            object_type VARCHAR(100) NOT NULL,
            sync_cursor TEXT,
            sync_status VARCHAR(20) NOT NULL DEFAULT 'idle'
                CONSTRAINT chk_integration_sync_states_sync_status
                CHECK (sync_status IN ('idle', 'syncing', 'error', 'disabled')),
            last_sync_created INTEGER NOT NULL DEFAULT 0,
            last_sync_updated INTEGER NOT NULL DEFAULT 0,
            last_sync_deleted INTEGER NOT NULL DEFAULT 0,
            last_sync_conflicts INTEGER NOT NULL DEFAULT 0,
            last_modified_sync {tstz},
            last_sync_started_at {tstz},
            last_sync_completed_at {tstz},
            last_error_message TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            lease_owner TEXT,
            lease_expires_at {tstz},
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT uq_integration_sync_states_connection_object UNIQUE (connection_id, object_type)
        )",
    ),
    // Finds syncs whose lease ran out (a crashed worker) without scanning idle rows.
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_sync_states_syncing
            ON integration_sync_states (lease_expires_at) WHERE sync_status = 'syncing'",
    ),
    Postgres("GRANT SELECT ON integration_sync_states TO authenticated"),
    Postgres("ALTER TABLE integration_sync_states ENABLE ROW LEVEL SECURITY"),
    Postgres(
        "DROP POLICY IF EXISTS integration_sync_states_select_members ON integration_sync_states",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_sync_states_select_members ON integration_sync_states
            FOR SELECT TO authenticated USING (connection_id IN (
                SELECT c.id FROM integration_connections c WHERE c.",
        member_of_workspace!(),
        "))"
    )),
];

const DOWN: &[Stmt] = &[
    Both("DROP TABLE IF EXISTS integration_sync_states"),
    Both("ALTER TABLE integration_connections DROP COLUMN property_mappings"),
    Both("ALTER TABLE integration_connections DROP COLUMN error_count"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_error_message"),
    Both("ALTER TABLE integration_connections DROP COLUMN sync_status"),
    Both("ALTER TABLE integration_connections DROP COLUMN sync_cursor"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_sync_at"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_modified_sync"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_sync_updated"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_sync_created"),
    Both("ALTER TABLE integration_connections DROP COLUMN sync_config"),
    Both("DROP TABLE IF EXISTS webhook_events"),
];
