//! The sync engine: claims one (connection, object type) at a time, reads pages from the provider
//! adapter, and writes each page — entities, attribute values, per-attribute provenance, counters and
//! the cursor checkpoint — in one transaction, so a crash resumes from the last page with no
//! duplicate.
//!
//! What a page writes is decided by the pure [`plan`](plan::plan) (user overrides win, an older
//! snapshot never overwrites a newer one); `write_page` reads the rows the plan needs (on
//! PostgreSQL usually read ahead, while the page before commits: see `pages`), and executes it.
//!
//! A page costs a fixed number of statements whatever its size: the reads of its entities, values
//! and provenance (on PostgreSQL one statement that probes each index once per key through
//! `LATERAL`, so a table whose statistics are stale cannot turn the lookup into a scan of the
//! workspace; elsewhere three), three upserts, one update of the values observed under overrides,
//! one append to the attribute history, one archive update and one checkpoint (each skipped when
//! it has no rows; on PostgreSQL the checkpoint carries the progress notification, and a page
//! that changes nothing is its checkpoint alone, without a transaction). On PostgreSQL
//! the writes are set-based (`set_write.rs`: one `INSERT … SELECT … FROM unnest` per table, the
//! rows as one typed array per column, the same statement text every page); elsewhere
//! sea-orm's multi-row statements (`write_rows`). Every run has a `sync_runs` row (a resumed run
//! keeps it), and every value it writes names it in its provenance and history.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::StreamExt as _;

use chrono::{DateTime, FixedOffset};
use entity::{
    attribute_definitions, entities, entity_attribute_history as history,
    entity_attribute_provenance as provenance, entity_attribute_values as attribute_values,
    integration_connections as connections, integration_definitions as definitions,
    integration_sync_states as sync_states, sync_runs,
};
use providers::{Clock, Cursor, Page, ProviderClient, ProviderKind, ReadOptions, RequestBudget};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait as _,
    QueryFilter as _, QueryTrait as _, Statement,
};
use serde_json::Value;
use uuid::Uuid;

use crate::EngineError;
use crate::heartbeat::Heartbeat;
use crate::lifecycle::{Lifecycle, RunStatus, SourceType, SyncStatus};
use crate::mapping::{ObjectMapping, object_mapping};
use crate::progress::{
    ChangeKind, EngineObserver, EntityChange, EntityChanges, PROGRESS_CHANNEL, PageCounts,
    ProgressFeed, SyncProgress,
};
use plan::{Existing, ExistingEntity, Origin, PageRecords, PlanInput};

/// The provenance columns of the latest observation from the integration (the shadow value).
const OBSERVED_COLUMNS: [provenance::Column; 5] = [
    provenance::Column::ObservedValue,
    provenance::Column::ObservedIntegrationId,
    provenance::Column::ObservedExternalField,
    provenance::Column::ObservedUpdatedAt,
    provenance::Column::ObservedAt,
];

/// Pages of one run written at once on PostgreSQL unless configured otherwise
/// (`SYNC_PAGES_IN_FLIGHT`): the next pages' rows go in while the page before is still being
/// written (each in its own transaction, committed in page order). On 2 cores, 3 against 2 gave
/// a first load 1–5% and a re-sync ~9% faster, and another workspace's page p99 during that load
/// 23 → 40 ms (`bench/NOTES.md`, 2026-12-07).
pub const DEFAULT_PAGES_IN_FLIGHT: usize = 3;

/// Pages the reader reads ahead of the writer.
const READ_AHEAD: usize = 2;

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bound-parameter limits
/// (32,766 and 65,535; a provenance row binds 17).
const ROWS_PER_STATEMENT: usize = 1_500;

/// What one sync run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Pages read.
    pub pages: u32,
    /// Entities created.
    pub created: u32,
    /// Entities with at least one attribute changed (or unarchived).
    pub updated: u32,
    /// Entities archived because the provider deleted the record.
    pub deleted: u32,
    /// Records that changed nothing.
    pub unchanged: u32,
    /// Attribute values not written because a user override pins them.
    pub conflicts: u32,
}

impl SyncReport {
    fn add(&mut self, counts: &SyncReport) {
        self.created += counts.created;
        self.updated += counts.updated;
        self.deleted += counts.deleted;
        self.unchanged += counts.unchanged;
        self.conflicts += counts.conflicts;
    }
}

fn progress_event(
    claim: &SyncClaim,
    report: &SyncReport,
    status: SyncStatus,
    error: Option<String>,
) -> SyncProgress {
    SyncProgress {
        connection_id: claim.connection_id,
        object_type: claim.object_type.clone(),
        pages: report.pages,
        created: report.created,
        updated: report.updated,
        deleted: report.deleted,
        conflicts: report.conflicts,
        status: status.as_str().to_owned(),
        error,
    }
}

/// A claimed sync: this worker may write the (connection, object type) until its lease ends.
#[derive(Debug, Clone)]
pub struct SyncClaim {
    state_id: Uuid,
    lease_owner: String,
    /// The connection.
    pub connection_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// The catalog definition it connects.
    pub integration_id: Uuid,
    /// The provider.
    pub provider: ProviderKind,
    /// The object type being synced.
    pub object_type: String,
    /// Where the last run stopped (`None`: from the beginning).
    pub cursor: Option<Cursor>,
    /// The sync run this claim continues (a resumed run keeps its id).
    pub run_id: Uuid,
    /// API calls the run's earlier slices made.
    api_calls: u64,
    mapping: ObjectMapping,
    last_modified: Option<DateTime<FixedOffset>>,
}

/// How long a sync's claim lasts unless renewed. A running sync renews it every third of that
/// (a heartbeat beside its page loop, and at every checkpoint), so a sync whose process died is
/// claimable again within a minute.
pub const DEFAULT_SYNC_LEASE: chrono::Duration = chrono::Duration::seconds(30);

/// A counter's value for a claim: kept when the claim takes over a run still marked `syncing`
/// (its worker died after checkpointing), zero for a fresh run.
fn resumed_or_zero(column: &str) -> sea_orm::sea_query::SimpleExpr {
    Expr::cust(format!(
        "CASE WHEN sync_status = 'syncing' THEN {column} ELSE 0 END"
    ))
}

/// What came of reading the next page while this one was written.
enum Next<T> {
    /// There is no next page.
    End,
    /// The slice is used up: the next page is the next slice's.
    SliceOver,
    /// The read's outcome.
    Page(T),
    /// A stop was requested before the read ended; the read was dropped.
    Stopped,
}

impl<'a> PlanInput<'a> {
    /// What a claim's pages are planned with.
    fn of(
        claim: &'a SyncClaim,
        attribute_ids: &'a HashMap<String, Uuid>,
        now: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            integration_id: claim.integration_id,
            fields: &claim.mapping.fields,
            attribute_ids,
            now,
        }
    }
}

/// A page planned and written, all but its checkpoint (see `SyncEngine::stage_page`).
struct Staged {
    /// The page's open transaction; `None` when the page writes nothing but its checkpoint.
    transaction: Option<sea_orm::DatabaseTransaction>,
    counts: SyncReport,
    changes: EntityChanges,
    newest: Option<DateTime<FixedOffset>>,
    cursor: Cursor,
    now: DateTime<FixedOffset>,
}

/// The run's totals and newest provider time as of a committed page.
type Progress = (SyncReport, Option<DateTime<FixedOffset>>);

/// What a page committed: the run's totals and newest provider time as of it, and its cursor.
type Committed = (SyncReport, Option<DateTime<FixedOffset>>, Cursor);

/// How a page in the window of `SyncEngine::pages` hears from the page before it. A sender
/// dropped unsent means that page failed (or ended without a transaction, for `staged`).
struct Chain {
    /// Fired once that page holds every connection it will use.
    staged: tokio::sync::oneshot::Receiver<()>,
    /// Fired once that page committed, with the run's progress as of it.
    committed: tokio::sync::oneshot::Receiver<Progress>,
}

/// The sending end of a [`Chain`], held by the page before.
struct ChainEnd {
    staged: tokio::sync::oneshot::Sender<()>,
    committed: tokio::sync::oneshot::Sender<Progress>,
}

impl Chain {
    fn new() -> (ChainEnd, Self) {
        let (staged_tx, staged) = tokio::sync::oneshot::channel();
        let (committed_tx, committed) = tokio::sync::oneshot::channel();
        (
            ChainEnd {
                staged: staged_tx,
                committed: committed_tx,
            },
            Self { staged, committed },
        )
    }

    /// The chain before a run's first page: as if a page had committed `progress`.
    fn start(progress: Progress) -> Self {
        let (end, chain) = Self::new();
        let _ = end.staged.send(());
        let _ = end.committed.send(progress);
        chain
    }
}

/// Runs syncs against one database.
#[derive(Debug, Clone)]
pub struct SyncEngine {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    worker_id: String,
    lease: chrono::Duration,
    progress: Option<ProgressFeed>,
    observer: Option<Arc<dyn EngineObserver>>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    request_budget: u64,
    analyze: AnalyzeSchedule,
    slice: Option<SyncSlice>,
    pages_in_flight: usize,
}

/// How much one sync job does before it yields (`SYNC_SLICE_PAGES`, `SYNC_SLICE_SECONDS`): after
/// `pages` pages or `time`, whichever comes first, the run checkpoints (as after every page),
/// releases its lease and ends the slice; its job goes back to the queue behind the work of other
/// workspaces, and the next slice resumes the same run from its checkpoint. A tenant's backfill
/// then holds a worker for one slice at a time, not for the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncSlice {
    /// Pages per slice (at least 1).
    pub pages: u32,
    /// Time per slice: a slice that reaches it ends after the page in hand.
    pub time: chrono::Duration,
}

/// Pages one slice writes unless configured otherwise (`SYNC_SLICE_PAGES`).
pub const DEFAULT_SYNC_SLICE_PAGES: u32 = 20;

/// Seconds one slice runs unless configured otherwise (`SYNC_SLICE_SECONDS`).
pub const DEFAULT_SYNC_SLICE_SECONDS: u32 = 10;

impl Default for SyncSlice {
    fn default() -> Self {
        Self {
            pages: DEFAULT_SYNC_SLICE_PAGES,
            time: chrono::Duration::seconds(i64::from(DEFAULT_SYNC_SLICE_SECONDS)),
        }
    }
}

