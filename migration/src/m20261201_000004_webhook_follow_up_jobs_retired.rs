//! Webhook follow-ups no longer go through the queue twice: the inbox queues the sync of the
//! event's object itself. Jobs of the retired kind `webhook` still waiting from an earlier version
//! would never be claimed again, so they are cancelled with a note; the change they announced is
//! read by the connection's next incremental sync (scheduled, or on the next webhook). `down`
//! changes nothing: a cancelled follow-up needs no restoring, since the sync reads the change.

use crate::sql::Stmt::{self, Both};

crate::sql_migration!();

const UP: &[Stmt] = &[Both(
    "UPDATE job_queue SET status = 'cancelled',
        last_error = 'retired: webhook follow-ups now queue their sync directly; the next incremental sync reads the change',
        locked_until = NULL, finished_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP
     WHERE kind = 'webhook' AND status IN ('queued', 'running')",
)];

const DOWN: &[Stmt] = &[];
