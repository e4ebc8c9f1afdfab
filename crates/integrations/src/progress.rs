//! Sync progress, page by page, for whoever watches a connection (the API's `syncProgress`
//! subscription).
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

/// Events a watcher may fall behind by before it skips the oldest.
const FEED_CAPACITY: usize = 1_024;

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

/// An in-process fan-out of progress events.
#[derive(Debug, Clone)]
pub struct ProgressFeed(broadcast::Sender<SyncProgress>);

impl Default for ProgressFeed {
    fn default() -> Self {
        Self(broadcast::channel(FEED_CAPACITY).0)
    }
}

impl ProgressFeed {
    /// Delivers `event` to the current watchers (none is fine).
    pub fn publish(&self, event: SyncProgress) {
        let _ = self.0.send(event);
    }

    /// How many watchers there are now.
    pub fn watchers(&self) -> usize {
        self.0.receiver_count()
    }

    /// A new watcher, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SyncProgress> {
        self.0.subscribe()
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