impl SyncSlice {
    /// True when a slice that has written `pages` pages since `elapsed` is over.
    fn is_over(&self, pages: u32, elapsed: chrono::Duration) -> bool {
        pages >= Ord::max(self.pages, 1) || elapsed >= self.time
    }
}

/// How a run's slice ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceOutcome {
    /// The run read its last page and ended.
    Finished(SyncReport),
    /// The slice was used up with pages left: the run's checkpoint and lease are released, and
    /// the next claim continues it.
    Yielded(SyncReport),
}

/// Entities a sync creates between two `ANALYZE`s of the tables it grows, unless configured
/// otherwise (`SYNC_ANALYZE_EVERY_ROWS`; PostgreSQL only).
pub const DEFAULT_ANALYZE_EVERY_ROWS: u64 = 50_000;

/// Entities created before a schedule's first `ANALYZE` (when `every` is larger).
const FIRST_ANALYZE_AFTER_ROWS: u64 = 1_000;

/// When the tables a sync grows are analyzed (PostgreSQL): after 1,000 entities created, then at
/// each doubling up to `every` (2,000, 4,000, …), then after every `every`, counted across the runs
/// that share the schedule (a worker's syncs share one), so a large first load, or many small ones,
/// leave no query planned on an empty table's statistics until autovacuum comes. The early
/// doublings matter most: a plan cached while the table was empty costs every index alike, and an
/// `ANALYZE` invalidates it (tenants at once on a fresh database kept a per-key lookup that scanned
/// the workspace until one). `ANALYZE (SKIP_LOCKED)` through `analyze_synced_tables()`; a failure
/// is logged and never fails a sync.
#[derive(Debug, Clone)]
pub struct AnalyzeSchedule {
    every: u64,
    state: Arc<std::sync::Mutex<AnalyzeState>>,
}

#[derive(Debug)]
struct AnalyzeState {
    /// Entities counted so far.
    total: u64,
    /// The count at which the tables are next due.
    next_at: u64,
    /// An `ANALYZE` is running (in its own task).
    running: bool,
    /// The tables came due again while it ran: it runs once more.
    again: bool,
}

