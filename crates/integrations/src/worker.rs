//! The worker: claims jobs from the queue and runs them — syncs, validations, health checks,
//! webhook follow-ups and cleanup — with the provider clients a [`ProviderFactory`] builds
//! (base URLs and app credentials are the server's configuration, not the engine's). A failed job
//! is retried with backoff; a provider that asks for a wait gets it.

use std::sync::Arc;

use anyhow::Context as _;

use entity::{
    integration_connections as connections, integration_definitions as definitions, job_queue,
};
use providers::secrecy::SecretString;
use providers::{
    Clock, ConnectionConfig, OAuthClient, ProviderClient, ProviderError, ProviderKind, ReadOptions,
};
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _};
use serde_json::Value;
use uuid::Uuid;

use crate::heartbeat::Heartbeat;
use crate::jobs::{JOB_KINDS, Job, JobQueue};
use crate::progress::{EngineObserver, ProgressFeed};
use crate::{
    ConnectionValidator, CredentialStore, EngineError, HealthMonitor, IntegrationCache, SyncEngine,
    WebhookInbox, config_from_json,
};

/// Builds provider clients from the server's configuration.
pub trait ProviderFactory: Send + Sync {
    /// The OAuth client of `kind` for a connection with `config`.
    fn oauth(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
    ) -> Result<OAuthClient, EngineError>;
    /// The API client of `kind` for a connection with `config` and `metadata` (Salesforce's
    /// `instance_url` is the API base), calling with `access_token`.
    fn api(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
        metadata: &Value,
        access_token: SecretString,
    ) -> Result<ProviderClient, EngineError>;
}

/// What one `run_once` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The job ran and succeeded.
    Succeeded {
        /// Its kind.
        kind: String,
    },
    /// The job could not start yet (its sync is held by another worker's unexpired lease) and
    /// was put back for when that lease ends, without spending an attempt.
    Deferred {
        /// Its kind.
        kind: String,
    },
    /// The job's sync used up its slice with pages left, and went back to the queue behind the
    /// jobs already due (other workspaces' work first), without spending an attempt.
    Yielded {
        /// Its kind.
        kind: String,
    },
    /// The job failed and was rescheduled or marked failed.
    Failed {
        /// Its kind.
        kind: String,
        /// Why.
        error: String,
    },
}

/// What running a job came to.
enum Ran {
    /// It did its work.
    Done,
    /// Its sync's slice is used up; the rest is the job's next run.
    Yielded,
    /// Its sync is held by another worker until then.
    HeldUntil(chrono::DateTime<chrono::FixedOffset>),
}

/// Runs queued jobs.
#[derive(Clone)]
pub struct Worker {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    queue: JobQueue,
    credentials: CredentialStore,
    factory: Arc<dyn ProviderFactory>,
    worker_id: String,
    public_base_url: Option<String>,
    progress: Option<ProgressFeed>,
    observer: Option<Arc<dyn EngineObserver>>,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
    sync_request_budget: u64,
    analyze: crate::AnalyzeSchedule,
    attribute_history_days: i64,
    slice: crate::SyncSlice,
    pages_in_flight: usize,
}

/// How long attribute history is kept unless configured otherwise (`ATTRIBUTE_HISTORY_DAYS`).
pub const DEFAULT_ATTRIBUTE_HISTORY_DAYS: i64 = 90;

impl std::fmt::Debug for Worker {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Worker")
            .field("worker_id", &self.worker_id)
            .finish()
    }
}

