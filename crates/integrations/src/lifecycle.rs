//! The stored states of a connection, its syncs and its jobs, as enums (the strings are the
//! seeds' `CHECK` values, named in `migration/README.md`), and the one place each connection
//! state transition is written: [`activate`], [`stop`] (by a user, or by a revoked grant) and
//! [`needs_attention`].
//!
//! Each transition sets the connection's columns, its per-object sync states and its queued jobs
//! together, on the caller's transaction, so no path writes half a state.

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset};
use entity::{
    integration_connections as connections, integration_sync_states as sync_states, job_queue,
};
use sea_orm::sea_query::{Expr, ExprTrait as _, SimpleExpr};
use sea_orm::{ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _};
use uuid::Uuid;

use crate::{ConnectionStatus, EngineError, HealthStatus};

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// The state a stored text names, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(state: $name) -> Self {
                state.as_str().into()
            }
        }
    };
}

stored_enum! {
    /// `integration_connections.status`: where the connection is in its life.
    Lifecycle {
        /// Created; waiting for the OAuth callback (the default).
        PendingAuthorization => "PENDING_AUTHORIZATION",
        /// Connected and in use.
        Active => "ACTIVE",
        /// Paused by a user.
        Paused => "PAUSED",
        /// Failed in a way that needs attention.
        Error => "ERROR",
        /// Disconnected by a user, or its grant revoked.
        Disconnected => "DISCONNECTED",
    }
}

stored_enum! {
    /// `sync_status` of a connection and of each per-object sync state.
    SyncStatus {
        /// Not running (the default).
        Idle => "idle",
        /// A worker holds the lease (or held it and died: see the lease expiry).
        Syncing => "syncing",
        /// The last run failed; the next may run.
        Error => "error",
        /// The connection is disconnected: nothing syncs.
        Disabled => "disabled",
    }
}

stored_enum! {
    /// `job_queue.status`.
    JobStatus {
        /// Waiting for its `run_at`.
        Queued => "queued",
        /// Claimed by a worker (whose lock may have lapsed).
        Running => "running",
        /// Done.
        Succeeded => "succeeded",
        /// Out of attempts, or unable ever to succeed.
        Failed => "failed",
        /// Withdrawn (its connection was disconnected).
        Cancelled => "cancelled",
    }
}

stored_enum! {
    /// `entities.source_type` and `entity_attribute_provenance.source_type` (and the history's):
    /// who or what wrote an entity or a value.
    SourceType {
        /// A user created it (the entities default).
        UserCreated => "USER_CREATED",
        /// A sync wrote it.
        Integration => "INTEGRATION",
        /// An import wrote it.
        Import => "IMPORT",
        /// The API wrote it.
        Api => "API",
        /// A user's value pins it against syncs (provenance only).
        UserOverride => "USER_OVERRIDE",
    }
}

stored_enum! {
    /// `sync_runs.status`.
    RunStatus {
        /// In progress (or its worker died and another resumes it).
        Running => "running",
        /// Finished.
        Succeeded => "succeeded",
        /// Ended in an error.
        Failed => "failed",
    }
}

/// A value for an `UPDATE … SET`.
fn value(value: impl Into<sea_orm::Value>) -> SimpleExpr {
    Expr::value(value)
}

/// The connection is connected and in use again: active, connected, syncs idle from the start
/// (a reconnect may be another account, so every object is read again in full; records match
/// their entities by external id, so nothing is duplicated), no validation error.
pub(crate) async fn activate<C: ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
    now: DateTime<FixedOffset>,
    by: Uuid,
    metadata: serde_json::Value,
) -> Result<(), EngineError> {
    connections::Entity::update_many()
        .col_expr(connections::Column::Status, value(Lifecycle::Active))
        .col_expr(
            connections::Column::ConnectionStatus,
            value(ConnectionStatus::Connected.as_str()),
        )
        .col_expr(connections::Column::ConnectionMetadata, value(metadata))
        .col_expr(connections::Column::SyncStatus, value(SyncStatus::Idle))
        .col_expr(connections::Column::IsActive, value(true))
        .col_expr(
            connections::Column::ValidationError,
            value(Option::<String>::None),
        )
        .col_expr(connections::Column::UpdatedBy, value(by))
        .col_expr(connections::Column::UpdatedAt, value(now))
        .filter(connections::Column::Id.eq(connection_id))
        .exec(db)
        .await
        .context("activate: writing")?;
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::SyncStatus, value(SyncStatus::Idle))
        .col_expr(
            sync_states::Column::SyncCursor,
            value(Option::<String>::None),
        )
        .col_expr(
            sync_states::Column::LastModifiedSync,
            value(Option::<DateTime<FixedOffset>>::None),
        )
        .col_expr(sync_states::Column::UpdatedAt, value(now))
        .filter(sync_states::Column::ConnectionId.eq(connection_id))
        .filter(sync_states::Column::SyncStatus.eq(SyncStatus::Disabled))
        .exec(db)
        .await
        .context("activate: writing")?;
    Ok(())
}