impl AnalyzeSchedule {
    /// Analyzes after 1,000 created entities, at each doubling up to `rows`, then after every
    /// `rows`; 0 never does.
    pub fn every(rows: u64) -> Self {
        Self {
            every: rows,
            state: Arc::new(std::sync::Mutex::new(AnalyzeState {
                total: 0,
                next_at: Ord::min(FIRST_ANALYZE_AFTER_ROWS, rows),
                running: false,
                again: false,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AnalyzeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `created` entities; true when the caller must start an `ANALYZE`: the tables are
    /// due and none runs (one running when they come due runs once more). The next time is set
    /// either way.
    fn grew(&self, created: u32) -> bool {
        if self.every == 0 || created == 0 {
            return false;
        }
        let mut state = self.state();
        state.total += u64::from(created);
        if state.total < state.next_at {
            return false;
        }
        while state.next_at <= state.total {
            state.next_at = if state.next_at < self.every {
                Ord::min(state.next_at * 2, self.every)
            } else {
                state.next_at + self.every
            };
        }
        if state.running {
            state.again = true;
            return false;
        }
        state.running = true;
        true
    }

    /// After an `ANALYZE`: true when it must run again (the tables came due meanwhile).
    fn finished(&self) -> bool {
        let mut state = self.state();
        if state.again {
            state.again = false;
            return true;
        }
        state.running = false;
        false
    }
}

/// API calls one sync run may make unless configured otherwise (`SYNC_REQUEST_BUDGET`): far more
/// than an incremental run needs (100 pages of HubSpot contacts is 100 calls; a Gmail backfill of
/// 10,000 messages is about 10,100), so only a reader that runs away meets it. A run that does
/// ends in an error with its checkpoint kept, and its job is retried with backoff.
pub const DEFAULT_SYNC_REQUEST_BUDGET: u64 = 100_000;

/// Full re-reads (a provider expiring the saved position) one run may begin: the second ends the
/// run in an error instead of reading everything again.
const MAX_RESTARTS_PER_RUN: u32 = 1;

impl SyncEngine {
    /// An engine on `db`; `worker_id` names this process in leases.
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        worker_id: impl Into<String>,
    ) -> Self {
        Self {
            db,
            clock,
            worker_id: worker_id.into(),
            lease: DEFAULT_SYNC_LEASE,
            progress: None,
            observer: None,
            stop: None,
            request_budget: DEFAULT_SYNC_REQUEST_BUDGET,
            analyze: AnalyzeSchedule::every(DEFAULT_ANALYZE_EVERY_ROWS),
            slice: None,
            pages_in_flight: DEFAULT_PAGES_IN_FLIGHT,
        }
    }

    /// Bounds each [`run_slice`](Self::run_slice) by `slice` (without it a slice is the whole run).
    pub fn with_slice(mut self, slice: SyncSlice) -> Self {
        self.slice = Some(slice);
        self
    }

    /// Writes up to `pages` pages of a run at once on PostgreSQL (at least 1; see
    /// [`DEFAULT_PAGES_IN_FLIGHT`]). SQLite always writes one.
    pub fn with_pages_in_flight(mut self, pages: usize) -> Self {
        self.pages_in_flight = pages.max(1);
        self
    }

    /// Analyzes the tables syncs grow on `schedule` (see [`AnalyzeSchedule`]).
    pub fn with_analyze(mut self, schedule: AnalyzeSchedule) -> Self {
        self.analyze = schedule;
        self
    }

    /// Starts `analyze_synced_tables()` in its own task when `created` makes the tables due, so
    /// the sync's next page does not wait for it (a few hundred milliseconds on large tables:
    /// 12% of a 20,000-record first load when it ran in line). One runs at a time per schedule.
    fn analyze_if_grown(&self, created: u32) {
        if !self.is_postgres() || !self.analyze.grew(created) {
            return;
        }
        let (db, schedule) = (self.db.clone(), self.analyze.clone());
        tokio::spawn(async move {
            loop {
                let started = std::time::Instant::now();
                match db
                    .execute_unprepared("SELECT analyze_synced_tables()")
                    .await
                {
                    Ok(_) => tracing::info!(
                        every = schedule.every,
                        millis = started.elapsed().as_millis(),
                        "analyzed the tables syncs grow"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, "could not analyze the tables syncs grow");
                    }
                }
                if !schedule.finished() {
                    break;
                }
            }
        });
    }

    /// Lets each run make at most `calls` API calls (see [`DEFAULT_SYNC_REQUEST_BUDGET`]).
    pub fn with_request_budget(mut self, calls: u64) -> Self {
        self.request_budget = calls;
        self
    }

    /// Stops runs at the next page boundary once `stop` reads true (the process is shutting
    /// down): the page in hand is committed, the lease released, and `run` returns
    /// [`EngineError::Stopped`].
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| *stop.borrow())
    }

    /// Resolves once a stop is requested; never without a stop signal.
    async fn stop_requested(&self) {
        match self.stop.clone() {
            Some(mut stop) => {
                if stop.wait_for(|stopping| *stopping).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Gives up the claim without ending the run: its status and checkpoint stay, and the lease
    /// reads expired, so the next claim resumes it at once.
    async fn release(&self, claim: &SyncClaim) -> Result<(), EngineError> {
        sync_states::Entity::update_many()
            .col_expr(
                sync_states::Column::LeaseExpiresAt,
                Expr::value(self.now() - chrono::Duration::seconds(1)),
            )
            .filter(sync_states::Column::Id.eq(claim.state_id))
            .filter(sync_states::Column::LeaseOwner.eq(claim.lease_owner.clone()))
            .exec(&self.db)
            .await
            .context("releasing the sync lease")?;
        Ok(())
    }

    /// Reports every committed page to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn EngineObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Where progress goes on a database without `pg_notify` (SQLite: one process); on
    /// PostgreSQL progress is always notified on [`PROGRESS_CHANNEL`].
    pub fn with_progress(mut self, feed: ProgressFeed) -> Self {
        self.progress = Some(feed);
        self
    }

    fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Notifies `event` through `db` on PostgreSQL (inside a transaction: delivered when it
    /// commits).
    async fn notify<C: ConnectionTrait>(
        &self,
        db: &C,
        event: &SyncProgress,
    ) -> Result<(), EngineError> {
        if self.is_postgres() {
            let payload = progress_payload(event)?;
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [PROGRESS_CHANNEL.into(), payload.into()],
            ))
            .await
            .context("notifying sync progress")?;
        }
        Ok(())
    }

    /// Publishes `event` in-process where there is no `pg_notify`.
    fn publish_local(&self, event: SyncProgress) {
        if !self.is_postgres()
            && let Some(feed) = &self.progress
        {
            feed.publish(event);
        }
    }

    /// Announces a run's last event.
    async fn announce_end(&self, claim: &SyncClaim, report: &SyncReport, error: Option<String>) {
        let status = if error.is_some() {
            SyncStatus::Error
        } else {
            SyncStatus::Idle
        };
        let event = progress_event(claim, report, status, error);
        if let Err(failure) = self.notify(&self.db, &event).await {
            tracing::warn!(error = %failure, "could not announce the end of a sync");
        }
        self.publish_local(event);
    }

    /// How long a claim lasts without a page being written; a sync silent for longer is taken over.
    pub fn with_lease(mut self, lease: chrono::Duration) -> Self {
        self.lease = lease;
        self
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// Renews the claim's lease every third of its length until dropped (or until the lease is
    /// found lost, which the next checkpoint then reports), so a slow page never lets a live
    /// sync's claim expire.
    fn heartbeat(&self, claim: &SyncClaim) -> Heartbeat {
        let (db, clock, lease) = (self.db.clone(), self.clock.clone(), self.lease);
        let (state_id, owner) = (claim.state_id, claim.lease_owner.clone());
        Heartbeat::spawn(lease, "sync lease", move || {
            let (db, clock, owner) = (db.clone(), clock.clone(), owner.clone());
            async move {
                let renewed = sync_states::Entity::update_many()
                    .col_expr(
                        sync_states::Column::LeaseExpiresAt,
                        Expr::value(clock.now().fixed_offset() + lease),
                    )
                    .filter(sync_states::Column::Id.eq(state_id))
                    .filter(sync_states::Column::LeaseOwner.eq(owner))
                    .exec(&db)
                    .await
                    .context("renewing the sync lease")?;
                Ok(renewed.rows_affected == 1)
            }
        })
    }

    /// When the current claim of `object_type` on `connection_id` ends (its lease's expiry),
    /// if one is held. A disabled sync (its connection was disconnected) is a conflict: waiting
    /// would never end.
    pub async fn lease_expiry(
        &self,
        connection_id: Uuid,
        object_type: &str,
    ) -> Result<Option<DateTime<FixedOffset>>, EngineError> {
        let state = sync_states::Entity::find()
            .filter(sync_states::Column::ConnectionId.eq(connection_id))
            .filter(sync_states::Column::ObjectType.eq(object_type))
            .one(&self.db)
            .await
            .context("reading the sync lease")?;
        match state {
            Some(state) if state.sync_status == SyncStatus::Disabled.as_str() => {
                Err(EngineError::Conflict(format!(
                    "the sync of `{object_type}` on connection {connection_id} is disabled"
                )))
            }
            Some(state) if state.sync_status == SyncStatus::Syncing.as_str() => {
                Ok(state.lease_expires_at)
            }
            _ => Ok(None),
        }
    }

    /// Claims the sync of `object_type` on `connection_id`. `Ok(None)` when another worker holds
    /// an unexpired claim (a second concurrent claim is refused, not queued).
    pub async fn claim(
        &self,
        connection_id: Uuid,
        object_type: &str,
    ) -> Result<Option<SyncClaim>, EngineError> {
        let connection = connections::Entity::find_by_id(connection_id)
            .one(&self.db)
            .await
            .context("reading the connection to sync")?
            .ok_or_else(|| EngineError::NotFound(format!("connection {connection_id}")))?;
        let definition = definitions::Entity::find_by_id(connection.integration_id)
            .one(&self.db)
            .await
            .context("reading the connection's integration")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("integration {}", connection.integration_id))
            })?;
        let provider = ProviderKind::from_slug(&definition.slug).ok_or_else(|| {
            EngineError::InvalidInput(format!("no adapter for integration `{}`", definition.slug))
        })?;
        if connection.status != Lifecycle::Active.as_str()
            || !connection.is_active
            || connection.sync_status == SyncStatus::Disabled.as_str()
        {
            return Err(EngineError::Conflict(format!(
                "connection {connection_id} is not active (status {}, sync {})",
                connection.status, connection.sync_status
            )));
        }
        let mapping = object_mapping(provider, object_type, connection.property_mappings.as_ref())?;

        let now = self.now();
        let lease_owner = format!("{}:{}", self.worker_id, Uuid::new_v4());
        let new_state = sync_states::ActiveModel {
            id: sea_orm::Set(Uuid::new_v4()),
            connection_id: sea_orm::Set(connection_id),
            object_type: sea_orm::Set(object_type.to_owned()),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
            ..Default::default()
        };
        sync_states::Entity::insert(new_state)
            .on_conflict_do_nothing_on([
                sync_states::Column::ConnectionId,
                sync_states::Column::ObjectType,
            ])
            .exec_without_returning(&self.db)
            .await
            .context("creating the sync state")?;
        let claimable = Condition::any()
            .add(sync_states::Column::SyncStatus.is_in([SyncStatus::Idle, SyncStatus::Error]))
            .add(
                Condition::all()
                    .add(sync_states::Column::SyncStatus.eq(SyncStatus::Syncing))
                    .add(
                        Condition::any()
                            .add(sync_states::Column::LeaseExpiresAt.is_null())
                            .add(sync_states::Column::LeaseExpiresAt.lt(now)),
                    ),
            );
        let claimed = sync_states::Entity::update_many()
            .col_expr(
                sync_states::Column::SyncStatus,
                Expr::value(SyncStatus::Syncing),
            )
            .col_expr(
                sync_states::Column::LeaseOwner,
                Expr::value(lease_owner.clone()),
            )
            .col_expr(
                sync_states::Column::LeaseExpiresAt,
                Expr::value(now + self.lease),
            )
            // A fresh run starts its counters at zero; a takeover of a run whose worker died
            // (still `syncing`, lease expired) resumes from its checkpoint and keeps counting.
            .col_expr(
                sync_states::Column::LastSyncStartedAt,
                sea_orm::sea_query::CaseStatement::new()
                    .case(
                        Expr::col(sync_states::Column::SyncStatus)
                            .eq(SyncStatus::Syncing)
                            .and(Expr::col(sync_states::Column::LastSyncStartedAt).is_not_null()),
                        Expr::col(sync_states::Column::LastSyncStartedAt),
                    )
                    .finally(Expr::value(now))
                    .into(),
            )
            .col_expr(
                sync_states::Column::LastSyncCreated,
                resumed_or_zero("last_sync_created"),
            )
            .col_expr(
                sync_states::Column::LastSyncUpdated,
                resumed_or_zero("last_sync_updated"),
            )
            .col_expr(
                sync_states::Column::LastSyncDeleted,
                resumed_or_zero("last_sync_deleted"),
            )
            .col_expr(
                sync_states::Column::LastSyncConflicts,
                resumed_or_zero("last_sync_conflicts"),
            )
            // A fresh run gets a new run id below; a takeover keeps its run's.
            .col_expr(
                sync_states::Column::SyncRunId,
                Expr::cust("CASE WHEN sync_status = 'syncing' THEN sync_run_id ELSE NULL END"),
            )
            .col_expr(sync_states::Column::UpdatedAt, Expr::value(now))
            .filter(sync_states::Column::ConnectionId.eq(connection_id))
            .filter(sync_states::Column::ObjectType.eq(object_type))
            .filter(claimable)
            .exec(&self.db)
            .await
            .context("claiming the sync state")?;
        if claimed.rows_affected == 0 {
            return Ok(None);
        }
        let state = sync_states::Entity::find()
            .filter(sync_states::Column::ConnectionId.eq(connection_id))
            .filter(sync_states::Column::ObjectType.eq(object_type))
            .one(&self.db)
            .await
            .context("reading the claimed sync state")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("sync state of {connection_id}/{object_type}"))
            })?;
        connections::Entity::update_many()
            .col_expr(
                connections::Column::SyncStatus,
                Expr::value(SyncStatus::Syncing),
            )
            .filter(connections::Column::Id.eq(connection_id))
            .exec(&self.db)
            .await
            .context("marking the connection's sync running")?;
        let (run_id, api_calls) = match state.sync_run_id {
            Some(run_id) => {
                let spent = sync_runs::Entity::find_by_id(run_id)
                    .one(&self.db)
                    .await
                    .context("reading the resumed run")?
                    .map_or(0, |run| u64::try_from(run.api_calls).unwrap_or(0));
                (run_id, spent)
            }
            None => {
                let run_id = Uuid::now_v7();
                sync_runs::Entity::insert(sync_runs::ActiveModel {
                    id: sea_orm::Set(run_id),
                    workspace_id: sea_orm::Set(connection.workspace_id),
                    connection_id: sea_orm::Set(connection_id),
                    object_type: sea_orm::Set(object_type.to_owned()),
                    status: sea_orm::Set(RunStatus::Running.as_str().to_owned()),
                    cursor_from: sea_orm::Set(state.sync_cursor.clone()),
                    started_at: sea_orm::Set(now),
                    finished_at: sea_orm::Set(None),
                    created: sea_orm::Set(0),
                    updated: sea_orm::Set(0),
                    deleted: sea_orm::Set(0),
                    conflicts: sea_orm::Set(0),
                    error_message: sea_orm::Set(None),
                    api_calls: sea_orm::Set(0),
                })
                .exec_without_returning(&self.db)
                .await
                .context("starting the sync run")?;
                sync_states::Entity::update_many()
                    .col_expr(sync_states::Column::SyncRunId, Expr::value(run_id))
                    .filter(sync_states::Column::Id.eq(state.id))
                    .filter(sync_states::Column::LeaseOwner.eq(lease_owner.clone()))
                    .exec(&self.db)
                    .await
                    .context("naming the sync run")?;
                (run_id, 0)
            }
        };
        Ok(Some(SyncClaim {
            run_id,
            api_calls,
            state_id: state.id,
            lease_owner,
            connection_id,
            workspace_id: connection.workspace_id,
            integration_id: connection.integration_id,
            provider,
            object_type: object_type.to_owned(),
            cursor: state
                .sync_cursor
                .filter(|text| !text.is_empty())
                .map(Cursor::from_stored),
            mapping,
            last_modified: state.last_modified_sync,
        }))
    }

    /// Reads every page from `client` and writes it, checkpointing after each page. On failure the
    /// state records the error (and the next run resumes from the last checkpoint). A configured
    /// [`SyncSlice`] does not apply: this runs to the end.
    pub async fn run(
        &self,
        claim: SyncClaim,
        client: &ProviderClient,
        options: &ReadOptions,
    ) -> Result<SyncReport, EngineError> {
        match self.run_within(claim, client, options, None).await? {
            SliceOutcome::Finished(report) | SliceOutcome::Yielded(report) => Ok(report),
        }
    }

    /// Runs one slice of the claimed sync: to the end of the run, or until the engine's
    /// [`SyncSlice`] is used up, when the lease is released with the run still `syncing` and
    /// [`SliceOutcome::Yielded`] says the next claim continues it. The run's request budget
    /// spans its slices (`sync_runs.api_calls`).
    pub async fn run_slice(
        &self,
        claim: SyncClaim,
        client: &ProviderClient,
        options: &ReadOptions,
    ) -> Result<SliceOutcome, EngineError> {
        self.run_within(claim, client, options, self.slice).await
    }

    async fn run_within(
        &self,
        mut claim: SyncClaim,
        client: &ProviderClient,
        options: &ReadOptions,
        slice: Option<SyncSlice>,
    ) -> Result<SliceOutcome, EngineError> {
        let heartbeat = self.heartbeat(&claim);
        let budget = RequestBudget::new(self.request_budget.saturating_sub(claim.api_calls));
        let client = client.clone().with_request_budget(budget.clone());
        let outcome = self.pages(&mut claim, &client, options, slice).await;
        drop(heartbeat);
        // What this slice spent counts against the run, whatever came of it.
        self.count_api_calls(&claim, budget.used()).await;
        match outcome {
            Ok((report, true)) => {
                self.finish(&claim, &report).await?;
                self.announce_end(&claim, &report, None).await;
                Ok(SliceOutcome::Finished(report))
            }
            Ok((report, false)) => {
                self.release(&claim).await?;
                Ok(SliceOutcome::Yielded(report))
            }
            Err((EngineError::LeaseLost, _)) => Err(EngineError::LeaseLost),
            Err((EngineError::Stopped, _)) => {
                self.release(&claim).await?;
                Err(EngineError::Stopped)
            }
            Err((error, report)) => {
                self.fail(&claim, &error.to_string()).await?;
                self.announce_end(&claim, &report, Some(error.to_string()))
                    .await;
                Err(error)
            }
        }
    }

    /// Adds `calls` to the run's `api_calls`; a failure is logged (it only loosens the budget).
    async fn count_api_calls(&self, claim: &SyncClaim, calls: u64) {
        if calls == 0 {
            return;
        }
        let counted = sync_runs::Entity::update_many()
            .col_expr(
                sync_runs::Column::ApiCalls,
                Expr::col(sync_runs::Column::ApiCalls)
                    .add(i64::try_from(calls).unwrap_or(i64::MAX)),
            )
            .filter(sync_runs::Column::Id.eq(claim.run_id))
            .exec(&self.db)
            .await;
        if let Err(error) = counted {
            tracing::warn!(run = %claim.run_id, %error, "could not count the run's API calls");
        }
    }

    async fn pages(
        &self,
        claim: &mut SyncClaim,
        client: &ProviderClient,
        options: &ReadOptions,
        slice: Option<SyncSlice>,
    ) -> Result<(SyncReport, bool), (EngineError, SyncReport)> {
        let started = self.now();
        let attribute_ids = self
            .ensure_attributes(claim)
            .await
            .map_err(|error| (error, SyncReport::default()))?;
        let object_type = claim.object_type.clone();
        // The stages overlap, each in page order:
        // - the reader reads pages one request at a time, a few pages ahead of the writer;
        // - on PostgreSQL, up to `pages_in_flight` pages are written at once, each in its own
        //   transaction (`chained_page`): a page is looked up ahead of its transaction when it
        //   shares no record with any page in flight (their writes cannot change what the lookup
        //   reads), and otherwise inside its transaction once the page before committed;
        // - a page commits only after the one before it committed, so the checkpoint order (and
        //   crash recovery) is unchanged. The pages after a failed one roll back.
        // A stop (shutdown) abandons the read of a next page, never the write of one in flight.
        let (pages_tx, mut pages_rx) = tokio::sync::mpsc::channel(READ_AHEAD);
        let (first_cursor, claim_provider) = (claim.cursor.clone(), claim.provider);
        let reader = async {
            let mut cursor = first_cursor;
            let (mut read, mut restarts) = (0, 0);
            loop {
                let next = client.read_page(&object_type, cursor.as_ref(), options);
                // A run always writes its first page; a stop abandons the reads after it.
                let page = if read == 0 {
                    next.await.map_err(Some)
                } else {
                    tokio::select! {
                        page = next => page.map_err(Some),
                        () = self.stop_requested() => Err(None),
                    }
                };
                read += 1;
                let page = page.map_err(|error| error.map(EngineError::from)).and_then(|page| {
                    if page.restarted {
                        restarts += 1;
                        if restarts > MAX_RESTARTS_PER_RUN {
                            return Err(Some(EngineError::RunawayRead(format!(
                                "{} expired the sync position again right after a full re-read of `{object_type}`",
                                claim_provider
                            ))));
                        }
                    }
                    Ok(page)
                });
                let last = match page {
                    Err(None) => Next::Stopped,
                    Err(Some(error)) => {
                        let _ = pages_tx.send(Next::Page(Err(error))).await;
                        break;
                    }
                    Ok(page) => {
                        let has_more = page.has_more;
                        cursor = Some(page.cursor.clone());
                        if pages_tx.send(Next::Page(Ok(page))).await.is_err() {
                            break;
                        }
                        // The slice ends with this page once it has its pages or its time: the
                        // next page is then left for the next slice, not read and dropped.
                        if !has_more {
                            Next::End
                        } else if slice.is_some_and(|slice| {
                            slice.is_over(read, self.now().signed_duration_since(started))
                        }) {
                            Next::SliceOver
                        } else {
                            continue;
                        }
                    }
                };
                let _ = pages_tx.send(last).await;
                break;
            }
            // The sender stays open: the writer ends the run, on the marker just sent.
            std::future::pending::<std::convert::Infallible>().await
        };
        let depth = if self.is_postgres() {
            self.pages_in_flight
        } else {
            1
        };
        let writer = async {
            let claim: &SyncClaim = claim;
            let mut report = SyncReport::default();
            // The newest provider time and the cursor as of the last committed page.
            let mut last = None;
            let mut window = futures_util::stream::FuturesOrdered::new();
            let mut chain = Chain::start((SyncReport::default(), claim.last_modified));
            // The record ids of each page in flight, in page order.
            let mut in_flight: std::collections::VecDeque<HashSet<String>> =
                std::collections::VecDeque::new();
            // How the reads ended (`Ok(true)`: no next page, `Ok(false)`: the slice is over).
            let mut ended: Option<Result<bool, EngineError>> = None;
            // The first page that failed: the pages after it roll back.
            let mut failed: Option<EngineError> = None;
            loop {
                let open = ended.is_none() && failed.is_none() && window.len() < depth;
                if !open && window.is_empty() {
                    break;
                }
                tokio::select! {
                    biased;
                    Some(done) = window.next(), if !window.is_empty() => {
                        in_flight.pop_front();
                        match done {
                        Ok((totals, newest, cursor)) if failed.is_none() => {
                            report = totals;
                            last = Some((newest, cursor));
                            if ended.is_none() && self.stopping() {
                                ended = Some(Err(EngineError::Stopped));
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            failed.get_or_insert(error);
                        }
                        }
                    }
                    received = pages_rx.recv(), if open => match received {
                        Some(Next::Page(Ok(page))) => {
                            let keys: HashSet<String> = page
                                .records
                                .iter()
                                .map(|record| record.external_id.clone())
                                .collect();
                            // Read ahead of its transaction unless a page in flight writes one of
                            // its records (ARCHITECTURE.md, "Sync pipelining": not only a stale
                            // read, a lock cycle).
                            let ahead = self.is_postgres()
                                && in_flight.iter().all(|before| before.is_disjoint(&keys));
                            let (end, next_chain) = Chain::new();
                            let before = std::mem::replace(&mut chain, next_chain);
                            window.push_back(self.chained_page(
                                claim,
                                &attribute_ids,
                                page,
                                ahead,
                                before,
                                end,
                            ));
                            in_flight.push_back(keys);
                        }
                        Some(Next::Page(Err(error))) => ended = Some(Err(error)),
                        Some(Next::End) => ended = Some(Ok(true)),
                        Some(Next::SliceOver) => ended = Some(Ok(false)),
                        Some(Next::Stopped) | None => ended = Some(Err(EngineError::Stopped)),
                    },
                    else => break,
                }
            }
            let outcome = match (failed, ended) {
                (Some(error), _) | (None, Some(Err(error))) => Err((error, report.clone())),
                (None, Some(Ok(finished))) => Ok((report.clone(), finished)),
                (None, None) => Err((EngineError::Stopped, report.clone())),
            };
            (outcome, last)
        };
        let (outcome, last) = tokio::select! {
            ended = writer => ended,
            never = reader => match never {},
        };
        if let Some((newest, cursor)) = last {
            claim.last_modified = newest;
            claim.cursor = Some(cursor);
        }
        outcome
    }

    /// Makes sure every attribute the mapping writes is defined for the workspace and entity type,
    /// and returns key → id.
    async fn ensure_attributes(
        &self,
        claim: &SyncClaim,
    ) -> Result<HashMap<String, Uuid>, EngineError> {
        let keys: BTreeSet<&String> = claim.mapping.fields.values().collect();
        let now = self.now();
        let models = keys.iter().map(|key| attribute_definitions::ActiveModel {
            id: sea_orm::Set(Uuid::new_v4()),
            workspace_id: sea_orm::Set(claim.workspace_id),
            entity_type: sea_orm::Set(claim.mapping.entity_type.to_owned()),
            key: sea_orm::Set((*key).clone()),
            label: sea_orm::Set(label(key)),
            data_type: sea_orm::Set("TEXT".to_owned()),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
        });
        attribute_definitions::Entity::insert_many(models)
            .on_conflict_do_nothing_on([
                attribute_definitions::Column::WorkspaceId,
                attribute_definitions::Column::EntityType,
                attribute_definitions::Column::Key,
            ])
            .exec_without_returning(&self.db)
            .await
            .context("defining the mapped attributes")?;
        let rows = attribute_definitions::Entity::find()
            .filter(attribute_definitions::Column::WorkspaceId.eq(claim.workspace_id))
            .filter(attribute_definitions::Column::EntityType.eq(claim.mapping.entity_type))
            .filter(attribute_definitions::Column::Key.is_in(keys.iter().map(|key| key.as_str())))
            .all(&self.db)
            .await
            .context("reading the attribute ids")?;
        Ok(rows.into_iter().map(|row| (row.key, row.id)).collect())
    }

    /// What the database holds for a page's records: their entities, values and provenance.
    async fn read_existing<C: ConnectionTrait>(
        &self,
        db: &C,
        claim: &SyncClaim,
        keys: &[(&str, Option<plan::Fingerprint>)],
    ) -> Result<Existing, EngineError> {
        if self.is_postgres() {
            return lookup_pg(db, claim.workspace_id, claim.integration_id, keys).await;
        }
        let external_ids: Vec<&str> = keys.iter().map(|(id, _)| *id).collect();
        let mut existing = Existing::default();
        let rows = {
            let mut rows = Vec::with_capacity(external_ids.len());
            for chunk in external_ids.chunks(ROWS_PER_STATEMENT) {
                rows.extend(
                    entities::Entity::find()
                        .filter(entities::Column::WorkspaceId.eq(claim.workspace_id))
                        .filter(entities::Column::SourceIntegrationId.eq(claim.integration_id))
                        .filter(entities::Column::SourceExternalId.is_in(chunk.iter().copied()))
                        .all(db)
                        .await
                        .context("reading the page's entities")?,
                );
            }
            rows
        };
        for row in rows {
            if let Some(external_id) = row.source_external_id {
                existing.entities.insert(
                    external_id,
                    ExistingEntity {
                        id: row.id,
                        archived: row.archived_at.is_some(),
                        display_name: row.display_name,
                        source_url: row.source_url,
                        sync_version: row.sync_version,
                        fingerprint: row.sync_fingerprint,
                    },
                );
            }
        }
        // As on PostgreSQL, an entity that seals its record's fingerprint is read no further.
        let entity_ids: Vec<Uuid> = keys
            .iter()
            .filter_map(|(id, print)| {
                let entity = existing.entities.get(*id)?;
                let sealed = print.as_ref().is_some_and(|print| entity.seals(print));
                (!sealed).then_some(entity.id)
            })
            .collect();
        for chunk in entity_ids.chunks(ROWS_PER_STATEMENT) {
            let values = attribute_values::Entity::find()
                .filter(attribute_values::Column::EntityId.is_in(chunk.iter().copied()))
                .all(db)
                .await
                .context("reading the page's attribute values")?;
            for row in values {
                existing
                    .values
                    .insert((row.entity_id, row.attribute_id), row.value);
            }
            let origins = provenance::Entity::find()
                .filter(provenance::Column::EntityId.is_in(chunk.iter().copied()))
                .all(db)
                .await
                .context("reading the page's provenance")?;
            for row in origins {
                existing.origins.insert(
                    (row.entity_id, row.attribute_id),
                    Origin {
                        source_integration_id: row.source_integration_id,
                        source_external_field: row.source_external_field,
                        last_updated_at: row.last_updated_at,
                        override_by_user: row.override_by_user,
                        observed_value: row.observed_value,
                        observed_external_field: row.observed_external_field,
                        observed_updated_at: row.observed_updated_at,
                    },
                );
            }
        }
        Ok(existing)
    }

    /// Opens a page's write transaction. On PostgreSQL a page's commit need not wait for its WAL
    /// flush: if PostgreSQL itself crashes within the next few hundred milliseconds, the page and
    /// its checkpoint are lost together (never one without the other) and the sync reads that page
    /// again from the provider. The generic plan: see `lookup_pg`.
    async fn begin_page(&self) -> Result<sea_orm::DatabaseTransaction, EngineError> {
        let transaction = crate::begin_write(&self.db).await?;
        if self.is_postgres() {
            transaction
                .execute_unprepared(
                    "SET LOCAL synchronous_commit = off; SET LOCAL plan_cache_mode = force_generic_plan",
                )
                .await
                .context("setting up the page's transaction")?;
        }
        Ok(transaction)
    }

    /// On PostgreSQL, what the database holds for a page's records, read in a transaction of its
    /// own while the page before commits (`pages` only calls it when the two pages share no
    /// record).
    async fn look_up_ahead(
        &self,
        workspace_id: Uuid,
        integration_id: Uuid,
        keys: &[(&str, Option<plan::Fingerprint>)],
    ) -> Result<Existing, EngineError> {
        use sea_orm::TransactionTrait as _;
        let transaction = self.db.begin().await?;
        transaction
            .execute_unprepared(
                "SET LOCAL transaction_read_only = on; SET LOCAL plan_cache_mode = force_generic_plan",
            )
            .await
            .context("setting up the page's lookup")?;
        let existing = lookup_pg(&transaction, workspace_id, integration_id, keys).await?;
        transaction.commit().await?;
        Ok(existing)
    }

    /// Plans one page and writes it, all but its checkpoint: the transaction is left open for
    /// [`Self::commit_page`]. `looked_up` is what the database held for its records when it was
    /// read ahead (see `pages`); without it the page's transaction reads it first. A page that
    /// writes nothing but its checkpoint opens no transaction: the checkpoint is one statement.
    /// `holding` is fired (taken) as soon as the page holds its transaction, before its writes.
    async fn stage_page(
        &self,
        claim: &SyncClaim,
        attribute_ids: &HashMap<String, Uuid>,
        (records, cursor): (PageRecords, Cursor),
        looked_up: Option<Existing>,
        holding: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<Staged, EngineError> {
        let now = self.now();
        let input = PlanInput::of(claim, attribute_ids, now);
        let (existing, transaction) = match looked_up {
            Some(existing) => (existing, None),
            None => {
                let transaction = self.begin_page().await?;
                let existing = self
                    .read_existing(&transaction, claim, &records.keys())
                    .await?;
                (existing, Some(transaction))
            }
        };
        let mut planned = plan::plan(&input, records, &existing, Uuid::now_v7);
        let counts = planned.counts.clone();
        let changes = entity_changes(claim, attribute_ids, &planned);
        let newest = planned.newest;
        let archive_ids = std::mem::take(&mut planned.archive);
        let only_checkpoint = planned.entities.is_empty()
            && planned.values.is_empty()
            && planned.pinned.is_empty()
            && archive_ids.is_empty()
            && changes.changes.is_empty();
        let transaction = match transaction {
            None if only_checkpoint => None,
            None => Some(self.begin_page().await?),
            Some(transaction) => Some(transaction),
        };
        if let Some(transaction) = &transaction {
            if let Some(holding) = holding.take() {
                let _ = holding.send(());
            }
            self.write_planned(transaction, claim, now, planned, &archive_ids)
                .await?;
        }
        Ok(Staged {
            transaction,
            counts,
            changes,
            newest,
            cursor,
            now,
        })
    }

    /// Checkpoints a staged page and commits it. `so_far` and `last_modified` are the run's
    /// totals and newest provider time up to the page before; answers both as of this page.
    async fn commit_page(
        &self,
        claim: &SyncClaim,
        staged: Staged,
        so_far: &SyncReport,
        last_modified: Option<DateTime<FixedOffset>>,
    ) -> Result<(SyncReport, Option<DateTime<FixedOffset>>), EngineError> {
        let Staged {
            transaction,
            counts,
            changes,
            newest,
            cursor,
            now,
        } = staged;
        let newest = Ord::max(last_modified, newest);
        let checkpoint = sync_states::Entity::update_many()
            .col_expr(
                sync_states::Column::SyncCursor,
                Expr::value(cursor.as_str().to_owned()),
            )
            .col_expr(
                sync_states::Column::LeaseExpiresAt,
                Expr::value(now + self.lease),
            )
            .col_expr(sync_states::Column::LastModifiedSync, Expr::value(newest))
            .col_expr(
                sync_states::Column::LastSyncCreated,
                Expr::col(sync_states::Column::LastSyncCreated).add(counts.created),
            )
            .col_expr(
                sync_states::Column::LastSyncUpdated,
                Expr::col(sync_states::Column::LastSyncUpdated).add(counts.updated),
            )
            .col_expr(
                sync_states::Column::LastSyncDeleted,
                Expr::col(sync_states::Column::LastSyncDeleted).add(counts.deleted),
            )
            .col_expr(
                sync_states::Column::LastSyncConflicts,
                Expr::col(sync_states::Column::LastSyncConflicts).add(counts.conflicts),
            )
            .col_expr(sync_states::Column::UpdatedAt, Expr::value(now))
            .filter(sync_states::Column::Id.eq(claim.state_id))
            .filter(sync_states::Column::LeaseOwner.eq(claim.lease_owner.clone()));
        let mut totals = so_far.clone();
        totals.pages += 1;
        totals.add(&counts);
        let event = progress_event(claim, &totals, SyncStatus::Syncing, None);
        let checkpointed = match &transaction {
            Some(transaction) => {
                self.checkpoint(transaction, checkpoint, &event, false)
                    .await?
            }
            None => self.checkpoint(&self.db, checkpoint, &event, true).await?,
        };
        if checkpointed != 1 {
            if let Some(transaction) = transaction {
                transaction.rollback().await?;
            }
            return Err(EngineError::LeaseLost);
        }
        if let Some(transaction) = transaction {
            if !changes.changes.is_empty() {
                changes
                    .notify(&transaction)
                    .await
                    .context("notifying entity changes")?;
            }
            transaction.commit().await?;
        }
        self.analyze_if_grown(counts.created);
        self.publish_local(event);
        if !self.is_postgres()
            && !changes.changes.is_empty()
            && let Some(feed) = &self.progress
        {
            feed.publish_changes(changes);
        }
        if let Some(observer) = &self.observer {
            observer.sync_page(
                claim.provider,
                &claim.object_type,
                &PageCounts {
                    created: counts.created,
                    updated: counts.updated,
                    deleted: counts.deleted,
                    unchanged: counts.unchanged,
                    conflicts: counts.conflicts,
                },
            );
        }
        Ok((totals, newest))
    }

    /// One page's way through the window of `pages`. Looked up ahead when `ahead` (it shares no
    /// record with any page in flight), it is staged once the page before holds every connection
    /// it will use, so that no page waits for a connection while a page it waits for waits for
    /// one; otherwise it is read and staged in its own transaction after the page before
    /// committed. Either way it commits only after the page before committed, and rolls back if
    /// that page did not. Answers the run's totals, the newest provider time and the cursor, as
    /// of this page.
    async fn chained_page(
        &self,
        claim: &SyncClaim,
        attribute_ids: &HashMap<String, Uuid>,
        page: Page,
        ahead: bool,
        before: Chain,
        after: ChainEnd,
    ) -> Result<Committed, EngineError> {
        let Chain {
            staged: before_staged,
            committed: before_committed,
        } = before;
        let records = PageRecords::of(
            &PlanInput::of(claim, attribute_ids, self.now()),
            page.records,
        );
        let looked_up = if ahead {
            self.look_up_ahead(claim.workspace_id, claim.integration_id, &records.keys())
                .await
            .inspect_err(|error| {
                tracing::debug!(%error, "the lookup ahead failed; the page's own transaction reads it");
            })
            .ok()
        } else {
            None
        };
        // The page before's totals and newest time. Dropped unsent when that page failed: its
        // own error is then reported ahead of this one by `pages`.
        let mut before_committed = before_committed;
        let prior = if looked_up.is_some() {
            // Dropped unsent too when the page before failed: the commit below then finds out.
            let _ = before_staged.await;
            None
        } else {
            Some(
                (&mut before_committed)
                    .await
                    .map_err(|_| EngineError::Stopped)?,
            )
        };
        let ChainEnd {
            staged: staged_signal,
            committed: committed_signal,
        } = after;
        // Fired by `stage_page` once this page holds its transaction. A page without one takes
        // its connection at its checkpoint, so the page after may take one only after that.
        let mut staged_signal = Some(staged_signal);
        let staged = self
            .stage_page(
                claim,
                attribute_ids,
                (records, page.cursor),
                looked_up,
                &mut staged_signal,
            )
            .await?;
        let prior = match prior {
            Some(prior) => Ok(prior),
            None => before_committed.await,
        };
        let Ok((so_far, last_modified)) = prior else {
            if let Some(transaction) = staged.transaction {
                transaction.rollback().await?;
            }
            return Err(EngineError::Stopped);
        };
        let cursor = staged.cursor.clone();
        let (totals, newest) = self
            .commit_page(claim, staged, &so_far, last_modified)
            .await?;
        let _ = committed_signal.send((totals.clone(), newest));
        if let Some(signal) = staged_signal {
            let _ = signal.send(());
        }
        Ok((totals, newest, cursor))
    }

    /// Executes a page's plan (all but its checkpoint) in its transaction.
    async fn write_planned(
        &self,
        transaction: &sea_orm::DatabaseTransaction,
        claim: &SyncClaim,
        now: DateTime<FixedOffset>,
        planned: plan::PagePlan,
        archive_ids: &[Uuid],
    ) -> Result<(), EngineError> {
        if self.is_postgres() {
            set_write::write(transaction, claim, now, &planned).await?;
        } else {
            write_rows(transaction, claim, now, planned).await?;
        }
        for chunk in archive_ids.chunks(ROWS_PER_STATEMENT) {
            entities::Entity::update_many()
                .col_expr(entities::Column::ArchivedAt, Expr::value(now))
                .col_expr(entities::Column::LastSyncedAt, Expr::value(now))
                .col_expr(entities::Column::UpdatedAt, Expr::value(now))
                .col_expr(
                    entities::Column::SyncVersion,
                    Expr::col(entities::Column::SyncVersion).add(1),
                )
                .filter(entities::Column::Id.is_in(chunk.iter().copied()))
                .filter(entities::Column::ArchivedAt.is_null())
                .exec(transaction)
                .await
                .context("archiving deleted records")?;
        }
        Ok(())
    }

    /// Moves the checkpoint; the number of rows it moved (1, or 0 when the lease is no longer
    /// ours). On PostgreSQL the progress notification rides in the same statement, sent only when
    /// the checkpoint took. `alone`: the statement is its own transaction, whose commit then need
    /// not wait for its WAL flush either (as `begin_page` says).
    async fn checkpoint<C: ConnectionTrait>(
        &self,
        db: &C,
        checkpoint: sea_orm::UpdateMany<sync_states::Entity>,
        event: &SyncProgress,
        alone: bool,
    ) -> Result<usize, EngineError> {
        if !self.is_postgres() {
            let updated = checkpoint
                .exec(db)
                .await
                .context("checkpointing the page")?;
            return Ok(usize::try_from(updated.rows_affected).unwrap_or(usize::MAX));
        }
        let payload = progress_payload(event)?;
        let statement = checkpoint.build(DbBackend::Postgres);
        let mut values = statement.values.map(|values| values.0).unwrap_or_default();
        let (durability, durability_join) = if alone {
            (
                "durability AS (SELECT set_config('synchronous_commit', 'off', true)), ",
                ", durability",
            )
        } else {
            ("", "")
        };
        let sql = format!(
            "WITH {durability}checkpoint AS ({} RETURNING 1) SELECT pg_notify(${}, ${}) FROM checkpoint{durability_join}",
            statement.sql,
            values.len() + 1,
            values.len() + 2
        );
        values.extend([PROGRESS_CHANNEL.into(), payload.into()]);
        Ok(db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await
            .context("checkpointing the page")?
            .len())
    }

    async fn finish(&self, claim: &SyncClaim, report: &SyncReport) -> Result<(), EngineError> {
        let now = self.now();
        let transaction = crate::begin_write(&self.db).await?;
        let released = sync_states::Entity::update_many()
            .col_expr(
                sync_states::Column::SyncStatus,
                Expr::value(SyncStatus::Idle),
            )
            .col_expr(
                sync_states::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                sync_states::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<FixedOffset>>::None),
            )
            .col_expr(sync_states::Column::LastSyncCompletedAt, Expr::value(now))
            .col_expr(sync_states::Column::ErrorCount, Expr::value(0))
            .col_expr(
                sync_states::Column::LastErrorMessage,
                Expr::value(Option::<String>::None),
            )
            .col_expr(sync_states::Column::UpdatedAt, Expr::value(now))
            .filter(sync_states::Column::Id.eq(claim.state_id))
            .filter(sync_states::Column::LeaseOwner.eq(claim.lease_owner.clone()))
            .exec(&transaction)
            .await
            .context("ending the run")?;
        if released.rows_affected != 1 {
            transaction.rollback().await?;
            return Err(EngineError::LeaseLost);
        }
        connections::Entity::update_many()
            .col_expr(connections::Column::LastSyncAt, Expr::value(now))
            .col_expr(
                connections::Column::LastSyncCreated,
                Expr::value(report.created),
            )
            .col_expr(
                connections::Column::LastSyncUpdated,
                Expr::value(report.updated),
            )
            .col_expr(
                connections::Column::LastModifiedSync,
                Expr::value(claim.last_modified),
            )
            .col_expr(connections::Column::ErrorCount, Expr::value(0))
            .col_expr(
                connections::Column::LastErrorMessage,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                connections::Column::SyncStatus,
                Expr::value(SyncStatus::Idle),
            )
            .filter(connections::Column::Id.eq(claim.connection_id))
            .filter(connections::Column::SyncStatus.ne(SyncStatus::Disabled))
            .filter(
                Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from(sync_states::Entity)
                        .and_where(sync_states::Column::ConnectionId.eq(claim.connection_id))
                        .and_where(sync_states::Column::SyncStatus.eq(SyncStatus::Syncing))
                        .to_owned(),
                )
                .not(),
            )
            .exec(&transaction)
            .await
            .context("recording the run on the connection")?;
        self.end_run(&transaction, claim, RunStatus::Succeeded, None)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn fail(&self, claim: &SyncClaim, message: &str) -> Result<(), EngineError> {
        let now = self.now();
        let message: String = message.chars().take(1_000).collect();
        sync_states::Entity::update_many()
            .col_expr(
                sync_states::Column::SyncStatus,
                Expr::value(SyncStatus::Error),
            )
            .col_expr(
                sync_states::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                sync_states::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<FixedOffset>>::None),
            )
            .col_expr(
                sync_states::Column::ErrorCount,
                Expr::col(sync_states::Column::ErrorCount).add(1),
            )
            .col_expr(
                sync_states::Column::LastErrorMessage,
                Expr::value(message.clone()),
            )
            .col_expr(sync_states::Column::UpdatedAt, Expr::value(now))
            .filter(sync_states::Column::Id.eq(claim.state_id))
            .filter(sync_states::Column::LeaseOwner.eq(claim.lease_owner.clone()))
            .exec(&self.db)
            .await
            .context("recording the failed run")?;
        connections::Entity::update_many()
            .col_expr(
                connections::Column::SyncStatus,
                Expr::value(SyncStatus::Error),
            )
            .col_expr(
                connections::Column::ErrorCount,
                Expr::col(connections::Column::ErrorCount).add(1),
            )
            .col_expr(
                connections::Column::LastErrorMessage,
                Expr::value(message.clone()),
            )
            .filter(connections::Column::Id.eq(claim.connection_id))
            .filter(connections::Column::SyncStatus.ne(SyncStatus::Disabled))
            .exec(&self.db)
            .await
            .context("recording the failed run on the connection")?;
        self.end_run(&self.db, claim, RunStatus::Failed, Some(message))
            .await
    }

    /// Ends the claim's sync run with `status`, its counts being the state's (which span resumes).
    async fn end_run<C: ConnectionTrait>(
        &self,
        db: &C,
        claim: &SyncClaim,
        status: RunStatus,
        error: Option<String>,
    ) -> Result<(), EngineError> {
        let state = sync_states::Entity::find_by_id(claim.state_id)
            .one(db)
            .await
            .context("reading the run's counts")?;
        let count = |pick: fn(&sync_states::Model) -> i32| state.as_ref().map_or(0, pick);
        sync_runs::Entity::update_many()
            .col_expr(sync_runs::Column::Status, Expr::value(status))
            .col_expr(sync_runs::Column::FinishedAt, Expr::value(self.now()))
            .col_expr(
                sync_runs::Column::Created,
                Expr::value(count(|state| state.last_sync_created)),
            )
            .col_expr(
                sync_runs::Column::Updated,
                Expr::value(count(|state| state.last_sync_updated)),
            )
            .col_expr(
                sync_runs::Column::Deleted,
                Expr::value(count(|state| state.last_sync_deleted)),
            )
            .col_expr(
                sync_runs::Column::Conflicts,
                Expr::value(count(|state| state.last_sync_conflicts)),
            )
            .col_expr(sync_runs::Column::ErrorMessage, Expr::value(error))
            .filter(sync_runs::Column::Id.eq(claim.run_id))
            .exec(db)
            .await
            .context("ending the sync run")?;
        Ok(())
    }
}

