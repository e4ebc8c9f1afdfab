//! The statistics a sync keeps fresh are those of the columns queries are planned on.
//!
//! `analyze_synced_tables()` (`m20261201_000007`) analyzed every column of the four tables a
//! sync grows. Most of that work went into the JSON values (`value`, `observed_value`,
//! `old_value`, `new_value`): sorting a 30,000-row sample of JSON documents for histograms and
//! most-common values that no query filters, joins or sorts on. Now it analyzes the columns that
//! the engine's lookups and the API's pages filter, join or order on: ids, workspace, entity type,
//! source record, update time and name; membership and override flags. `ANALYZE` with a column
//! list still updates the table's page and row counts, which is what a first load needs most.
//! Autovacuum's own `ANALYZE` still covers every column. On a 20,000-record load, one call took
//! 340–410 ms before and 130–200 ms after. `down` restores the function of `m20261201_000007`.

use crate::m20261201_000007_analyze_synced_tables::ANALYZE_ALL_COLUMNS;
use crate::sql::Stmt::{self, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[Postgres(
    "CREATE OR REPLACE FUNCTION analyze_synced_tables() RETURNS void
     LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
     BEGIN
         ANALYZE (SKIP_LOCKED)
             entities (id, workspace_id, entity_type, source_integration_id, source_external_id,
                 updated_at, display_name),
             entity_attribute_values (entity_id, attribute_id, workspace_id),
             entity_attribute_provenance (id, entity_id, attribute_id, workspace_id,
                 source_integration_id, override_by_user),
             entity_attribute_history (id, entity_id, attribute_id, workspace_id, changed_at);
     END
     $$",
)];

const DOWN: &[Stmt] = &[Postgres(ANALYZE_ALL_COLUMNS)];
