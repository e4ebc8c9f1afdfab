//! The API's own GraphQL types, converted from database models and engine types (models are
//! never exposed directly).

use async_graphql::{ComplexObject, Context, Enum, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A GraphQL enum over a column whose values a CHECK constraint bounds: `from_stored` maps the
/// stored text (a value outside the constraint cannot be stored; should one appear, it is logged
/// and read as the fallback named here).
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        $name:ident (fallback $fallback:ident) {
            $( $(#[$variant_meta:meta])* $variant:ident = $stored:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        impl $name {
            /// The variant of a stored value.
            pub fn from_stored(stored: &str) -> Self {
                match stored {
                    $( $stored => Self::$variant, )+
                    other => {
                        tracing::error!(value = other, r#type = stringify!($name), "a stored value outside its CHECK constraint");
                        Self::$fallback
                    }
                }
            }
        }
    };
}

stored_enum! {
    /// Where a connected account is in its life.
    ConnectedAccountStatus (fallback Error) {
        /// Created; waiting for the user to authorize at the provider.
        PendingAuthorization = "PENDING_AUTHORIZATION",
        /// Authorized and in use.
        Active = "ACTIVE",
        /// Kept, but not syncing.
        Paused = "PAUSED",
        /// Failing; needs attention.
        Error = "ERROR",
        /// Disconnected: credentials deleted, nothing runs.
        Disconnected = "DISCONNECTED",
    }
}

stored_enum! {
    /// The outcome of the connection's last validation.
    ValidationStatus (fallback Unknown) {
        /// The provider accepted the credentials.
        Connected = "connected",
        /// The credentials were revoked or removed.
        Disconnected = "disconnected",
        /// The validation failed.
        Error = "error",
        /// A validation is running.
        Validating = "validating",
        /// Not validated yet.
        Unknown = "unknown",
    }
}

stored_enum! {
    /// The outcome of a health check.
    HealthStatus (fallback Unknown) {
        /// The provider answered quickly.
        Healthy = "HEALTHY",
        /// The provider answered slowly or with a transient failure.
        Warning = "WARNING",
        /// The provider failed.
        Error = "ERROR",
        /// Not checked yet.
        Unknown = "UNKNOWN",
    }
}

stored_enum! {
    /// Whether a sync runs.
    SyncStatus (fallback Error) {
        /// No sync running.
        Idle = "idle",
        /// A sync is running.
        Syncing = "syncing",
        /// The last sync failed.
        Error = "error",
        /// Syncing is turned off.
        Disabled = "disabled",
    }
}

stored_enum! {
    /// Where an entity came from.
    EntitySourceType (fallback Api) {
        /// Created by a user.
        UserCreated = "USER_CREATED",
        /// Synced from an integration.
        Integration = "INTEGRATION",
        /// Imported from a file.
        Import = "IMPORT",
        /// Written through the API by another service.
        Api = "API",
    }
}

stored_enum! {
    /// Where an attribute's value came from.
    AttributeSourceType (fallback Api) {
        /// Written when a user created the entity.
        UserCreated = "USER_CREATED",
        /// A user's edit, pinned against syncs.
        UserOverride = "USER_OVERRIDE",
        /// Synced from an integration.
        Integration = "INTEGRATION",
        /// Imported from a file.
        Import = "IMPORT",
        /// Written through the API by another service.
        Api = "API",
    }
}

/// A member's role in a workspace.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Owns the workspace.
    Owner,
    /// Manages connections, mappings and syncs.
    Admin,
    /// Reads and edits entity attributes.
    Member,
}

impl Role {
    /// The stored role name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "OWNER" => Some(Self::Owner),
            "ADMIN" => Some(Self::Admin),
            "MEMBER" => Some(Self::Member),
            _ => None,
        }
    }

    /// Whether the role manages connections.
    pub fn manages(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

/// The signed-in user.
#[derive(SimpleObject, Debug, Clone)]
pub struct Viewer {
    /// Their id.
    pub id: Uuid,
    /// Their email.
    pub email: String,
}

/// A workspace the viewer belongs to.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Workspace {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The viewer's role in it.
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

#[ComplexObject]
impl Workspace {
    /// Its global id (opaque; for `node(id:)`).
    pub(crate) async fn node_id(&self, _ctx: &Context<'_>) -> async_graphql::ID {
        super::node::global_id(super::node::NodeKind::Workspace, self.id)
    }
}

/// An integration of the catalog.
#[derive(SimpleObject, Debug, Clone)]
pub struct Integration {
    /// Its id.
    pub id: Uuid,
    /// Its stable slug (`hubspot`, …).
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// `CRM`, `PAYMENTS`, `SUPPORT` or `EMAIL`.
    pub category: String,
    /// One sentence about it.
    pub description: Option<String>,
    /// What it syncs and how (objects, deletes, webhooks).
    pub capabilities: Json<serde_json::Value>,
    /// How it authenticates (mode and scopes; never a secret).
    pub auth_config: Json<serde_json::Value>,
}

/// A workspace's connection to an account at an integration's provider. (Named
/// `ConnectedAccount` in the schema: Relay tools read any type named `…Connection` as a page.)
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex, name = "ConnectedAccount")]
pub struct IntegrationConnection {
    /// Its id.
    pub id: Uuid,
    /// The workspace.
    pub workspace_id: Uuid,
    /// The integration's slug.
    pub integration_slug: String,
    /// Where it is in its life.
    pub status: ConnectedAccountStatus,
    /// The outcome of its last validation.
    pub connection_status: ValidationStatus,
    /// The outcome of its last health check.
    pub health_status: HealthStatus,
    /// Whether a sync runs.
    pub sync_status: SyncStatus,
    /// Sanitized account facts from the last validation.
    pub account_info: Option<Json<serde_json::Value>>,
    /// The last validation's error.
    pub validation_error: Option<String>,
    /// When it was last validated.
    pub last_connection_validation: Option<DateTime<Utc>>,
    /// When its health was last checked.
    pub last_health_check: Option<DateTime<Utc>>,
    /// When it last finished a sync.
    pub last_sync_at: Option<DateTime<Utc>>,
}

