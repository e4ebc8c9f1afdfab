//! Sync progress, page by page, for whoever watches a connection (the API's `syncProgress`
//! subscription), and entity changes for whoever watches a workspace (`entityChanges`).
//!
//! On PostgreSQL the engine publishes with `pg_notify` inside each page's transaction, so an event
//! is delivered exactly when its page commits, to every process listening on
//! [`PROGRESS_CHANNEL`] (the sync may run in another replica). On SQLite, where one process runs
//! everything, the engine sends to an in-process [`ProgressFeed`]. A slow watcher misses events
//! (the feed keeps the newest ones); it never slows a sync down.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The PostgreSQL `LISTEN` channel of progress events (JSON of [`SyncProgress`]).
pub const PROGRESS_CHANNEL: &str = "sync_progress";

/// The PostgreSQL `LISTEN` channel of entity changes (JSON of [`EntityChanges`]).
pub const CHANGES_CHANNEL: &str = "entity_changes";

/// The largest `pg_notify` payload sent: PostgreSQL refuses above 8,000 bytes, so a page's
/// changes go out in as many notifications as they need.
pub const MAX_NOTIFY_BYTES: usize = 7_000;

/// Events a watcher may fall behind by before it skips the oldest.
const FEED_CAPACITY: usize = 1_024;

/// What happened to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// Some of its attributes changed (or it was unarchived).
    Updated,
    /// It was archived (deleted at the provider).
    Archived,
}

/// One entity's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityChange {
    /// The entity.
    pub entity_id: Uuid,
    /// What happened.
    pub kind: ChangeKind,
    /// The attribute keys whose value changed.
    pub keys: Vec<String>,
}

/// Changes of entities of one workspace and type, made by one sync run or one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityChanges {
    /// The workspace.
    pub workspace_id: Uuid,
    /// The entities' type.
    pub entity_type: String,
    /// The sync run that made them (absent for a user's edit).
    pub sync_run_id: Option<Uuid>,
    /// The user who made them (absent for a sync).
    pub user_id: Option<Uuid>,
    /// The changes.
    pub changes: Vec<EntityChange>,
}

impl EntityChanges {
    /// Sends these changes with the caller's transaction on PostgreSQL (`pg_notify` on
    /// [`CHANGES_CHANNEL`], as many payloads as they need), so they are delivered when it
    /// commits; false elsewhere (the caller publishes in-process after its commit).
    pub(crate) async fn notify<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
    ) -> Result<bool, sea_orm::DbErr> {
        if db.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(false);
        }
        for payload in self.payloads() {
            db.execute_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANGES_CHANNEL.into(), payload.into()],
            ))
            .await?;
        }
        Ok(true)
    }

    /// These changes split into payloads of at most [`MAX_NOTIFY_BYTES`] of JSON each.
    pub fn payloads(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut batch = Self {
            changes: Vec::new(),
            ..self.clone()
        };
        for change in &self.changes {
            batch.changes.push(change.clone());
            let text = serde_json::to_string(&batch).unwrap_or_default();
            if text.len() > MAX_NOTIFY_BYTES && batch.changes.len() > 1 {
                let last = batch.changes.pop();
                out.push(serde_json::to_string(&batch).unwrap_or_default());
                batch.changes = last.into_iter().collect();
            }
        }
        if !batch.changes.is_empty() {
            out.push(serde_json::to_string(&batch).unwrap_or_default());
        }
        out
    }
}

/// One step of a sync: after each committed page, then once when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncProgress {
    /// The connection synced.
    pub connection_id: Uuid,
    /// The object type synced.
    pub object_type: String,
    /// Pages committed so far in this run.
    pub pages: u32,
    /// Entities created so far in this run.
    pub created: u32,
    /// Entities updated so far in this run.
    pub updated: u32,
    /// Entities archived so far in this run.
    pub deleted: u32,
    /// Attribute values left alone because a user override pins them, so far.
    pub conflicts: u32,
    /// `syncing` while pages follow, then `idle` (finished) or `error`.
    pub status: String,
    /// Why the run failed (only with `status` `error`).
    pub error: Option<String>,
}

impl SyncProgress {
    /// Whether this is the run's last event.
    pub fn is_final(&self) -> bool {
        self.status != crate::SyncStatus::Syncing.as_str()
    }
}

/// An in-process fan-out of progress events and entity changes.
#[derive(Debug, Clone)]
pub struct ProgressFeed {
    progress: broadcast::Sender<SyncProgress>,
    changes: broadcast::Sender<EntityChanges>,
}

impl Default for ProgressFeed {
    fn default() -> Self {
        Self {
            progress: broadcast::channel(FEED_CAPACITY).0,
            changes: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl ProgressFeed {
    /// Delivers `event` to the current watchers (none is fine).
    pub fn publish(&self, event: SyncProgress) {
        let _ = self.progress.send(event);
    }

    /// How many progress watchers there are now.
    pub fn watchers(&self) -> usize {
        self.progress.receiver_count()
    }

    /// A new progress watcher, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncProgress> {
        self.progress.subscribe()
    }

    /// Delivers entity changes to the current watchers (none is fine).
    pub fn publish_changes(&self, changes: EntityChanges) {
        let _ = self.changes.send(changes);
    }

    /// How many entity-change watchers there are now.
    pub fn change_watchers(&self) -> usize {
        self.changes.receiver_count()
    }

    /// A new watcher of entity changes, receiving those published from now on.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<EntityChanges> {
        self.changes.subscribe()
    }
}

/// What the engine reports to whoever hosts it, for metrics: every committed sync page and every
/// token refresh, in the process that did the work (so counters summed across replicas are
/// exact). The default methods ignore everything.
pub trait EngineObserver: Send + Sync + std::fmt::Debug {
    /// A sync page of `provider`'s `object_type` committed with these counts.
    fn sync_page(&self, provider: providers::ProviderKind, object_type: &str, counts: &PageCounts) {
        let _ = (provider, object_type, counts);
    }

    /// A token refresh of `provider` ended: `refreshed`, `revoked` or `failed`.
    fn token_refresh(&self, provider: providers::ProviderKind, outcome: &'static str) {
        let _ = (provider, outcome);
    }

    /// A worker claimed a job of `kind` that had been due for `waited` (a sync's next slice:
    /// since its last slice yielded).
    fn job_claimed(&self, kind: &str, waited: std::time::Duration) {
        let _ = (kind, waited);
    }
}

/// The records of one committed page, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// Entities created.
    pub created: u32,
    /// Entities updated.
    pub updated: u32,
    /// Entities archived.
    pub deleted: u32,
    /// Records that changed nothing.
    pub unchanged: u32,
    /// Attribute values kept because a user override pins them.
    pub conflicts: u32,
}
