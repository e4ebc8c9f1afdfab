//! The job queue on our own `job_queue` table: enqueue is idempotent on `job_key` (the same cron
//! tick from several replicas, the same webhook twice → one row); a claim takes one due job with
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serializes writers), so each job runs once however
//! many workers poll; a failed job is retried with exponential backoff until its attempts run out;
//! a job whose worker died is taken over when its lock expires.
//!
//! Why not a job crate: the schema must also run on SQLite (the embedded default), and the
//! PostgreSQL-only queues (`graphile_worker`, `apalis-postgres`) would give two code paths and a
//! second schema; this queue is one table and a few statements on sea-orm's pool.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;

use chrono::{DateTime, FixedOffset};
use entity::job_queue;
use providers::Clock;
use sea_orm::sea_query::{Expr, ExprTrait as _, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait as _, Condition, DatabaseConnection, EntityTrait as _, PaginatorTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::EngineError;
use crate::lifecycle::JobStatus;

/// What a job does, with its arguments: the only way to build a job or read one back. It is
/// stored as the row's `kind` (the tag) and `payload` (the other fields, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Job {
    /// Read one object type of a connection incrementally.
    Sync {
        /// The connection.
        connection_id: Uuid,
        /// The provider's object type (`contacts`, `Account`, …).
        object_type: String,
    },
    /// Check the connection's credentials and read its account.
    Validate {
        /// The connection.
        connection_id: Uuid,
    },
    /// Probe the connection's health.
    HealthCheck {
        /// The connection.
        connection_id: Uuid,
    },
    /// Register the platform's webhook at the provider (Stripe API keys, Zendesk).
    RegisterWebhook {
        /// The connection.
        connection_id: Uuid,
    },
    /// Remove expired webhook events, cache rows, health logs and OAuth states.
    Cleanup,
}

/// The job kinds a worker runs (the tags of [`Job`]).
pub const JOB_KINDS: &[&str] = &[
    "sync",
    "validate",
    "health_check",
    "register_webhook",
    "cleanup",
];

impl Job {
    /// Its stored kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sync { .. } => "sync",
            Self::Validate { .. } => "validate",
            Self::HealthCheck { .. } => "health_check",
            Self::RegisterWebhook { .. } => "register_webhook",
            Self::Cleanup => "cleanup",
        }
    }

    /// The connection it works on, if any.
    pub fn connection_id(&self) -> Option<Uuid> {
        match self {
            Self::Sync { connection_id, .. }
            | Self::Validate { connection_id }
            | Self::HealthCheck { connection_id }
            | Self::RegisterWebhook { connection_id } => Some(*connection_id),
            Self::Cleanup => None,
        }
    }

    /// Its stored payload: every field but the kind.
    pub fn payload(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.remove("kind");
        }
        value
    }

    /// The job a stored row describes; a row that does not parse is bad input (the job fails
    /// once, and is not retried).
    pub fn from_row(kind: &str, payload: &Value) -> Result<Self, EngineError> {
        let mut object = match payload {
            Value::Object(object) => object.clone(),
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(EngineError::InvalidInput(format!(
                    "a `{kind}` job's payload is not an object: {other}"
                )));
            }
        };
        object.insert("kind".to_owned(), Value::String(kind.to_owned()));
        serde_json::from_value(Value::Object(object)).map_err(|error| {
            EngineError::InvalidInput(format!("a `{kind}` job does not parse: {error}"))
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What to do.
    pub job: Job,
    /// Deduplication: a second job with the same key is not enqueued.
    pub job_key: Option<String>,
    /// Not before this time (now when `None`).
    pub run_at: Option<DateTime<FixedOffset>>,
    /// Attempts before it is marked failed.
    pub max_attempts: i32,
}

impl NewJob {
    /// `job`, due now, five attempts, no key.
    pub fn new(job: Job) -> Self {
        Self {
            job,
            job_key: None,
            run_at: None,
            max_attempts: 5,
        }
    }

    /// Deduplicates on `key`.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.job_key = Some(key.into());
        self
    }

    /// Not before `run_at`.
    pub fn at(mut self, run_at: DateTime<FixedOffset>) -> Self {
        self.run_at = Some(run_at);
        self
    }
}

