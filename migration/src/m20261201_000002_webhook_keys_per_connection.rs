//! Webhook dedupe keys per tenant: `webhook_events.event_id` becomes
//! `<connection id>:<provider key>` (for example `…:stripe:evt_1`), so the same event delivered to
//! two workspaces' endpoints is taken once by each and no tenant can claim another's ids. Existing
//! keys with a connection are prefixed with it (SQLite stores UUIDs as 16-byte blobs, so its text
//! form is spelled out); `event_id` stays unique, as seed 003 names it. A prefixed key is matched
//! as 36 characters of UUID then `:` (`________-____-____-____-____________:%`).

use crate::sql::Stmt::{self, Both, Postgres, Sqlite};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Postgres(
        "UPDATE webhook_events SET event_id = connection_id::text || ':' || event_id
         WHERE connection_id IS NOT NULL
           AND event_id NOT LIKE '________-____-____-____-____________:%'",
    ),
    Sqlite(
        "UPDATE webhook_events SET event_id = lower(
                substr(hex(connection_id), 1, 8) || '-' || substr(hex(connection_id), 9, 4) || '-' ||
                substr(hex(connection_id), 13, 4) || '-' || substr(hex(connection_id), 17, 4) || '-' ||
                substr(hex(connection_id), 21, 12)
            ) || ':' || event_id
         WHERE connection_id IS NOT NULL
           AND event_id NOT LIKE '________-____-____-____-____________:%'",
    ),
];

// Back to provider keys: where two connections took the same event, one row is kept.
const DOWN: &[Stmt] = &[
    Both(
        "DELETE FROM webhook_events
         WHERE event_id LIKE '________-____-____-____-____________:%'
           AND EXISTS (
               SELECT 1 FROM webhook_events other
               WHERE other.id < webhook_events.id
                 AND substr(other.event_id, 38) = substr(webhook_events.event_id, 38)
                 AND other.event_id LIKE '________-____-____-____-____________:%'
           )",
    ),
    Both(
        "UPDATE webhook_events SET event_id = substr(event_id, 38)
         WHERE event_id LIKE '________-____-____-____-____________:%'",
    ),
];
