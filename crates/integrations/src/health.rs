//! Health monitoring (seed 001): a check times the provider's account-info call, grades the answer,
//! logs it in `integration_health_logs` (status, short error, response time in ms, when) and sets
//! `last_health_check` and `health_status` on the connection. Old log rows are pruned after a
//! retention period.
//!
//! # Grading
//!
//! | What the call did | `status` |
//! |---|---|
//! | answered within the slow threshold (default 2 s) | `HEALTHY` |
//! | answered, slower than the threshold | `WARNING` |
//! | rate limited ([`ProviderError::RateLimited`]) or out of quota ([`ProviderError::QuotaExhausted`]) | `WARNING` |
//! | failed with 5xx/timeout ([`ProviderError::Unavailable`]) or transport ([`ProviderError::Transport`]) once | `WARNING` |
//! | the same, *repeatedly* (below) | `ERROR` |
//! | grant revoked ([`ProviderError::Reauthorize`]) or token refused ([`ProviderError::Unauthorized`]) | `ERROR` |
//! | anything else (`Rejected`, `NotFound`, `Misconfigured`, `Decode`, …): it will not heal by itself | `ERROR` |
//!
//! **Repeated** means: this check is an outage failure (`Unavailable` or `Transport`) and so were
//! the `repeated_failures - 1` checks logged for the connection just before it (the newest rows by
//! `checked_at`); `repeated_failures` defaults to 3, so three outage failures in a row make
//! `ERROR`, and every further one keeps it there. A rate limit, a success or any other failure in
//! between breaks the run. An outage failure is recognized in the log by the `[unavailable]` or
//! `[transport]` prefix of its `error_message`: every logged failure starts with its kind in
//! brackets, then the provider error's message (which never contains a token), shortened.
//!
//! A health check only reports: it does not change `connection_status` or `status` (validation
//! does that, see [`crate::ConnectionValidator`]).

use anyhow::Context as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use entity::{integration_connections as connections, integration_health_logs as health_logs};
use providers::{Clock, ProviderClient, ProviderError};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _, Set,
};
use uuid::Uuid;

use crate::EngineError;
use crate::validation::{connection_for, short_message};

/// How long health log rows are kept by default.
pub const HEALTH_LOG_RETENTION_DAYS: i64 = 30;

/// The values of `health_status` (on the connection and in each log row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Working properly.
    Healthy,
    /// Minor issues (slow, throttled, one failed call), still functional.
    Warning,
    /// Critical issues; may not be functional.
    Error,
    /// Never checked (the default).
    Unknown,
}

impl HealthStatus {
    /// The stored value: `HEALTHY`, `WARNING`, `ERROR`, `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "HEALTHY",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// The status stored as `value`, if it is one.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Healthy, Self::Warning, Self::Error, Self::Unknown]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// What one health check found.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// The id of the log row written.
    pub log_id: Uuid,
    /// The grade.
    pub status: HealthStatus,
    /// How long the provider took, retries included.
    pub response_time: Duration,
    /// The failure, if the call failed.
    pub error: Option<ProviderError>,
    /// When the check ran (the injected clock).
    pub checked_at: DateTime<FixedOffset>,
}

/// The kind tag a failure is logged with (the bracketed prefix of `error_message`).
pub fn failure_kind(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Reauthorize { .. } => "reauthorize",
        ProviderError::Unauthorized { .. } => "unauthorized",
        ProviderError::RateLimited { .. } => "rate_limited",
        ProviderError::QuotaExhausted { .. } => "quota_exhausted",
        ProviderError::Unavailable { .. } => "unavailable",
        ProviderError::Transport { .. } => "transport",
        ProviderError::NotFound { .. } => "not_found",
        ProviderError::Rejected { .. } => "rejected",
        ProviderError::Misconfigured { .. } => "misconfigured",
        ProviderError::Decode { .. } => "decode",
        ProviderError::CursorExpired { .. } => "cursor_expired",
        _ => "other",
    }
}

/// True for the failures that count towards a run of repeated failures.
fn is_outage(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Unavailable { .. } | ProviderError::Transport { .. }
    )
}

/// True when a logged `error_message` records an outage failure.
fn logged_outage(error_message: Option<&str>) -> bool {
    error_message.is_some_and(|message| {
        message.starts_with("[unavailable]") || message.starts_with("[transport]")
    })
}

/// The `error_message` logged for `error`: its kind in brackets, then its shortened message.
pub fn log_message(error: &ProviderError) -> String {
    format!("[{}] {}", failure_kind(error), short_message(error))
}

/// Grades one check (see the module documentation). `previous_outages` is how many checks logged
/// just before this one were outage failures, counted from the newest and stopping at the first
/// that was not.
pub fn grade(
    result: Result<Duration, &ProviderError>,
    slow_threshold: Duration,
    previous_outages: usize,
    repeated_failures: usize,
) -> HealthStatus {
    match result {
        Ok(response_time) if response_time > slow_threshold => HealthStatus::Warning,
        Ok(_) => HealthStatus::Healthy,
        Err(error) if is_outage(error) => {
            if previous_outages + 1 >= repeated_failures.max(1) {
                HealthStatus::Error
            } else {
                HealthStatus::Warning
            }
        }
        Err(ProviderError::RateLimited { .. } | ProviderError::QuotaExhausted { .. }) => {
            HealthStatus::Warning
        }
        Err(_) => HealthStatus::Error,
    }
}

/// Runs health checks and keeps their log.
#[derive(Debug, Clone)]
pub struct HealthMonitor {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    slow_threshold: Duration,
    repeated_failures: usize,
}

