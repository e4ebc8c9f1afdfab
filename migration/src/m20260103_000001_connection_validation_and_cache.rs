//! Seed 000: connection validation on `integration_connections` (`last_connection_validation`,
//! `connection_status`, sanitized `account_info`, `validation_error`) and the provider-data cache
//! `integration_cache` with its expiry index. Neither column nor cache ever holds a token.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_connection_validation {tstz}",
    ),
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} connection_status VARCHAR(20)
            NOT NULL DEFAULT 'unknown'
            CONSTRAINT chk_integration_connections_connection_status
            CHECK (connection_status IN ('connected', 'disconnected', 'error', 'validating', 'unknown'))",
    ),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} account_info {json}"),
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} validation_error TEXT"),
    // The seed's (userId, provider, connectionStatus), in this schema's terms.
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_connection_status
            ON integration_connections (workspace_id, integration_id, connection_status)",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS integration_cache (
            id {uuid} PRIMARY KEY {uuid_default},
            connection_id {uuid} NOT NULL REFERENCES integration_connections (id) ON DELETE CASCADE,
            cache_key VARCHAR(200) NOT NULL,
            cache_data {json} NOT NULL,
            expires_at {tstz} NOT NULL,
            created_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT uq_integration_cache_connection_key UNIQUE (connection_id, cache_key)
        )",
    ),
    Both("CREATE INDEX IF NOT EXISTS idx_integration_cache_expiry ON integration_cache (expires_at)"),
    // Provider data is read by the engine on the server's behalf, never through the API role.
    Postgres("ALTER TABLE integration_cache ENABLE ROW LEVEL SECURITY"),
];

const DOWN: &[Stmt] = &[
    Both("DROP TABLE IF EXISTS integration_cache"),
    Both("DROP INDEX IF EXISTS idx_integration_connection_status"),
    Both("ALTER TABLE integration_connections DROP COLUMN validation_error"),
    Both("ALTER TABLE integration_connections DROP COLUMN account_info"),
    Both("ALTER TABLE integration_connections DROP COLUMN connection_status"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_connection_validation"),
];