/// What a page's plan changes, entity by entity, with the keys whose value it writes.
/// A page's writes through sea-orm's multi-row statements: the generic path (SQLite);
/// PostgreSQL takes the set-based one in [`set_write`].
async fn write_rows<C: ConnectionTrait>(
    db: &C,
    claim: &SyncClaim,
    now: DateTime<FixedOffset>,
    planned: plan::PagePlan,
) -> Result<(), EngineError> {
    let (synced, resealed): (Vec<plan::EntityWrite>, Vec<plan::EntityWrite>) = planned
        .entities
        .into_iter()
        .partition(|entity| entity.synced);
    for entity in resealed {
        entities::Entity::update_many()
            .col_expr(
                entities::Column::SyncFingerprint,
                Expr::value(entity.fingerprint),
            )
            .filter(entities::Column::Id.eq(entity.id))
            .exec(db)
            .await
            .context("writing entities' fingerprints")?;
    }
    let entity_rows: Vec<entities::ActiveModel> = synced
        .into_iter()
        .map(|entity| entities::ActiveModel {
            id: sea_orm::Set(entity.id),
            workspace_id: sea_orm::Set(claim.workspace_id),
            entity_type: sea_orm::Set(claim.mapping.entity_type.to_owned()),
            display_name: sea_orm::Set(entity.display_name),
            archived_at: sea_orm::Set(None),
            created_by: sea_orm::Set(None),
            created_at: sea_orm::Set(now),
            updated_at: sea_orm::Set(now),
            source_type: sea_orm::Set(SourceType::Integration.as_str().to_owned()),
            source_integration_id: sea_orm::Set(Some(claim.integration_id)),
            source_external_id: sea_orm::Set(Some(entity.external_id)),
            source_url: sea_orm::Set(entity.source_url),
            first_synced_at: sea_orm::Set(Some(now)),
            last_synced_at: sea_orm::Set(Some(now)),
            // For a new row this is its version; for an existing one, the increment.
            sync_version: sea_orm::Set(i64::from(entity.changed)),
            sync_fingerprint: sea_orm::Set(entity.fingerprint),
        })
        .collect();
    let mut value_rows = Vec::with_capacity(planned.values.len());
    let mut provenance_rows = Vec::with_capacity(planned.values.len());
    let mut history_rows = Vec::with_capacity(planned.values.len());
    for write in planned.values {
        value_rows.push(attribute_values::ActiveModel {
            workspace_id: sea_orm::Set(claim.workspace_id),
            entity_id: sea_orm::Set(write.entity_id),
            attribute_id: sea_orm::Set(write.attribute_id),
            value: sea_orm::Set(write.value.clone()),
            updated_at: sea_orm::Set(now),
        });
        provenance_rows.push(provenance::ActiveModel {
            id: sea_orm::Set(Uuid::now_v7()),
            entity_id: sea_orm::Set(write.entity_id),
            attribute_id: sea_orm::Set(write.attribute_id),
            source_type: sea_orm::Set(SourceType::Integration.as_str().to_owned()),
            source_integration_id: sea_orm::Set(Some(claim.integration_id)),
            source_external_field: sea_orm::Set(Some(write.external_field.clone())),
            last_updated_at: sea_orm::Set(write.observed_at),
            override_by_user: sea_orm::Set(false),
            override_at: sea_orm::Set(None),
            observed_value: sea_orm::Set(Some(write.value.clone())),
            observed_integration_id: sea_orm::Set(Some(claim.integration_id)),
            observed_external_field: sea_orm::Set(Some(write.external_field.clone())),
            observed_updated_at: sea_orm::Set(Some(write.observed_at)),
            observed_at: sea_orm::Set(Some(now)),
            sync_run_id: sea_orm::Set(Some(claim.run_id)),
            workspace_id: sea_orm::Set(claim.workspace_id),
        });
        history_rows.push(history::ActiveModel {
            id: sea_orm::Set(Uuid::now_v7()),
            workspace_id: sea_orm::Set(claim.workspace_id),
            entity_id: sea_orm::Set(write.entity_id),
            attribute_id: sea_orm::Set(write.attribute_id),
            // History never keeps a member whose key names a secret.
            old_value: sea_orm::Set(write.previous.as_ref().map(crate::sanitized_value)),
            new_value: sea_orm::Set(Some(crate::sanitized_value(&write.value))),
            source_type: sea_orm::Set(SourceType::Integration.as_str().to_owned()),
            source_integration_id: sea_orm::Set(Some(claim.integration_id)),
            source_external_field: sea_orm::Set(Some(write.external_field)),
            sync_run_id: sea_orm::Set(Some(claim.run_id)),
            user_id: sea_orm::Set(None),
            changed_at: sea_orm::Set(now),
        });
    }
    // Under an override only the observation (the shadow value) is kept.
    let observation_rows: Vec<provenance::ActiveModel> = planned
        .pinned
        .into_iter()
        .map(|write| provenance::ActiveModel {
            id: sea_orm::Set(Uuid::now_v7()),
            entity_id: sea_orm::Set(write.entity_id),
            attribute_id: sea_orm::Set(write.attribute_id),
            source_type: sea_orm::Set(SourceType::UserOverride.as_str().to_owned()),
            source_integration_id: sea_orm::Set(None),
            source_external_field: sea_orm::Set(None),
            last_updated_at: sea_orm::Set(now),
            override_by_user: sea_orm::Set(true),
            override_at: sea_orm::Set(Some(now)),
            observed_value: sea_orm::Set(Some(write.value)),
            observed_integration_id: sea_orm::Set(Some(claim.integration_id)),
            observed_external_field: sea_orm::Set(Some(write.external_field)),
            observed_updated_at: sea_orm::Set(Some(write.observed_at)),
            observed_at: sea_orm::Set(Some(now)),
            sync_run_id: sea_orm::NotSet,
            workspace_id: sea_orm::Set(claim.workspace_id),
        })
        .collect();
    for chunk in entity_rows.chunks(ROWS_PER_STATEMENT) {
        entities::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([
                        entities::Column::WorkspaceId,
                        entities::Column::SourceIntegrationId,
                        entities::Column::SourceExternalId,
                    ])
                    .target_and_where(Expr::cust(
                        "source_integration_id IS NOT NULL AND source_external_id IS NOT NULL",
                    ))
                    .update_columns([
                        entities::Column::LastSyncedAt,
                        entities::Column::SourceUrl,
                        entities::Column::DisplayName,
                        entities::Column::ArchivedAt,
                        entities::Column::SyncFingerprint,
                    ])
                    .value(
                        entities::Column::SyncVersion,
                        Expr::cust("entities.sync_version + excluded.sync_version"),
                    )
                    .value(
                        entities::Column::UpdatedAt,
                        Expr::cust(
                            "CASE WHEN excluded.sync_version > 0 THEN excluded.updated_at ELSE entities.updated_at END",
                        ),
                    )
                    .to_owned(),
                )
                .exec_without_returning(db)
                .await
            .context("upserting entities")?;
    }
    for chunk in value_rows.chunks(ROWS_PER_STATEMENT) {
        attribute_values::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    OnConflict::columns([attribute_values::Column::EntityId, attribute_values::Column::AttributeId])
                        .update_columns([attribute_values::Column::Value, attribute_values::Column::UpdatedAt])
                        // An override written since our read still wins.
                        .action_and_where(Expr::cust(
                            "NOT EXISTS (SELECT 1 FROM entity_attribute_provenance p
                             WHERE p.entity_id = excluded.entity_id AND p.attribute_id = excluded.attribute_id
                             AND p.override_by_user)",
                        ))
                        .to_owned(),
                )
                .exec_without_returning(db)
                .await
            .context("upserting attribute values")?;
    }
    for chunk in provenance_rows.chunks(ROWS_PER_STATEMENT) {
        provenance::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    provenance::Column::EntityId,
                    provenance::Column::AttributeId,
                ])
                .update_columns(
                    [
                        provenance::Column::SourceType,
                        provenance::Column::SourceIntegrationId,
                        provenance::Column::SourceExternalField,
                        provenance::Column::LastUpdatedAt,
                        provenance::Column::SyncRunId,
                    ]
                    .into_iter()
                    .chain(OBSERVED_COLUMNS),
                )
                .action_and_where(Expr::cust(
                    "entity_attribute_provenance.override_by_user = FALSE",
                ))
                .to_owned(),
            )
            .exec_without_returning(db)
            .await
            .context("upserting provenance")?;
    }
    for chunk in observation_rows.chunks(ROWS_PER_STATEMENT) {
        provenance::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    provenance::Column::EntityId,
                    provenance::Column::AttributeId,
                ])
                .update_columns(OBSERVED_COLUMNS)
                .to_owned(),
            )
            .exec_without_returning(db)
            .await
            .context("keeping observed values under overrides")?;
    }
    for chunk in history_rows.chunks(ROWS_PER_STATEMENT) {
        history::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .context("appending attribute history")?;
    }
    Ok(())
}

