//! A sync run's API calls, counted across its slices.
//!
//! A sync job runs for a bounded slice (`SYNC_SLICE_PAGES`, `SYNC_SLICE_SECONDS`) and then goes
//! back to the queue behind other workspaces' work, so one run spans several jobs. Its request
//! budget (`SYNC_REQUEST_BUDGET`) is the run's, not the slice's: `sync_runs.api_calls` keeps what
//! the run's slices spent, and each slice starts with what is left. `down` drops the column.

use crate::sql::Stmt::{self, Both};

crate::sql_migration!();

const UP: &[Stmt] = &[Both(
    "ALTER TABLE sync_runs ADD COLUMN api_calls BIGINT NOT NULL DEFAULT 0",
)];

const DOWN: &[Stmt] = &[Both("ALTER TABLE sync_runs DROP COLUMN api_calls")];
