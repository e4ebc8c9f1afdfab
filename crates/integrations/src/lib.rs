//! The integration engine: connections and credentials, validation, health, cache, sync with
//! per-attribute provenance, the webhook inbox and jobs, on the schema of the `migration` crate and
//! the models of `entity`, calling providers through `providers`.
//!
//! What is here and tested:
//! - [`ConnectionValidator`]: asks the provider who the account is and moves `connection_status`
//!   through `validating` to `connected`, `disconnected` or `error`, storing sanitized account info,
//!   the account id for webhook routing and a cached copy; finds connections due for validation.
//! - [`HealthMonitor`]: timed, graded health checks (`HEALTHY`/`WARNING`/`ERROR`) logged in
//!   `integration_health_logs`, with the newest logs and pruning of old ones.
//! - [`SyncEngine`]: claims a (connection, object type), reads pages through a
//!   [`providers::ProviderClient`], and writes entities, values and provenance per page in one
//!   transaction with the cursor checkpoint; user overrides always win.
//! - [`AttributeEditor`]: user edits with optimistic concurrency on `sync_version`; an edit is an
//!   override no sync overwrites until it is cleared.
//! - [`ConnectionManager`]: start (single-use hashed `state`, sealed PKCE verifier, 10 minutes),
//!   complete (exchange, seal, activate, queue validation and first sync), Stripe API keys,
//!   disconnect (revoke, delete credentials, stop syncs).
//! - [`CredentialStore`]: sealed credentials bound to their row; access tokens refreshed ahead of
//!   expiry with one refresh per connection at a time across processes.
//! - [`WebhookInbox`]: exactly-once intake of verified webhook events (dedupe table with 30-day
//!   expiry, routing by account id, processing through the job queue).
//! - [`JobQueue`]: idempotent enqueue, `SKIP LOCKED` claims, retries with backoff, lock takeover.
//! - [`Scheduler`] and [`Worker`]: cron schedules per provider, validation, health and cleanup
//!   as keyed jobs (each slot once across replicas), run by workers with clients from a
//!   [`ProviderFactory`].
//! - [`SyncProgress`]: page-by-page progress of syncs, by `pg_notify` on PostgreSQL and a
//!   [`ProgressFeed`] in-process on SQLite.
//! - [`IntegrationCache`]: TTL cache of provider data that refuses credentials.
//! - [`object_mapping`]: the default field mapping of every synced object plus a connection's
//!   `property_mappings`.

mod cache;
mod conflicts;
mod connections;
mod credentials;
mod edits;
mod error;
mod health;
mod heartbeat;
mod history;
mod inbox;
mod jobs;
mod lifecycle;
mod mapping;
mod progress;
mod reads;
mod scheduler;
mod sync;
mod validation;
mod worker;

pub use cache::IntegrationCache;
pub use conflicts::{Conflict, conflicts};
pub use connections::{
    ConnectionManager, Disconnected, OAUTH_STATE_LIFETIME_MINUTES, OAuthCallback, StartConnection,
    Started, config_from_json, config_to_json,
};
pub use credentials::{CredentialKind, CredentialStore, TokenRefresher, credential_binding};
pub use edits::{AttributeEditor, is_conflict};
pub use error::EngineError;
pub use health::{
    HEALTH_LOG_RETENTION_DAYS, HealthCheck, HealthMonitor, HealthStatus, failure_kind, grade,
    log_message,
};
pub use history::{AttributeAsOf, attribute_history, attributes_as_of, sync_run};
pub use inbox::{BatchingInbox, Intake, IntakeError, WEBHOOK_RETENTION_DAYS, WebhookInbox};
pub use jobs::{DEFAULT_JOB_LOCK, JOB_KINDS, Job, JobQueue, NewJob, QueuedSync, queued_syncs};
pub use lifecycle::{JobStatus, Lifecycle, RunStatus, SourceType, SyncStatus, needs_attention};
pub use mapping::{ObjectMapping, is_attribute_key, is_synced_entity_type, object_mapping};
pub use progress::{
    CHANGES_CHANNEL, ChangeKind, EngineObserver, EntityChange, EntityChanges, MAX_NOTIFY_BYTES,
    PROGRESS_CHANNEL, PageCounts, ProgressFeed, SyncProgress,
};
pub use reads::{
    AttributeRow, EntityAfter, EntityOrder, EntityQuery, attribute_rows, attribute_rows_statement,
    connection, connection_with_definition, connections_of, entity, entity_page,
    entity_page_statement, health_logs, sync_states, updated_key,
};
pub use scheduler::{DEFAULT_SYNC_SCHEDULE, Scheduler, TickReport};
pub use sync::{
    AnalyzeSchedule, DEFAULT_ANALYZE_EVERY_ROWS, DEFAULT_PAGES_IN_FLIGHT, DEFAULT_SYNC_LEASE,
    DEFAULT_SYNC_REQUEST_BUDGET, DEFAULT_SYNC_SLICE_PAGES, DEFAULT_SYNC_SLICE_SECONDS,
    SliceOutcome, SyncClaim, SyncEngine, SyncReport, SyncSlice, field_value,
};
pub use validation::{
    ACCOUNT_INFO_CACHE_KEY, ConnectionStatus, ConnectionValidator, ValidationOutcome,
    sanitized_account_info, sanitized_value, validation_interval,
};
pub use worker::{DEFAULT_ATTRIBUTE_HISTORY_DAYS, JobOutcome, ProviderFactory, Worker};

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: a deferred
/// transaction that reads before it writes cannot upgrade to a writer once another connection
/// has committed (SQLite answers "database is locked" at once, whatever the busy timeout), while
/// an immediate one waits its turn for the write lock under the busy timeout. PostgreSQL begins
/// as usual.
pub async fn begin_write<C: sea_orm::TransactionTrait>(
    db: &C,
) -> Result<C::Transaction, sea_orm::DbErr> {
    db.begin_with_options(sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}