/// Health checks return at most this many log rows per request.
pub const MAX_HEALTH_LOGS: i32 = 100;

/// One health check of a connection.
#[derive(SimpleObject, Debug, Clone)]
pub struct HealthLog {
    /// The outcome.
    pub status: HealthStatus,
    /// What went wrong (sanitized; never a secret).
    pub error_message: Option<String>,
    /// How long the provider took, in milliseconds.
    pub response_time_ms: Option<i32>,
    /// When it ran.
    pub checked_at: DateTime<Utc>,
}

/// The sync state of one object type of a connection.
#[derive(SimpleObject, Debug, Clone)]
pub struct SyncState {
    /// The object type (`contacts`, `tickets`, …).
    pub object_type: String,
    /// Whether a sync of it runs.
    pub status: SyncStatus,
    /// Whether a cursor is stored (the next run is incremental).
    pub has_cursor: bool,
    /// Seconds since the cursor was last checkpointed (absent without a cursor).
    pub cursor_age_seconds: Option<i64>,
    /// Entities created by the last run.
    pub last_sync_created: i32,
    /// Entities updated by the last run.
    pub last_sync_updated: i32,
    /// Entities archived by the last run.
    pub last_sync_deleted: i32,
    /// Attribute values the last run left alone because a user override pins them.
    pub last_sync_conflicts: i32,
    /// The provider's newest modification time seen.
    pub last_modified_sync: Option<DateTime<Utc>>,
    /// When the last run started.
    pub last_sync_started_at: Option<DateTime<Utc>>,
    /// When the last run finished.
    pub last_sync_completed_at: Option<DateTime<Utc>>,
    /// Failures in a row.
    pub error_count: i32,
    /// The last failure.
    pub last_error_message: Option<String>,
    /// When its queued job is due: the running sync's next slice, a retry, or the next scheduled
    /// run (absent when none is queued).
    pub next_run_at: Option<DateTime<Utc>>,
    /// Its queued job's place among the jobs due now, in the order workers claim them (1: the
    /// next claimed; absent when none is queued or it is not due yet).
    pub queue_position: Option<i64>,
}