/// Why a connection stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop<'a> {
    /// A user disconnected it (its credentials are deleted by the caller): nothing is checked any
    /// more, so its health is unknown.
    ByUser {
        /// Who.
        by: Uuid,
    },
    /// The provider refused the grant (`invalid_grant`, revoked, uninstalled): the user must
    /// connect again; health is an error and the reason is shown.
    GrantRevoked {
        /// The provider's reason, as shown to users.
        reason: &'a str,
    },
}

/// The connection stops: status disconnected, syncs disabled with their leases released, queued
/// jobs cancelled. A run in progress loses its lease at its next checkpoint.
pub(crate) async fn stop<C: ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
    now: DateTime<FixedOffset>,
    why: Stop<'_>,
) -> Result<(), EngineError> {
    let mut update = connections::Entity::update_many()
        .col_expr(connections::Column::Status, value(Lifecycle::Disconnected))
        .col_expr(
            connections::Column::ConnectionStatus,
            value(ConnectionStatus::Disconnected.as_str()),
        )
        .col_expr(connections::Column::SyncStatus, value(SyncStatus::Disabled))
        .col_expr(connections::Column::UpdatedAt, value(now));
    update = match why {
        Stop::ByUser { by } => update
            .col_expr(
                connections::Column::HealthStatus,
                value(HealthStatus::Unknown.as_str()),
            )
            .col_expr(connections::Column::IsActive, value(false))
            .col_expr(connections::Column::UpdatedBy, value(by)),
        Stop::GrantRevoked { reason } => update
            .col_expr(
                connections::Column::HealthStatus,
                value(HealthStatus::Error.as_str()),
            )
            .col_expr(connections::Column::ValidationError, value(reason))
            .col_expr(connections::Column::LastConnectionValidation, value(now)),
    };
    update
        .filter(connections::Column::Id.eq(connection_id))
        .exec(db)
        .await
        .context("stop: writing")?;
    sync_states::Entity::update_many()
        .col_expr(sync_states::Column::SyncStatus, value(SyncStatus::Disabled))
        .col_expr(
            sync_states::Column::LeaseOwner,
            value(Option::<String>::None),
        )
        .col_expr(
            sync_states::Column::LeaseExpiresAt,
            value(Option::<DateTime<FixedOffset>>::None),
        )
        .col_expr(sync_states::Column::UpdatedAt, value(now))
        .filter(sync_states::Column::ConnectionId.eq(connection_id))
        .exec(db)
        .await
        .context("stop: writing")?;
    job_queue::Entity::update_many()
        .col_expr(job_queue::Column::Status, value(JobStatus::Cancelled))
        .col_expr(job_queue::Column::FinishedAt, value(now))
        .col_expr(job_queue::Column::UpdatedAt, value(now))
        .filter(job_queue::Column::Status.eq(JobStatus::Queued))
        .filter(Expr::cust("job_queue.payload ->> 'connection_id'").eq(connection_id.to_string()))
        .exec(db)
        .await
        .context("stop: writing")?;
    Ok(())
}

/// The connection needs attention for `reason` (its stored webhook secret no longer opens, say):
/// connection status `error` with the reason shown. True when it was not marked so already (the
/// caller logs once, not at every retried delivery).
pub async fn needs_attention<C: ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
    reason: &str,
) -> Result<bool, EngineError> {
    let marked = connections::Entity::update_many()
        .col_expr(
            connections::Column::ConnectionStatus,
            value(ConnectionStatus::Error.as_str()),
        )
        .col_expr(connections::Column::ValidationError, value(reason))
        .filter(connections::Column::Id.eq(connection_id))
        .filter(
            sea_orm::Condition::any()
                .add(connections::Column::ConnectionStatus.ne(ConnectionStatus::Error.as_str()))
                .add(connections::Column::ValidationError.is_null())
                .add(connections::Column::ValidationError.ne(reason)),
        )
        .exec(db)
        .await
        .context("needs_attention: writing")?;
    Ok(marked.rows_affected > 0)
}