/// One key of [`LOOKUP`]: an external id, and the fingerprint of the record the page holds for
/// it, in hex.
#[derive(serde::Serialize)]
struct LookupKey<'a> {
    id: &'a str,
    print: Option<String>,
}

/// What the database holds for a page's records on PostgreSQL, in one statement: the entities
/// (one index probe per external id: a `LATERAL … LIMIT 1` per key, with a generic plan), then
/// each found entity's values and provenance (probed per entity id; both tables' keys lead with
/// `entity_id`), as one list of rows whose `kind` says which. The probes per key keep the plan
/// from falling back to scanning the workspace's rows and filtering the list, whether the table
/// was never analyzed or its statistics predate this tenant's load. An entity that
/// [seals](plan::ExistingEntity::seals) its key's fingerprint comes without its values and
/// provenance: the plan does not read them.
async fn lookup_pg<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    integration_id: Uuid,
    keys: &[(&str, Option<plan::Fingerprint>)],
) -> Result<Existing, EngineError> {
    let mut existing = Existing::default();
    if keys.is_empty() {
        return Ok(existing);
    }
    let keys: Vec<LookupKey<'_>> = keys
        .iter()
        .map(|(id, print)| LookupKey {
            id,
            print: print.map(hex::encode),
        })
        .collect();
    let keys = serde_json::to_string(&keys).context("encoding the page's ids")?;
    // A custom plan would cost the probe with this workspace's own row estimate, which for a
    // tenant whose first load is running says "almost none" and picks the workspace index, whose
    // scan then grows with the load. The generic plan costs all three equalities together and
    // probes the source-record (or external-id) index per key. `begin_page` and `look_up_ahead`
    // set it.
    let step = "reading the page's entities, attribute values and provenance";
    let results = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            LOOKUP,
            [workspace_id.into(), integration_id.into(), keys.into()],
        ))
        .await
        .context(step)?;
    for result in results {
        let row = result
            .try_as_pg_row()
            .context("the lookup answered with a row that is not PostgreSQL's")
            .and_then(|row| LookupRow::decode(row).context(step))?;
        match row.kind {
            LOOKUP_ENTITY => {
                if let Some(external_id) = row.external_id {
                    existing.entities.insert(
                        external_id,
                        ExistingEntity {
                            id: row.entity_id,
                            archived: row.archived.unwrap_or(false),
                            display_name: row.display_name,
                            source_url: row.source_url,
                            sync_version: row.sync_version.unwrap_or(0),
                            fingerprint: row.sync_fingerprint,
                        },
                    );
                }
            }
            LOOKUP_VALUE => {
                if let Some(attribute_id) = row.attribute_id {
                    existing.values.insert(
                        (row.entity_id, attribute_id),
                        row.value.unwrap_or(Value::Null),
                    );
                }
            }
            LOOKUP_PROVENANCE => {
                if let (Some(attribute_id), Some(last_updated_at), Some(override_by_user)) =
                    (row.attribute_id, row.last_updated_at, row.override_by_user)
                {
                    existing.origins.insert(
                        (row.entity_id, attribute_id),
                        Origin {
                            source_integration_id: row.source_integration_id,
                            source_external_field: row.source_external_field,
                            last_updated_at,
                            override_by_user,
                            observed_value: row.observed_value,
                            observed_external_field: row.observed_external_field,
                            observed_updated_at: row.observed_updated_at,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    Ok(existing)
}

/// A progress event as its `pg_notify` payload.
fn progress_payload(event: &SyncProgress) -> Result<String, EngineError> {
    serde_json::to_string(event).map_err(|error| EngineError::Unexpected(error.into()))
}

/// [`LookupRow::kind`] of an entity, a value and a provenance row.
const LOOKUP_ENTITY: i16 = 0;
const LOOKUP_VALUE: i16 = 1;
const LOOKUP_PROVENANCE: i16 = 2;

/// The statement of [`lookup_pg`]. The entities are found once (`MATERIALIZED`) and feed both
/// attribute probes; a value without provenance and provenance without a value both come back.
/// The observation (the shadow value) only comes with an override, the one case where the plan
/// reads it: the rest of the rows carry no JSON but their value to decode.
const LOOKUP: &str = "WITH e AS MATERIALIZED (
        SELECT e.*, COALESCE(e.archived_at IS NULL
            AND e.sync_fingerprint = decode(k.print, 'hex') || int8send(e.sync_version), FALSE)
            AS sealed
        FROM jsonb_to_recordset($3::jsonb) AS k (id text, print text)
        CROSS JOIN LATERAL (
            SELECT id, source_external_id, archived_at, display_name, source_url, sync_version,
                sync_fingerprint
            FROM entities
            WHERE workspace_id = $1 AND source_integration_id = $2 AND source_external_id = k.id
            LIMIT 1
        ) AS e
    )
    SELECT 0::int2 AS kind, e.id AS entity_id, e.source_external_id AS external_id,
        e.archived_at IS NOT NULL AS archived, e.display_name, e.source_url,
        NULL::uuid AS attribute_id, NULL::jsonb AS value, NULL::uuid AS source_integration_id,
        NULL::text AS source_external_field, NULL::timestamptz AS last_updated_at,
        NULL::bool AS override_by_user, NULL::jsonb AS observed_value,
        NULL::text AS observed_external_field, NULL::timestamptz AS observed_updated_at,
        e.sync_version, e.sync_fingerprint
    FROM e
    UNION ALL
    SELECT 1::int2, e.id, NULL, NULL, NULL, NULL, v.attribute_id, v.value, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, NULL
    FROM e CROSS JOIN LATERAL (
        SELECT attribute_id, value FROM entity_attribute_values WHERE entity_id = e.id
    ) AS v
    WHERE NOT e.sealed
    UNION ALL
    SELECT 2::int2, e.id, NULL, NULL, NULL, NULL, p.attribute_id, NULL, p.source_integration_id,
        p.source_external_field, p.last_updated_at, p.override_by_user,
        CASE WHEN p.override_by_user THEN p.observed_value END,
        CASE WHEN p.override_by_user THEN p.observed_external_field END,
        CASE WHEN p.override_by_user THEN p.observed_updated_at END, NULL, NULL
    FROM e CROSS JOIN LATERAL (
        SELECT attribute_id, source_integration_id, source_external_field, last_updated_at,
            override_by_user, observed_value, observed_external_field, observed_updated_at
        FROM entity_attribute_provenance WHERE entity_id = e.id
    ) AS p
    WHERE NOT e.sealed";

/// One row of [`LOOKUP`]: an entity (`kind` 0), one of its values (1) or one of its provenance
/// rows (2); the columns of the other kinds are `NULL`.
#[derive(Debug)]
struct LookupRow {
    kind: i16,
    entity_id: Uuid,
    external_id: Option<String>,
    archived: Option<bool>,
    display_name: Option<String>,
    source_url: Option<String>,
    attribute_id: Option<Uuid>,
    value: Option<Value>,
    source_integration_id: Option<Uuid>,
    source_external_field: Option<String>,
    last_updated_at: Option<DateTime<FixedOffset>>,
    override_by_user: Option<bool>,
    observed_value: Option<Value>,
    observed_external_field: Option<String>,
    observed_updated_at: Option<DateTime<FixedOffset>>,
    sync_version: Option<i64>,
    sync_fingerprint: Option<Vec<u8>>,
}

impl LookupRow {
    /// Decodes by position straight from the driver's row. Most of a row's columns are `NULL`,
    /// and sea-orm's by-name getters allocate an error for every `NULL` they meet: this way
    /// one page's lookup costs a fraction of the CPU. The types are [`LOOKUP`]'s own casts, so
    /// they are not compared with the row's column types again (a wrong one still fails to
    /// decode; the sync tests run the statement).
    fn decode(row: &sea_orm::sqlx::postgres::PgRow) -> Result<Self, sea_orm::sqlx::Error> {
        use sea_orm::sqlx::Row as _;
        Ok(Self {
            kind: row.try_get_unchecked(0)?,
            entity_id: row.try_get_unchecked(1)?,
            external_id: row.try_get_unchecked(2)?,
            archived: row.try_get_unchecked(3)?,
            display_name: row.try_get_unchecked(4)?,
            source_url: row.try_get_unchecked(5)?,
            attribute_id: row.try_get_unchecked(6)?,
            value: row.try_get_unchecked(7)?,
            source_integration_id: row.try_get_unchecked(8)?,
            source_external_field: row.try_get_unchecked(9)?,
            last_updated_at: row.try_get_unchecked(10)?,
            override_by_user: row.try_get_unchecked(11)?,
            observed_value: row.try_get_unchecked(12)?,
            observed_external_field: row.try_get_unchecked(13)?,
            observed_updated_at: row.try_get_unchecked(14)?,
            sync_version: row.try_get_unchecked(15)?,
            sync_fingerprint: row.try_get_unchecked(16)?,
        })
    }
}

fn entity_changes(
    claim: &SyncClaim,
    attribute_ids: &HashMap<String, Uuid>,
    planned: &plan::PagePlan,
) -> EntityChanges {
    let keys: HashMap<Uuid, &str> = attribute_ids
        .iter()
        .map(|(key, id)| (*id, key.as_str()))
        .collect();
    let mut written: HashMap<Uuid, Vec<String>> = HashMap::new();
    for write in &planned.values {
        if let Some(key) = keys.get(&write.attribute_id) {
            written
                .entry(write.entity_id)
                .or_default()
                .push((*key).to_owned());
        }
    }
    let mut changes: Vec<EntityChange> = planned
        .entities
        .iter()
        .filter(|entity| entity.changed)
        .map(|entity| {
            let mut keys = written.remove(&entity.id).unwrap_or_default();
            keys.sort_unstable();
            EntityChange {
                entity_id: entity.id,
                kind: if entity.created {
                    ChangeKind::Created
                } else {
                    ChangeKind::Updated
                },
                keys,
            }
        })
        .collect();
    changes.extend(planned.archive.iter().map(|id| EntityChange {
        entity_id: *id,
        kind: ChangeKind::Archived,
        keys: Vec::new(),
    }));
    EntityChanges {
        workspace_id: claim.workspace_id,
        entity_type: claim.mapping.entity_type.to_owned(),
        sync_run_id: Some(claim.run_id),
        user_id: None,
        changes,
    }
}

/// The value at `path` in a record's fields: the key itself when present, else a dotted path
/// through objects (`custom_attributes.plan`, `Owner.Name`, `metadata.tier`) and through arrays of
/// `{id, value}` items by id (Zendesk's `custom_fields.360001234`).
pub fn field_value<'a>(
    fields: &'a serde_json::Map<String, Value>,
    path: &str,
) -> Option<&'a Value> {
    if let Some(value) = fields.get(path) {
        return Some(value);
    }
    let mut segments = path.split('.');
    let mut current = fields.get(segments.next()?)?;
    for segment in segments {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items
                .iter()
                .find(|item| {
                    item.get("id").is_some_and(|id| match id {
                        Value::String(text) => text == segment,
                        other => other.as_i64().is_some_and(|id| segment.parse() == Ok(id)),
                    })
                })
                .and_then(|item| item.get("value"))?,
            _ => return None,
        };
    }
    Some(current)
}

/// A label for an attribute key: `first_name` → `First name`.
fn label(key: &str) -> String {
    let text = key.replace('_', " ");
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The name to show for an entity: its name, first and last name, email, subject or external id.
fn display_name(mapped: &HashMap<&str, &Value>, external_id: &str) -> Option<String> {
    let text = |key: &str| {
        mapped
            .get(key)
            .and_then(|value| value.as_str())
            .filter(|text| !text.trim().is_empty())
    };
    if let Some(name) = text("name") {
        return Some(name.to_owned());
    }
    let full_name: Vec<&str> = ["first_name", "last_name"]
        .into_iter()
        .filter_map(text)
        .collect();
    if !full_name.is_empty() {
        return Some(full_name.join(" "));
    }
    ["email", "subject", "title", "number"]
        .into_iter()
        .find_map(text)
        .map(str::to_owned)
        .or_else(|| Some(external_id.to_owned()))
}

mod plan;
mod set_write;

#[cfg(test)]
mod tests;
