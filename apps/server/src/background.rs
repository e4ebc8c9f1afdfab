//! The background loops `main` starts beside the HTTP server: workers running queued jobs, the
//! scheduler turning cron schedules into jobs, and (on PostgreSQL) the relay of sync progress
//! from `LISTEN sync_progress` to this process's subscribers. Routers built without them (as
//! tests do) serve requests and queue jobs that nothing runs.

use std::sync::Arc;
use std::time::Duration;

use integrations::{
    JobOutcome, JobQueue, PROGRESS_CHANNEL, ProgressFeed, Scheduler, SyncProgress, Worker,
};
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::AppState;

/// How long an idle worker waits before polling the queue again.
const WORKER_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long a worker waits after the database failed before trying again.
const WORKER_ERROR_BACKOFF: Duration = Duration::from_secs(5);

/// How often the scheduler looks for due work (schedules have minute resolution).
const SCHEDULER_TICK: Duration = Duration::from_secs(60);

/// Workers per process on PostgreSQL (claims use `SKIP LOCKED`); SQLite gets one.
const POSTGRES_WORKERS: u32 = 4;

/// The running background tasks; [`Background::shutdown`] stops them between jobs.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Background {
    /// Asks every loop to stop after its current job and waits until they have.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a background task failed");
            }
        }
    }
}

/// Starts the workers and the scheduler on `state` (the scheduler runs `sync_on_startup` first when
/// `SYNC_ON_STARTUP` is set). `BACKGROUND_WORKERS=0` starts nothing: the process serves the API
/// only, and another process runs the jobs.
pub fn spawn_background(state: &AppState) -> anyhow::Result<Background> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let process_id = format!("{}-{}", hostname(), std::process::id());
    let n_workers = match (
        state.settings.background_workers,
        state.settings.is_sqlite(),
    ) {
        (Some(0), _) => {
            tracing::info!("BACKGROUND_WORKERS=0: no worker and no scheduler in this process");
            return Ok(Background { stop, tasks });
        }
        (Some(_) | None, true) => 1,
        (Some(n), false) => n,
        (None, false) => POSTGRES_WORKERS,
    };
    // One schedule for the process: its workers' syncs count their rows together.
    let analyze = integrations::AnalyzeSchedule::every(state.settings.sync_analyze_every_rows);
    for worker_idx in 0..n_workers {
        let worker = Worker::new(
            state.db.clone(),
            state.clock.clone(),
            state.credentials.clone(),
            state.providers.clone(),
            format!("{process_id}-worker-{worker_idx}"),
        )
        .with_public_base_url(state.settings.public_base_url.clone())
        .with_sync_request_budget(state.settings.sync_request_budget)
        .with_slice(state.settings.sync_slice)
        .with_pages_in_flight(usize::try_from(state.settings.sync_pages_in_flight).unwrap_or(1))
        .with_analyze(analyze.clone())
        .with_attribute_history_days(state.settings.attribute_history_days)
        .with_observer(Arc::new(state.metrics.clone()))
        // On shutdown a running sync stops at its next page boundary (its job goes back to the
        // queue) instead of holding the process until it ends.
        .with_stop(stopped.clone());
        let worker = if state.settings.is_sqlite() {
            worker.with_progress(state.progress.clone())
        } else {
            worker
        };
        tasks.spawn(run_worker(worker, state.metrics.clone(), stopped.clone()));
    }
    let queue = JobQueue::new(
        state.db.clone(),
        state.clock.clone(),
        format!("{process_id}-scheduler"),
    );
    let scheduler = Scheduler::new(
        state.db.clone(),
        state.clock.clone(),
        queue,
        &state.settings.sync_schedules(),
    )?;
    if !state.settings.is_sqlite() {
        tasks.spawn(relay_progress(
            state.db.clone(),
            state.progress.clone(),
            stopped.clone(),
        ));
    }
    tasks.spawn(run_scheduler(
        Arc::new(scheduler),
        state.settings.sync_on_startup,
        stopped,
    ));
    tracing::info!(n_workers, "background worker and scheduler started");
    Ok(Background { stop, tasks })
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "server".to_owned())
}