impl HealthMonitor {
    /// A monitor on `db`: slow above 2 s, `ERROR` after 3 outage failures in a row.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            slow_threshold: Duration::from_secs(2),
            repeated_failures: 3,
        }
    }

    /// A successful call slower than `threshold` is graded `WARNING`.
    pub fn with_slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow_threshold = threshold;
        self
    }

    /// This many outage failures in a row (this check included) are graded `ERROR`; at least 1.
    pub fn with_repeated_failures(mut self, n_failures: usize) -> Self {
        self.repeated_failures = n_failures.max(1);
        self
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// Checks `connection_id` with `client`: times the account-info call, grades it, writes one
    /// log row and the connection's `last_health_check` and `health_status` in one transaction.
    ///
    /// Errors, with nothing written: [`EngineError::NotFound`] for an unknown connection,
    /// [`EngineError::InvalidInput`] when `client` talks to another provider than the
    /// connection's. A provider failure is not an error: it is graded.
    pub async fn check(
        &self,
        connection_id: Uuid,
        client: &ProviderClient,
    ) -> Result<HealthCheck, EngineError> {
        connection_for(&self.db, connection_id, client.provider()).await?;

        let started = Instant::now();
        let result = client.validate().await;
        let response_time = started.elapsed();
        let error = result.err();

        let previous_outages = match &error {
            Some(error) if is_outage(error) => {
                self.previous_outages(connection_id, self.repeated_failures.saturating_sub(1))
                    .await?
            }
            _ => 0,
        };
        let status = grade(
            error.as_ref().map_or(Ok(response_time), Err),
            self.slow_threshold,
            previous_outages,
            self.repeated_failures,
        );

        let checked_at = self.now();
        let log_id = Uuid::now_v7();
        let response_ms = i32::try_from(response_time.as_millis()).unwrap_or(i32::MAX);
        let transaction = crate::begin_write(&self.db)
            .await
            .context("check: beginning a transaction")?;
        health_logs::Entity::insert(health_logs::ActiveModel {
            id: Set(log_id),
            connection_id: Set(connection_id),
            status: Set(status.as_str().to_owned()),
            error_message: Set(error.as_ref().map(log_message)),
            response_time: Set(Some(response_ms)),
            checked_at: Set(checked_at),
        })
        .exec_without_returning(&transaction)
        .await
        .context("check: writing")?;
        connections::Entity::update_many()
            .col_expr(
                connections::Column::LastHealthCheck,
                Expr::value(checked_at),
            )
            .col_expr(
                connections::Column::HealthStatus,
                Expr::value(status.as_str()),
            )
            .col_expr(connections::Column::UpdatedAt, Expr::value(checked_at))
            .filter(connections::Column::Id.eq(connection_id))
            .exec(&transaction)
            .await
            .context("check: writing")?;
        transaction.commit().await.context("check: committing")?;

        tracing::info!(
            %connection_id,
            health_status = status.as_str(),
            response_ms,
            error = error.as_ref().map(tracing::field::display),
            "health checked"
        );
        Ok(HealthCheck {
            log_id,
            status,
            response_time,
            error,
            checked_at,
        })
    }

    /// How many of the newest `window` log rows of the connection are outage failures in a row.
    async fn previous_outages(
        &self,
        connection_id: Uuid,
        window: usize,
    ) -> Result<usize, EngineError> {
        if window == 0 {
            return Ok(0);
        }
        let messages = health_logs::Entity::find()
            .select_only()
            .column(health_logs::Column::ErrorMessage)
            .filter(health_logs::Column::ConnectionId.eq(connection_id))
            .order_by_desc(health_logs::Column::CheckedAt)
            .limit(u64::try_from(window).unwrap_or(u64::MAX))
            .into_tuple::<Option<String>>()
            .all(&self.db)
            .await
            .context("previous_outages: reading")?;
        Ok(messages
            .iter()
            .take_while(|message| logged_outage(message.as_deref()))
            .count())
    }

    /// The connection's newest `last` log rows, newest first (rows checked at the same instant
    /// come in no defined order). Unknown connection: [`EngineError::NotFound`].
    pub async fn recent_logs(
        &self,
        connection_id: Uuid,
        last: u64,
    ) -> Result<Vec<health_logs::Model>, EngineError> {
        let exists = connections::Entity::find_by_id(connection_id)
            .select_only()
            .column(connections::Column::Id)
            .into_tuple::<Uuid>()
            .one(&self.db)
            .await
            .context("recent_logs: reading")?;
        if exists.is_none() {
            return Err(EngineError::NotFound(format!("connection {connection_id}")));
        }
        let logs = health_logs::Entity::find()
            .filter(health_logs::Column::ConnectionId.eq(connection_id))
            .order_by_desc(health_logs::Column::CheckedAt)
            .limit(last)
            .all(&self.db)
            .await
            .context("recent_logs: reading")?;
        Ok(logs)
    }

    /// Deletes log rows checked more than `older_than` ago (by the injected clock); returns how
    /// many. The usual retention is [`HEALTH_LOG_RETENTION_DAYS`].
    pub async fn prune_logs(&self, older_than: chrono::Duration) -> Result<u64, EngineError> {
        if older_than < chrono::Duration::zero() {
            return Err(EngineError::InvalidInput(
                "a retention period cannot be negative".to_owned(),
            ));
        }
        let deleted = health_logs::Entity::delete_many()
            .filter(health_logs::Column::CheckedAt.lt(self.now() - older_than))
            .exec(&self.db)
            .await
            .context("prune_logs: writing")?;
        Ok(deleted.rows_affected)
    }
}

#[cfg(test)]
mod tests;