#[ComplexObject]
impl IntegrationConnection {
    /// Its global id (opaque; for `node(id:)`).
    pub(crate) async fn node_id(&self, _ctx: &Context<'_>) -> async_graphql::ID {
        super::node::global_id(super::node::NodeKind::ConnectedAccount, self.id)
    }

    /// The newest health checks, newest first (`last` ≤ 100).
    #[graphql(complexity = "last.clamp(1, 100) as usize * child_complexity")]
    async fn health_logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10, desc = "How many of the newest checks (1 to 100).")] last: i32,
    ) -> Result<Vec<HealthLog>> {
        if !(1..=MAX_HEALTH_LOGS).contains(&last) {
            return Err(super::errors::error(
                super::errors::Code::BadUserInput,
                format!("`last` must be between 1 and {MAX_HEALTH_LOGS}"),
            ));
        }
        let (_, request_db) = super::query::signed_in(ctx)?;
        let transaction = request_db.lock().await;
        let rows =
            integrations::health_logs(&*transaction, self.id, u64::try_from(last).unwrap_or(1))
                .await
                .map_err(super::errors::engine)?;
        Ok(rows
            .into_iter()
            .map(|row| HealthLog {
                status: HealthStatus::from_stored(&row.status),
                error_message: row.error_message,
                response_time_ms: row.response_time,
                checked_at: row.checked_at.to_utc(),
            })
            .collect())
    }

    /// The sync state of each object type, by object type.
    async fn sync_states(&self, ctx: &Context<'_>) -> Result<Vec<SyncState>> {
        let (_, request_db) = super::query::signed_in(ctx)?;
        let transaction = request_db.lock().await;
        let rows = integrations::sync_states(&*transaction, self.id)
            .await
            .map_err(super::errors::engine)?;
        drop(transaction);
        let now = Utc::now();
        // The queue is not the viewer's to read: the connection's row, read above under RLS,
        // showed they may see it, and only its own jobs are read, on the worker's pool.
        let queued = if rows.is_empty() {
            Vec::new()
        } else {
            let pool = &super::query::request(ctx)?.pool;
            integrations::queued_syncs(pool, self.id, now.fixed_offset())
                .await
                .map_err(super::errors::engine)?
        };
        let utc = |time: Option<DateTime<chrono::FixedOffset>>| time.map(|time| time.to_utc());
        Ok(rows
            .into_iter()
            .map(|row| {
                let has_cursor = row.sync_cursor.is_some();
                let spot = queued
                    .iter()
                    .find(|spot| spot.object_type == row.object_type);
                SyncState {
                    next_run_at: spot.map(|spot| spot.run_at.to_utc()),
                    queue_position: spot
                        .and_then(|spot| spot.position)
                        .map(|position| i64::try_from(position).unwrap_or(i64::MAX)),
                    object_type: row.object_type,
                    status: SyncStatus::from_stored(&row.sync_status),
                    has_cursor,
                    cursor_age_seconds: has_cursor
                        .then(|| (now - row.updated_at.to_utc()).num_seconds().max(0)),
                    last_sync_created: row.last_sync_created,
                    last_sync_updated: row.last_sync_updated,
                    last_sync_deleted: row.last_sync_deleted,
                    last_sync_conflicts: row.last_sync_conflicts,
                    last_modified_sync: utc(row.last_modified_sync),
                    last_sync_started_at: utc(row.last_sync_started_at),
                    last_sync_completed_at: utc(row.last_sync_completed_at),
                    error_count: row.error_count,
                    last_error_message: row.last_error_message,
                }
            })
            .collect())
    }
}
