//! Schedules as jobs: each tick enqueues what is due with a job key naming its time slot — a sync
//! per (connection, object) for the newest firing of the provider's cron schedule, validation of
//! connections the seed's rule selects, an hourly health check, a daily cleanup. Several replicas
//! ticking at once, or one replica ticking twice, enqueue each slot once; ticks missed while every
//! replica was down collapse into the newest slot instead of a backlog.

use anyhow::Context as _;
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Timelike as _, Utc};
use croner::Cron;
use entity::{integration_connections as connections, integration_definitions as definitions};
use providers::{Clock, ProviderKind};
use sea_orm::{
    ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, QuerySelect as _,
    RelationTrait as _,
};
use uuid::Uuid;

use crate::jobs::{Job, JobQueue, NewJob};
use crate::{ConnectionValidator, EngineError};

/// The default sync schedule: every 30 minutes.
pub const DEFAULT_SYNC_SCHEDULE: &str = "*/30 * * * *";

/// What one tick enqueued (jobs that already existed are not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Sync jobs.
    pub syncs: u32,
    /// Validation jobs.
    pub validations: u32,
    /// Health-check jobs.
    pub health_checks: u32,
    /// Cleanup jobs.
    pub cleanups: u32,
}

/// Turns schedules into jobs.
#[derive(Debug, Clone)]
pub struct Scheduler {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    queue: JobQueue,
    schedules: HashMap<ProviderKind, Cron>,
}

impl Scheduler {
    /// A scheduler with a 5-field cron `schedules` entry per provider (`PROVIDER_SYNC_SCHEDULE`);
    /// providers without one use [`DEFAULT_SYNC_SCHEDULE`]. A malformed schedule is refused,
    /// naming its provider.
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        queue: JobQueue,
        schedules: &[(ProviderKind, String)],
    ) -> Result<Self, EngineError> {
        let mut parsed = HashMap::new();
        for kind in ProviderKind::ALL {
            let text = schedules
                .iter()
                .find(|(provider, _)| *provider == kind)
                .map_or(DEFAULT_SYNC_SCHEDULE, |(_, text)| text.as_str());
            let cron: Cron = text.parse().map_err(|error| {
                EngineError::InvalidInput(format!(
                    "{}_SYNC_SCHEDULE `{text}` is not a cron schedule: {error}",
                    kind.slug().to_uppercase()
                ))
            })?;
            parsed.insert(kind, cron);
        }
        Ok(Self {
            db,
            clock,
            queue,
            schedules: parsed,
        })
    }

    /// Active connections with their provider.
    async fn active_connections(&self) -> Result<Vec<(Uuid, ProviderKind)>, EngineError> {
        let rows: Vec<(Uuid, String)> = connections::Entity::find()
            .select_only()
            .column(connections::Column::Id)
            .column(definitions::Column::Slug)
            .join(
                sea_orm::JoinType::InnerJoin,
                connections::Relation::IntegrationDefinitions.def(),
            )
            .filter(connections::Column::Status.eq(crate::Lifecycle::Active))
            .filter(connections::Column::IsActive.eq(true))
            .filter(connections::Column::SyncStatus.ne(crate::SyncStatus::Disabled))
            .into_tuple()
            .all(&self.db)
            .await
            .context("active_connections: reading")?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, slug)| ProviderKind::from_slug(&slug).map(|kind| (id, kind)))
            .collect())
    }

    async fn enqueue(&self, job: NewJob) -> Result<u32, EngineError> {
        Ok(u32::from(self.queue.enqueue(job).await?))
    }

    /// Enqueues everything due now.
    pub async fn tick(&self) -> Result<TickReport, EngineError> {
        let now = self.clock.now();
        let mut report = TickReport::default();
        let hour = now
            .with_minute(0)
            .and_then(|time| time.with_second(0))
            .and_then(|time| time.with_nanosecond(0))
            .unwrap_or(now);
        for (connection_id, kind) in self.active_connections().await? {
            if let Some(slot) = self.latest_slot(kind, now) {
                report.syncs += self
                    .enqueue_syncs(connection_id, kind, &slot.to_rfc3339())
                    .await?;
            }
            report.health_checks += self
                .enqueue(
                    NewJob::new(Job::HealthCheck { connection_id })
                        .with_key(format!("health:{connection_id}:{}", hour.to_rfc3339())),
                )
                .await?;
        }
        let validator = ConnectionValidator::new(self.db.clone(), self.clock.clone());
        for connection_id in validator.connections_needing_validation().await? {
            report.validations += self
                .enqueue(
                    NewJob::new(Job::Validate { connection_id })
                        .with_key(format!("validate:{connection_id}:{}", hour.to_rfc3339())),
                )
                .await?;
        }
        report.cleanups += self
            .enqueue(NewJob::new(Job::Cleanup).with_key(format!("cleanup:{}", now.date_naive())))
            .await?;
        Ok(report)
    }

    /// Enqueues a sync of every object of every active connection (`SYNC_ON_STARTUP`); replicas
    /// starting in the same minute enqueue once.
    pub async fn sync_on_startup(&self) -> Result<u32, EngineError> {
        let now = self.clock.now();
        let minute = now.format("startup:%Y-%m-%dT%H:%M").to_string();
        let mut n_jobs = 0;
        for (connection_id, kind) in self.active_connections().await? {
            n_jobs += self.enqueue_syncs(connection_id, kind, &minute).await?;
        }
        Ok(n_jobs)
    }

    async fn enqueue_syncs(
        &self,
        connection_id: Uuid,
        kind: ProviderKind,
        slot: &str,
    ) -> Result<u32, EngineError> {
        let mut n_jobs = 0;
        for object_type in providers::objects(kind) {
            n_jobs += self
                .enqueue(
                    NewJob::new(Job::Sync {
                        connection_id,
                        object_type: (*object_type).to_owned(),
                    })
                    .with_key(format!("sync:{connection_id}:{object_type}:{slot}")),
                )
                .await?;
        }
        Ok(n_jobs)
    }

    /// The newest firing of the provider's schedule at or before `now`.
    fn latest_slot(&self, kind: ProviderKind, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedules
            .get(&kind)
            .and_then(|cron| cron.find_previous_occurrence(&now, true).ok())
    }
}