/// How long a claimed job stays locked unless its worker renews the lock (a running worker does,
/// every third of it), so a job whose process died is taken over within a minute.
pub const DEFAULT_JOB_LOCK: chrono::Duration = chrono::Duration::seconds(30);

/// The queue.
#[derive(Debug, Clone)]
pub struct JobQueue {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    worker_id: String,
    lock_for: chrono::Duration,
}

impl JobQueue {
    /// A queue on `db`; `worker_id` names this process in locks.
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        worker_id: impl Into<String>,
    ) -> Self {
        Self {
            db,
            clock,
            worker_id: worker_id.into(),
            lock_for: DEFAULT_JOB_LOCK,
        }
    }

    /// How long a claimed job stays locked before another worker may take it over.
    pub fn with_lock(mut self, lock_for: chrono::Duration) -> Self {
        self.lock_for = lock_for;
        self
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// How long a claim locks a job.
    pub fn lock_duration(&self) -> chrono::Duration {
        self.lock_for
    }

    /// Extends the lock of a job this worker still holds; false when it no longer does.
    pub async fn renew_lock(&self, job_id: Uuid) -> Result<bool, EngineError> {
        let renewed = job_queue::Entity::update_many()
            .col_expr(
                job_queue::Column::LockedUntil,
                Expr::value(self.now() + self.lock_for),
            )
            .filter(job_queue::Column::Id.eq(job_id))
            .filter(job_queue::Column::LockedBy.eq(self.worker_id.clone()))
            .filter(job_queue::Column::Status.eq(JobStatus::Running))
            .exec(&self.db)
            .await
            .context("renewing a job lock")?;
        Ok(renewed.rows_affected == 1)
    }

    /// Enqueues `job`; `false` when a job with its key already exists.
    pub async fn enqueue(&self, job: NewJob) -> Result<bool, EngineError> {
        enqueue_on(&self.db, self.now(), job).await
    }

    /// Enqueues `job` under the key `{family}{random}` unless a job of the same key family is
    /// still queued or running: a request repeated while its job waits is not queued twice, and
    /// one made after it finished is. (Two exactly simultaneous requests may both be queued; the
    /// work they do is idempotent.) `false` when one was pending.
    pub async fn enqueue_unless_pending(
        &self,
        job: NewJob,
        family: &str,
    ) -> Result<bool, EngineError> {
        // A `running` job whose lock has lapsed belongs to a process that died: it is not
        // pending work, so it does not stop a new request.
        let pending = job_queue::Entity::find()
            .filter(job_queue::Column::JobKey.starts_with(family))
            .filter(
                Condition::any()
                    .add(job_queue::Column::Status.eq(JobStatus::Queued))
                    .add(
                        Condition::all()
                            .add(job_queue::Column::Status.eq(JobStatus::Running))
                            .add(job_queue::Column::LockedUntil.gte(self.now())),
                    ),
            )
            .count(&self.db)
            .await
            .context("counting pending jobs")?;
        if pending > 0 {
            return Ok(false);
        }
        self.enqueue(job.with_key(format!("{family}{}", Uuid::new_v4())))
            .await
    }

    /// Claims the next due job of `kinds`, or `None`.
    pub async fn claim(&self, kinds: &[&str]) -> Result<Option<job_queue::Model>, EngineError> {
        let now = self.now();
        let due = Condition::any()
            .add(
                Condition::all()
                    .add(job_queue::Column::Status.eq(JobStatus::Queued))
                    .add(job_queue::Column::RunAt.lte(now)),
            )
            .add(
                Condition::all()
                    .add(job_queue::Column::Status.eq(JobStatus::Running))
                    .add(job_queue::Column::LockedUntil.lt(now)),
            );
        // Pick then update, in one transaction. (`UPDATE … WHERE id IN (SELECT … LIMIT 1 FOR UPDATE
        // SKIP LOCKED)` is a trap: PostgreSQL may re-run the subquery per row and claim them all.)
        // On SQLite two workers can pick the same row; the update re-checks it, and the loser picks
        // again.
        for _ in 0..8 {
            let transaction = crate::begin_write(&self.db).await?;
            // Two picks, each an index scan that stops at its first row (one query with an OR of
            // both conditions cost a scan and sort of the whole backlog: 106 ms per claim with
            // 54,000 queued): a job whose worker's lock expired first, else the next queued one
            // in `idx_job_queue_ready` order.
            let stale = job_queue::Entity::find()
                .select_only()
                .column(job_queue::Column::Id)
                .filter(job_queue::Column::Status.eq(JobStatus::Running))
                .filter(job_queue::Column::LockedUntil.lt(now))
                .filter(job_queue::Column::Kind.is_in(kinds.iter().copied()))
                .order_by_asc(job_queue::Column::LockedUntil)
                .limit(1)
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .into_tuple::<Uuid>()
                .one(&transaction)
                .await
                .context("picking a job whose lock lapsed")?;
            let next = match stale {
                Some(id) => Some(id),
                None => job_queue::Entity::find()
                    .select_only()
                    .column(job_queue::Column::Id)
                    .filter(job_queue::Column::Status.eq(JobStatus::Queued))
                    .filter(job_queue::Column::Queue.eq("default"))
                    .filter(job_queue::Column::RunAt.lte(now))
                    .filter(job_queue::Column::Kind.is_in(kinds.iter().copied()))
                    .order_by_desc(job_queue::Column::Priority)
                    .order_by_asc(job_queue::Column::RunAt)
                    .limit(1)
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                    .into_tuple::<Uuid>()
                    .one(&transaction)
                    .await
                    .context("picking the next queued job")?,
            };
            let Some(id) = next else {
                transaction.commit().await?;
                return Ok(None);
            };
            let claimed = job_queue::Entity::update_many()
                .col_expr(job_queue::Column::Status, Expr::value(JobStatus::Running))
                .col_expr(
                    job_queue::Column::LockedBy,
                    Expr::value(self.worker_id.clone()),
                )
                .col_expr(
                    job_queue::Column::LockedUntil,
                    Expr::value(now + self.lock_for),
                )
                .col_expr(
                    job_queue::Column::Attempts,
                    Expr::col(job_queue::Column::Attempts).add(1),
                )
                .col_expr(job_queue::Column::UpdatedAt, Expr::value(now))
                .filter(job_queue::Column::Id.eq(id))
                .filter(due.clone())
                .exec_with_returning(&transaction)
                .await
                .context("claiming the job")?;
            transaction.commit().await?;
            if let Some(job) = claimed.into_iter().next() {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// Marks a claimed job done.
    pub async fn complete(&self, job: &job_queue::Model) -> Result<(), EngineError> {
        let now = self.now();
        job_queue::Entity::update_many()
            .col_expr(job_queue::Column::Status, Expr::value(JobStatus::Succeeded))
            .col_expr(job_queue::Column::FinishedAt, Expr::value(now))
            .col_expr(
                job_queue::Column::LockedUntil,
                Expr::value(Option::<DateTime<FixedOffset>>::None),
            )
            .col_expr(job_queue::Column::UpdatedAt, Expr::value(now))
            .filter(job_queue::Column::Id.eq(job.id))
            .filter(job_queue::Column::LockedBy.eq(self.worker_id.clone()))
            .exec(&self.db)
            .await
            .context("completing the job")?;
        Ok(())
    }

    /// Puts a claimed job back to run at `run_at` without spending an attempt: it could not start
    /// yet (the sync it runs is held by another worker's lease), which is not a failure.
    pub async fn defer(
        &self,
        job: &job_queue::Model,
        run_at: DateTime<FixedOffset>,
        reason: &str,
    ) -> Result<(), EngineError> {
        self.put_back(job, run_at, Some(reason))
            .await
            .context("deferring the job")?;
        Ok(())
    }

    /// Puts a claimed job back, due now, without spending an attempt: it did a bounded slice of
    /// its work and the rest waits its turn behind the jobs that were already due.
    pub async fn requeue(&self, job: &job_queue::Model) -> Result<(), EngineError> {
        self.put_back(job, self.now(), None)
            .await
            .context("re-queueing the job's next slice")?;
        Ok(())
    }

    /// Queues a job this worker holds again at `run_at` (never before now), giving back the
    /// attempt its claim took; `reason` becomes its `last_error` when given.
    async fn put_back(
        &self,
        job: &job_queue::Model,
        run_at: DateTime<FixedOffset>,
        reason: Option<&str>,
    ) -> Result<(), sea_orm::DbErr> {
        let now = self.now();
        let mut update = job_queue::Entity::update_many()
            .col_expr(job_queue::Column::Status, Expr::value(JobStatus::Queued))
            .col_expr(job_queue::Column::RunAt, Expr::value(Ord::max(run_at, now)))
            .col_expr(
                job_queue::Column::Attempts,
                Expr::value(Ord::max(job.attempts - 1, 0)),
            )
            .col_expr(
                job_queue::Column::LockedUntil,
                Expr::value(Option::<DateTime<FixedOffset>>::None),
            )
            .col_expr(job_queue::Column::UpdatedAt, Expr::value(now));
        if let Some(reason) = reason {
            update = update.col_expr(job_queue::Column::LastError, Expr::value(reason.to_owned()));
        }
        update
            .filter(job_queue::Column::Id.eq(job.id))
            .filter(job_queue::Column::LockedBy.eq(self.worker_id.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records a failure: the job runs again after a backoff (30 s × 2^attempts, at most an hour),
    /// or is marked failed when its attempts are used up. `retry_after` (a provider's wait) is
    /// honoured when longer.
    pub async fn fail(
        &self,
        job: &job_queue::Model,
        error: &str,
        retry_after: Option<chrono::Duration>,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let exhausted = job.attempts >= job.max_attempts;
        let backoff = chrono::Duration::seconds(
            30 * 2_i64.pow(u32::try_from(job.attempts.clamp(0, 7)).unwrap_or(7)),
        )
        .min(chrono::Duration::hours(1));
        let delay = retry_after.map_or(backoff, |wait| wait.max(backoff));
        self.record_failure(job, error, (!exhausted).then_some(now + delay))
            .await
    }

    /// Marks a claimed job failed without another attempt: it can never succeed as it is.
    pub async fn fail_for_good(
        &self,
        job: &job_queue::Model,
        error: &str,
    ) -> Result<(), EngineError> {
        self.record_failure(job, error, None).await
    }

    /// Records a claimed job's failure: queued again at `retry_at`, or failed for good.
    async fn record_failure(
        &self,
        job: &job_queue::Model,
        error: &str,
        retry_at: Option<DateTime<FixedOffset>>,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let message: String = error.chars().take(1_000).collect();
        job_queue::Entity::update_many()
            .col_expr(
                job_queue::Column::Status,
                Expr::value(if retry_at.is_some() {
                    JobStatus::Queued
                } else {
                    JobStatus::Failed
                }),
            )
            .col_expr(
                job_queue::Column::RunAt,
                Expr::value(retry_at.unwrap_or(now)),
            )
            .col_expr(job_queue::Column::LastError, Expr::value(message))
            .col_expr(
                job_queue::Column::LockedUntil,
                Expr::value(Option::<DateTime<FixedOffset>>::None),
            )
            .col_expr(
                job_queue::Column::FinishedAt,
                Expr::value(retry_at.is_none().then_some(now)),
            )
            .col_expr(job_queue::Column::UpdatedAt, Expr::value(now))
            .filter(job_queue::Column::Id.eq(job.id))
            .filter(job_queue::Column::LockedBy.eq(self.worker_id.clone()))
            .exec(&self.db)
            .await
            .context("recording the failed job")?;
        Ok(())
    }
}

/// Where a connection's queued sync of one object type stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedSync {
    /// The object type.
    pub object_type: String,
    /// When its job is due: the run's next slice, a retry, or the next scheduled run.
    pub run_at: DateTime<FixedOffset>,
    /// Its place among the due jobs, in claim order (1: the next claimed); `None` while it is
    /// not due yet.
    pub position: Option<u64>,
}

/// The queued sync jobs of `connection_id`, one per object type (the soonest due), with their
/// place in the queue at `now`. Reads `job_queue`, so `db` is the worker's pool; the caller has
/// already checked that the viewer may see the connection.
pub async fn queued_syncs<C: sea_orm::ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
    now: DateTime<FixedOffset>,
) -> Result<Vec<QueuedSync>, EngineError> {
    let jobs = job_queue::Entity::find()
        .filter(job_queue::Column::Kind.eq("sync"))
        .filter(job_queue::Column::Status.eq(JobStatus::Queued))
        .filter(Expr::cust("payload->>'connection_id'").eq(connection_id.to_string()))
        .order_by_asc(job_queue::Column::RunAt)
        .all(db)
        .await
        .context("reading the connection's queued syncs")?;
    let mut queued: Vec<QueuedSync> = Vec::new();
    for job in jobs {
        let Ok(Job::Sync { object_type, .. }) = Job::from_row(&job.kind, &job.payload) else {
            continue;
        };
        if queued.iter().any(|known| known.object_type == object_type) {
            continue;
        }
        let position = if job.run_at <= now {
            // The claim's order: priority first, then the soonest due.
            let ahead = job_queue::Entity::find()
                .filter(job_queue::Column::Status.eq(JobStatus::Queued))
                .filter(job_queue::Column::Queue.eq(job.queue.clone()))
                .filter(job_queue::Column::RunAt.lte(now))
                .filter(
                    Condition::any()
                        .add(job_queue::Column::Priority.gt(job.priority))
                        .add(
                            Condition::all()
                                .add(job_queue::Column::Priority.eq(job.priority))
                                .add(job_queue::Column::RunAt.lt(job.run_at)),
                        ),
                )
                .count(db)
                .await
                .context("counting the jobs ahead of a queued sync")?;
            Some(ahead + 1)
        } else {
            None
        };
        queued.push(QueuedSync {
            object_type,
            run_at: job.run_at,
            position,
        });
    }
    Ok(queued)
}

/// Enqueues on any connection (a transaction included), `false` when the key exists.
pub(crate) async fn enqueue_on<C: sea_orm::ConnectionTrait>(
    db: &C,
    now: DateTime<FixedOffset>,
    job: NewJob,
) -> Result<bool, EngineError> {
    let inserted = job_queue::Entity::insert(queued(now, job))
        .on_conflict_do_nothing_on([job_queue::Column::JobKey])
        .exec_without_returning(db)
        .await
        .context("enqueueing a job")?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(1)))
}

/// Enqueues `jobs` with one statement (a job whose key is taken is skipped, as by [`enqueue_on`]).
pub(crate) async fn enqueue_many_on<C: sea_orm::ConnectionTrait>(
    db: &C,
    now: DateTime<FixedOffset>,
    jobs: Vec<NewJob>,
) -> Result<(), EngineError> {
    // A key repeated within `jobs` would only meet its own first row's conflict: it is dropped
    // here (the first job of a key wins, as it would in the statement).
    let mut keys = HashSet::new();
    let jobs: Vec<NewJob> = jobs
        .into_iter()
        .filter(|job| {
            job.job_key
                .as_ref()
                .is_none_or(|key| keys.insert(key.clone()))
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    job_queue::Entity::insert_many(jobs.into_iter().map(|job| queued(now, job)))
        .on_conflict_do_nothing_on([job_queue::Column::JobKey])
        .exec_without_returning(db)
        .await
        .context("enqueueing jobs")?;
    Ok(())
}

/// The row of a newly queued `job`, whole, for statements that insert it from JSON
/// (`inbox::TAKE_PG`, through `jsonb_populate_record`): the same row [`queued`] inserts.
pub(crate) fn queued_row(
    now: DateTime<FixedOffset>,
    job: NewJob,
) -> Result<job_queue::Model, EngineError> {
    use sea_orm::TryIntoModel as _;
    Ok(queued(now, job)
        .try_into_model()
        .context("building a queued job's row")?)
}

/// The row of a newly queued `job`.
fn queued(now: DateTime<FixedOffset>, job: NewJob) -> job_queue::ActiveModel {
    job_queue::ActiveModel {
        id: Set(Uuid::now_v7()),
        queue: Set("default".to_owned()),
        kind: Set(job.job.kind().to_owned()),
        payload: Set(job.job.payload()),
        job_key: Set(job.job_key),
        status: Set(JobStatus::Queued.as_str().to_owned()),
        priority: Set(0),
        attempts: Set(0),
        max_attempts: Set(Ord::max(job.max_attempts, 1)),
        run_at: Set(job.run_at.unwrap_or(now)),
        locked_by: Set(None),
        locked_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
}
