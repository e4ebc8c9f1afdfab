//! Statistics that keep up with a large first sync (PostgreSQL).
//!
//! `analyze_synced_tables()` runs `ANALYZE (SKIP_LOCKED)` on the tables a sync grows (entities,
//! attribute values, provenance, attribute history). The sync engine calls it after every N rows
//! it inserted (`SYNC_ANALYZE_EVERY_ROWS`), so other tenants' queries are planned on statistics
//! that know the table's size, without waiting for autovacuum. It is `SECURITY DEFINER` (only the
//! tables' owner may analyze them) and only `platform_worker` may execute it. SQLite needs nothing.
//! `down` drops the function.

use crate::sql::Stmt::{self, Postgres};

crate::sql_migration!();

/// The function as this migration defines it: every column of the four tables
/// (`m20261207_000012_analyze_key_columns` narrows it, and restores this on `down`).
pub(crate) const ANALYZE_ALL_COLUMNS: &str =
    "CREATE OR REPLACE FUNCTION analyze_synced_tables() RETURNS void
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
     BEGIN
         ANALYZE (SKIP_LOCKED) entities, entity_attribute_values, entity_attribute_provenance,
             entity_attribute_history;
     END
     $$";

const UP: &[Stmt] = &[
    Postgres(ANALYZE_ALL_COLUMNS),
    Postgres("REVOKE ALL ON FUNCTION analyze_synced_tables() FROM PUBLIC"),
    Postgres(
        "DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_worker') THEN
                GRANT EXECUTE ON FUNCTION analyze_synced_tables() TO platform_worker;
            END IF;
        END
        $$",
    ),
];

const DOWN: &[Stmt] = &[Postgres("DROP FUNCTION IF EXISTS analyze_synced_tables()")];