/// Waits `duration` unless asked to stop first; true when asked to stop.
async fn pause(duration: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => *stopped.borrow(),
        changed = stopped.changed() => changed.is_err() || *stopped.borrow(),
    }
}

async fn run_worker(worker: Worker, metrics: crate::Metrics, mut stopped: watch::Receiver<bool>) {
    // A job is never cancelled halfway: the stop signal is checked between jobs, and a sync also
    // checks it between its pages.
    while !*stopped.borrow() {
        let wait = match worker.run_once().await {
            Ok(Some(JobOutcome::Succeeded { kind })) => {
                tracing::debug!(%kind, "job succeeded");
                metrics.job_run(&kind, "succeeded");
                continue;
            }
            Ok(Some(JobOutcome::Yielded { kind })) => {
                tracing::debug!(%kind, "sync yielded its slice; its next one is queued");
                metrics.job_run(&kind, "yielded");
                continue;
            }
            Ok(Some(JobOutcome::Deferred { kind })) => {
                tracing::debug!(%kind, "job deferred until its sync's lease ends");
                metrics.job_run(&kind, "deferred");
                continue;
            }
            Ok(Some(JobOutcome::Failed { kind, error })) => {
                tracing::warn!(%kind, %error, "job failed");
                metrics.job_run(&kind, "failed");
                continue;
            }
            Ok(None) => WORKER_POLL_INTERVAL,
            Err(error) => {
                tracing::error!(%error, "worker could not claim or record a job");
                WORKER_ERROR_BACKOFF
            }
        };
        if pause(wait, &mut stopped).await {
            break;
        }
    }
}

async fn run_scheduler(
    scheduler: Arc<Scheduler>,
    sync_on_startup: bool,
    mut stopped: watch::Receiver<bool>,
) {
    if sync_on_startup {
        match scheduler.sync_on_startup().await {
            Ok(n_syncs) => tracing::info!(n_syncs, "SYNC_ON_STARTUP: syncs queued"),
            Err(error) => tracing::error!(%error, "SYNC_ON_STARTUP failed"),
        }
    }
    loop {
        match scheduler.tick().await {
            Ok(report) => tracing::debug!(?report, "scheduler tick"),
            Err(error) => tracing::error!(%error, "scheduler tick failed"),
        }
        if pause(SCHEDULER_TICK, &mut stopped).await {
            break;
        }
    }
}

/// Forwards `NOTIFY sync_progress` events (from syncs in any process) to `feed`. The listener
/// reconnects by itself when its connection drops; events sent meanwhile are lost, which costs a
/// watcher some intermediate steps, never data.
async fn relay_progress(
    db: DatabaseConnection,
    feed: ProgressFeed,
    mut stopped: watch::Receiver<bool>,
) {
    let pool = db.get_postgres_connection_pool().clone();
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener
                .listen_all([PROGRESS_CHANNEL, integrations::CHANGES_CHANNEL])
                .await
            {
                Ok(()) => break listener,
                Err(error) => {
                    tracing::error!(%error, "LISTEN sync_progress, entity_changes failed")
                }
            },
            Err(error) => tracing::error!(%error, "the progress relay could not connect"),
        }
        if pause(WORKER_ERROR_BACKOFF, &mut stopped).await {
            return;
        }
    };
    loop {
        tokio::select! {
            notification = listener.recv() => match notification {
                Ok(notification) if notification.channel() == integrations::CHANGES_CHANNEL => {
                    match serde_json::from_str::<integrations::EntityChanges>(notification.payload()) {
                        Ok(changes) => feed.publish_changes(changes),
                        Err(error) => tracing::warn!(%error, "an unreadable entity-change event"),
                    }
                }
                Ok(notification) => {
                    match serde_json::from_str::<SyncProgress>(notification.payload()) {
                        Ok(event) => feed.publish(event),
                        Err(error) => tracing::warn!(%error, "an unreadable progress event"),
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the progress relay lost its connection");
                    if pause(WORKER_ERROR_BACKOFF, &mut stopped).await {
                        return;
                    }
                }
            },
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return;
                }
            }
        }
    }
}
