//! The entities page's index: the API reads a workspace's entities by `id` after a keyset cursor
//! (`WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT 51`). Without `(workspace_id, id)` that
//! is a walk of the primary key filtered by workspace, which reads every other workspace's rows
//! in between; with it, a page reads its own 51 rows whatever the number of tenants.

use crate::sql::Stmt::{self, Both};

crate::sql_migration!();

const UP: &[Stmt] = &[Both(
    "CREATE INDEX IF NOT EXISTS idx_entities_workspace_id_id ON entities (workspace_id, id)",
)];

const DOWN: &[Stmt] = &[Both("DROP INDEX IF EXISTS idx_entities_workspace_id_id")];
