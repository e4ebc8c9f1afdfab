//! Seed 001: health monitoring — `last_health_check` and `health_status` on each connection, and the
//! `integration_health_logs` history (status, error, response time in ms, when) with the seed's
//! four indexes.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both("ALTER TABLE integration_connections ADD COLUMN {if_not_exists} last_health_check {tstz}"),
    Both(
        "ALTER TABLE integration_connections ADD COLUMN {if_not_exists} health_status VARCHAR(20)
            NOT NULL DEFAULT 'UNKNOWN'
            CONSTRAINT chk_integration_connections_health_status
            CHECK (health_status IN ('HEALTHY', 'WARNING', 'ERROR', 'UNKNOWN'))",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_connections_health_status
            ON integration_connections (health_status)",
    ),
    Both(
        "CREATE TABLE IF NOT EXISTS integration_health_logs (
            id {uuid} PRIMARY KEY {uuid_default},
            connection_id {uuid} NOT NULL REFERENCES integration_connections (id) ON DELETE CASCADE,
            status VARCHAR(20) NOT NULL
                CONSTRAINT chk_integration_health_logs_status
                CHECK (status IN ('HEALTHY', 'WARNING', 'ERROR', 'UNKNOWN')),
            error_message TEXT,
            response_time INTEGER CONSTRAINT chk_integration_health_logs_response_time CHECK (response_time >= 0),
            checked_at {tstz} NOT NULL DEFAULT {now}
        )",
    ),
    // Serves "the last N checks of a connection" as well as "all checks of a connection".
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_health_logs_connection_id
            ON integration_health_logs (connection_id, checked_at DESC)",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_health_logs_checked_at
            ON integration_health_logs (checked_at)",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_health_logs_status ON integration_health_logs (status)",
    ),
    Postgres("GRANT SELECT ON integration_health_logs TO authenticated"),
    Postgres("ALTER TABLE integration_health_logs ENABLE ROW LEVEL SECURITY"),
    Postgres(
        "DROP POLICY IF EXISTS integration_health_logs_select_members ON integration_health_logs",
    ),
    Postgres(concat!(
        "CREATE POLICY integration_health_logs_select_members ON integration_health_logs
            FOR SELECT TO authenticated USING (connection_id IN (
                SELECT c.id FROM integration_connections c WHERE c.",
        member_of_workspace!(),
        "))"
    )),
];

const DOWN: &[Stmt] = &[
    Both("DROP TABLE IF EXISTS integration_health_logs"),
    Both("DROP INDEX IF EXISTS idx_integration_connections_health_status"),
    Both("ALTER TABLE integration_connections DROP COLUMN health_status"),
    Both("ALTER TABLE integration_connections DROP COLUMN last_health_check"),
];