impl Worker {
    /// A worker named `worker_id`.
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        credentials: CredentialStore,
        factory: Arc<dyn ProviderFactory>,
        worker_id: impl Into<String>,
    ) -> Self {
        let worker_id = worker_id.into();
        Self {
            queue: JobQueue::new(db.clone(), clock.clone(), worker_id.clone()),
            db,
            clock,
            credentials,
            factory,
            worker_id,
            public_base_url: None,
            progress: None,
            observer: None,
            stop: None,
            sync_request_budget: crate::DEFAULT_SYNC_REQUEST_BUDGET,
            analyze: crate::AnalyzeSchedule::every(crate::DEFAULT_ANALYZE_EVERY_ROWS),
            attribute_history_days: DEFAULT_ATTRIBUTE_HISTORY_DAYS,
            slice: crate::SyncSlice::default(),
            pages_in_flight: crate::DEFAULT_PAGES_IN_FLIGHT,
        }
    }

    /// Bounds each sync job to `slice` (`SYNC_SLICE_PAGES`, `SYNC_SLICE_SECONDS`); a sync with
    /// pages left then goes back to the queue behind the jobs already due.
    pub fn with_slice(mut self, slice: crate::SyncSlice) -> Self {
        self.slice = slice;
        self
    }

    /// Writes up to `pages` pages of a sync at once on PostgreSQL (`SYNC_PAGES_IN_FLIGHT`).
    pub fn with_pages_in_flight(mut self, pages: usize) -> Self {
        self.pages_in_flight = pages.max(1);
        self
    }

    /// Keeps attribute history for `days` (the cleanup job removes older rows).
    pub fn with_attribute_history_days(mut self, days: i64) -> Self {
        self.attribute_history_days = days.max(1);
        self
    }

    /// Lets each sync run make at most `calls` API calls (`SYNC_REQUEST_BUDGET`).
    pub fn with_sync_request_budget(mut self, calls: u64) -> Self {
        self.sync_request_budget = calls;
        self
    }

    /// Analyzes the tables syncs grow on `schedule` (`SYNC_ANALYZE_EVERY_ROWS`); give every worker
    /// of a process the same one, so their syncs count together.
    pub fn with_analyze(mut self, schedule: crate::AnalyzeSchedule) -> Self {
        self.analyze = schedule;
        self
    }

    /// The platform's public URL (`PUBLIC_BASE_URL`), to register per-connection webhooks at
    /// `{base}/webhooks/{slug}/{connection_id}`; without it registration jobs fail and retry.
    pub fn with_public_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.public_base_url = Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Where syncs publish progress on SQLite (see [`SyncEngine::with_progress`]).
    pub fn with_progress(mut self, feed: ProgressFeed) -> Self {
        self.progress = Some(feed);
        self
    }

    /// Stops a running sync at its next page boundary once `stop` reads true (shutdown); the
    /// job goes back to the queue for any worker to resume.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Reports sync pages to `observer` (the server's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn EngineObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Claims and runs one due job; `None` when nothing is due.
    pub async fn run_once(&self) -> Result<Option<JobOutcome>, EngineError> {
        let Some(job) = self.queue.claim(JOB_KINDS).await? else {
            return Ok(None);
        };
        let kind = job.kind.clone();
        if let Some(observer) = &self.observer {
            let waited = (self.clock.now().fixed_offset() - job.run_at)
                .to_std()
                .unwrap_or_default();
            observer.job_claimed(&kind, waited);
        }
        let parsed = match Job::from_row(&job.kind, &job.payload) {
            Ok(parsed) => parsed,
            Err(error) => return self.give_up(&job, kind, &error).await,
        };
        // The job's lock is renewed while it runs, so a long sync keeps its job and a dead
        // process's job is free within a minute.
        let lock = self.lock_heartbeat(job.id);
        let executed = self.execute(&parsed).await;
        drop(lock);
        match executed {
            Ok(Ran::Done) => {
                self.queue.complete(&job).await?;
                Ok(Some(JobOutcome::Succeeded { kind }))
            }
            Ok(Ran::Yielded) => {
                // Due now, so behind every job that was due before: the other workspaces waiting
                // get a worker before this run's next slice does.
                self.queue.requeue(&job).await?;
                Ok(Some(JobOutcome::Yielded { kind }))
            }
            Ok(Ran::HeldUntil(until)) => {
                // A second after the holder's lease ends: a live holder renews it (and this job
                // comes back to look again), a dead one's sync is taken over then.
                let run_at = until + chrono::Duration::seconds(1);
                self.queue
                    .defer(&job, run_at, "the sync is held by another worker's lease")
                    .await?;
                Ok(Some(JobOutcome::Deferred { kind }))
            }
            Err(EngineError::Stopped) => {
                self.queue
                    .defer(
                        &job,
                        self.clock.now().fixed_offset(),
                        "stopped at a page boundary for shutdown",
                    )
                    .await?;
                Ok(Some(JobOutcome::Deferred { kind }))
            }
            Err(error) if error.is_permanent() => self.give_up(&job, kind, &error).await,
            Err(error) => {
                let retry_after = match &error {
                    EngineError::Provider(ProviderError::RateLimited { wait, .. }) => {
                        chrono::Duration::from_std(*wait).ok()
                    }
                    _ => None,
                };
                tracing::warn!(job = %job.id, %kind, %error, "job failed");
                self.queue
                    .fail(&job, &error.to_string(), retry_after)
                    .await?;
                Ok(Some(JobOutcome::Failed {
                    kind,
                    error: error.to_string(),
                }))
            }
        }
    }

    /// Ends a job that can never succeed (it does not parse, its connection or credentials are
    /// gone, the connection is disconnected): marked failed at once, not retried.
    async fn give_up(
        &self,
        job: &job_queue::Model,
        kind: String,
        error: &EngineError,
    ) -> Result<Option<JobOutcome>, EngineError> {
        tracing::warn!(job = %job.id, %kind, %error, "job failed for good");
        self.queue.fail_for_good(job, &error.to_string()).await?;
        Ok(Some(JobOutcome::Failed {
            kind,
            error: error.to_string(),
        }))
    }

    async fn execute(&self, job: &Job) -> Result<Ran, EngineError> {
        match job {
            Job::Sync {
                connection_id,
                object_type,
            } => self.sync(*connection_id, object_type).await,
            Job::Validate { connection_id } => {
                let client = self.client(*connection_id).await?;
                ConnectionValidator::new(self.db.clone(), self.clock.clone())
                    .validate(*connection_id, &client)
                    .await?;
                Ok(Ran::Done)
            }
            Job::HealthCheck { connection_id } => {
                let client = self.client(*connection_id).await?;
                HealthMonitor::new(self.db.clone(), self.clock.clone())
                    .check(*connection_id, &client)
                    .await?;
                Ok(Ran::Done)
            }
            Job::RegisterWebhook { connection_id } => self
                .register_webhook(*connection_id)
                .await
                .map(|()| Ran::Done),
            Job::Cleanup => {
                WebhookInbox::new(self.db.clone(), self.clock.clone())
                    .cleanup_expired()
                    .await?;
                IntegrationCache::new(self.db.clone(), self.clock.clone())
                    .cleanup_expired()
                    .await?;
                HealthMonitor::new(self.db.clone(), self.clock.clone())
                    .prune_logs(chrono::Duration::days(crate::HEALTH_LOG_RETENTION_DAYS))
                    .await?;
                let now = self.clock.now().fixed_offset();
                // History ids are UUIDv7 (time-ordered): the oldest rows are a primary-key range.
                let horizon = now - chrono::Duration::days(self.attribute_history_days);
                let boundary = Uuid::new_v7(uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    u64::try_from(horizon.timestamp()).unwrap_or(0),
                    0,
                ));
                entity::entity_attribute_history::Entity::delete_many()
                    .filter(entity::entity_attribute_history::Column::Id.lt(boundary))
                    .filter(entity::entity_attribute_history::Column::ChangedAt.lt(horizon))
                    .exec(&self.db)
                    .await
                    .context("removing attribute history past its retention")?;
                entity::oauth_states::Entity::delete_many()
                    .filter(
                        entity::oauth_states::Column::ExpiresAt.lt(now - chrono::Duration::days(1)),
                    )
                    .exec(&self.db)
                    .await?;
                Ok(Ran::Done)
            }
        }
    }

    async fn sync(&self, connection_id: Uuid, object_type: &str) -> Result<Ran, EngineError> {
        let client = self.client(connection_id).await?;
        let mut engine =
            SyncEngine::new(self.db.clone(), self.clock.clone(), self.worker_id.clone())
                .with_request_budget(self.sync_request_budget)
                .with_analyze(self.analyze.clone())
                .with_slice(self.slice)
                .with_pages_in_flight(self.pages_in_flight);
        if let Some(feed) = &self.progress {
            engine = engine.with_progress(feed.clone());
        }
        if let Some(observer) = &self.observer {
            engine = engine.with_observer(observer.clone());
        }
        if let Some(stop) = &self.stop {
            engine = engine.with_stop(stop.clone());
        }
        // Another worker holding this sync is not a failure, and not the end of this job
        // either: it comes back when that worker's lease ends.
        match engine.claim(connection_id, object_type).await? {
            Some(claim) => match engine
                .run_slice(claim, &client, &ReadOptions::default())
                .await?
            {
                crate::SliceOutcome::Finished(_) => Ok(Ran::Done),
                crate::SliceOutcome::Yielded(_) => Ok(Ran::Yielded),
            },
            None => {
                let until = engine
                    .lease_expiry(connection_id, object_type)
                    .await?
                    .unwrap_or_else(|| self.clock.now().fixed_offset());
                Ok(Ran::HeldUntil(until))
            }
        }
    }

    /// Registers the connection's webhook at the provider and keeps its signing secret sealed;
    /// a connection that already has one is left alone.
    async fn register_webhook(&self, connection_id: Uuid) -> Result<(), EngineError> {
        let connection = self.connection(connection_id).await?;
        if connection.connection_metadata.get("webhook_id").is_some() {
            return Ok(());
        }
        let base_url = self.public_base_url.as_deref().ok_or_else(|| {
            EngineError::InvalidInput("PUBLIC_BASE_URL is needed to register webhooks".to_owned())
        })?;
        let kind = self.kind(&connection).await?;
        let client = self.client(connection_id).await?;
        let endpoint = format!("{base_url}/webhooks/{}/{connection_id}", kind.slug());
        let Some(registration) = client.register_webhook(&endpoint).await? else {
            return Ok(());
        };
        self.credentials
            .set_webhook_secret(connection_id, &registration.secret)
            .await?;
        // Set at the database, so a validation writing the account id at the same time keeps it.
        connections::Entity::update_many()
            .col_expr(
                connections::Column::ConnectionMetadata,
                crate::validation::metadata_with(
                    self.db.get_database_backend(),
                    "webhook_id",
                    &registration.id,
                ),
            )
            .filter(connections::Column::Id.eq(connection_id))
            .exec(&self.db)
            .await
            .context("recording the registered webhook's id")?;
        Ok(())
    }

    async fn connection(&self, connection_id: Uuid) -> Result<connections::Model, EngineError> {
        connections::Entity::find_by_id(connection_id)
            .one(&self.db)
            .await
            .context("reading the connection")?
            .ok_or_else(|| EngineError::NotFound(format!("connection {connection_id}")))
    }

    async fn kind(&self, connection: &connections::Model) -> Result<ProviderKind, EngineError> {
        let definition = definitions::Entity::find()
            .filter(definitions::Column::Id.eq(connection.integration_id))
            .one(&self.db)
            .await
            .context("reading the connection's integration")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("integration {}", connection.integration_id))
            })?;
        ProviderKind::from_slug(&definition.slug).ok_or_else(|| {
            EngineError::InvalidInput(format!("no adapter for `{}`", definition.slug))
        })
    }

    /// An API client for the connection with a fresh access token.
    fn lock_heartbeat(&self, job_id: Uuid) -> Heartbeat {
        let queue = self.queue.clone();
        Heartbeat::spawn(queue.lock_duration(), "job lock", move || {
            let queue = queue.clone();
            async move { queue.renew_lock(job_id).await }
        })
    }

    /// The provider API client of `connection_id` with its current access token (refreshed
    /// when due), as jobs use it; the server also uses it to unregister webhooks on disconnect.
    pub async fn api_client(&self, connection_id: Uuid) -> Result<ProviderClient, EngineError> {
        self.client(connection_id).await
    }

    async fn client(&self, connection_id: Uuid) -> Result<ProviderClient, EngineError> {
        let connection = self.connection(connection_id).await?;
        let kind = self.kind(&connection).await?;
        let config = config_from_json(&connection.connection_metadata);
        let stored = entity::integration_credentials::Entity::find_by_id(connection_id)
            .one(&self.db)
            .await
            .context("reading the connection's credentials")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("credentials of connection {connection_id}"))
            })?;
        let access_token = if stored.credential_type == "API_KEY" {
            self.credentials.load(connection_id).await?.access_token
        } else {
            let oauth = self.factory.oauth(kind, &config)?;
            self.credentials.access_token(connection_id, &oauth).await?
        };
        let client =
            self.factory
                .api(kind, &config, &connection.connection_metadata, access_token)?;
        Ok(
            match connection
                .connection_metadata
                .get("external_account_id")
                .and_then(Value::as_str)
            {
                Some(account) => client.with_account_id(account),
                None => client,
            },
        )
    }
}
