//! Connection validation (seed 000): asks the provider who the connected account is, and records
//! the answer on the connection — `connection_status`, `last_connection_validation`, a sanitized
//! `account_info`, `validation_error` — plus the account id in `connection_metadata` (where webhook
//! routing finds it) and a one-hour copy in `integration_cache`.
//!
//! # The `connection_status` state machine
//!
//! ```text
//!            validate()                    success
//! unknown ─────────────┐           ┌─────────────────────────────► connected
//! connected ───────────┤           │  Reauthorize | Unauthorized
//! error ───────────────┼─► validating ──────────────────────────────► disconnected
//! disconnected ────────┘           │  any other failure
//!                                  └─────────────────────────────► error
//! ```
//!
//! - `validating` is written (and committed) before the provider is called, so readers see a
//!   validation in flight.
//! - `connected`: `account_info` holds `{external_account_id, display_name, details}` and nothing
//!   else (never a token), `validation_error` is cleared, `connection_metadata.external_account_id`
//!   is set (other keys kept), and the same account info is cached under [`ACCOUNT_INFO_CACHE_KEY`]
//!   for one hour. The lifecycle `status` is left as it is: the connect flow owns it.
//! - `disconnected`: the grant is gone ([`ProviderError::Reauthorize`]) or the access token was
//!   refused ([`ProviderError::Unauthorized`]). Callers build the [`ProviderClient`] through the
//!   credential store, which refreshes an expiring token first and retries a refused one once, so
//!   a 401 reaching validation means a fresh token was refused too: the user must connect again.
//!   The lifecycle `status` becomes `DISCONNECTED` and `health_status` `ERROR`.
//! - `error`: anything else. Transient failures (rate limits, 5xx, transport; see
//!   [`ProviderError::is_transient`]) and permanent ones (`Rejected`, `Misconfigured`, `Decode`,
//!   `NotFound`, …) alike; [`ValidationOutcome::Failed`] says which, and `validation_error` holds
//!   the provider error's message (which never contains a token).
//!
//! Every outcome records `last_connection_validation`; a connection left in `unknown` or `error`
//! is picked up again an hour later by [`ConnectionValidator::connections_needing_validation`].

use anyhow::Context as _;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::{integration_connections as connections, integration_definitions as definitions};
use providers::{AccountInfo, Clock, ProviderClient, ProviderError, ProviderKind};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ColumnTrait as _, Condition, DatabaseConnection, DbBackend, EntityTrait as _, QueryFilter as _,
    QueryOrder as _, QuerySelect as _,
};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{EngineError, IntegrationCache};

/// The `integration_cache` key under which validated account info is kept.
pub const ACCOUNT_INFO_CACHE_KEY: &str = "account_info";

/// How long cached account info lives, and how long a connection in `unknown` or `error` waits
/// before it needs validating again.
pub fn validation_interval() -> chrono::Duration {
    chrono::Duration::hours(1)
}

/// The most characters of a provider message kept in `validation_error`.
const MAX_ERROR_CHARS: usize = 500;

/// Substrings of a detail key that may name a credential; such details are never stored.
const SECRET_KEY_PARTS: &[&str] = &["token", "secret", "password", "api_key", "apikey"];

/// The values of `integration_connections.connection_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// The last validation succeeded.
    Connected,
    /// The grant is gone: the user must connect again.
    Disconnected,
    /// The last validation failed for another reason.
    Error,
    /// A validation is in flight.
    Validating,
    /// Never validated (the default).
    Unknown,
}

impl ConnectionStatus {
    /// The stored value: `connected`, `disconnected`, `error`, `validating`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Error => "error",
            Self::Validating => "validating",
            Self::Unknown => "unknown",
        }
    }

    /// The status stored as `value`, if it is one.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Connected,
            Self::Disconnected,
            Self::Error,
            Self::Validating,
            Self::Unknown,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    /// Where a validation that failed with `error` leaves the connection: `disconnected` when the
    /// grant is gone or its token refused, `error` otherwise.
    pub fn after_failure(error: &ProviderError) -> Self {
        match error {
            ProviderError::Reauthorize { .. } | ProviderError::Unauthorized { .. } => {
                Self::Disconnected
            }
            _ => Self::Error,
        }
    }
}

/// What one validation found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ValidationOutcome {
    /// The account answered; the connection is `connected`.
    Connected {
        /// The provider's id of the account, also stored in `connection_metadata`.
        external_account_id: String,
        /// The sanitized account info stored in `account_info` and the cache.
        account_info: Value,
    },
    /// The grant is gone or its token refused; the connection is `disconnected` and must be
    /// connected again.
    Disconnected {
        /// Why.
        error: ProviderError,
    },
    /// The validation failed; the connection is `error`.
    Failed {
        /// Why.
        error: ProviderError,
        /// True when the same call may succeed later without anyone changing anything.
        transient: bool,
    },
}

impl ValidationOutcome {
    /// The outcome of a validation that failed with `error`.
    pub fn from_error(error: ProviderError) -> Self {
        match ConnectionStatus::after_failure(&error) {
            ConnectionStatus::Disconnected => Self::Disconnected { error },
            _ => Self::Failed {
                transient: error.is_transient(),
                error,
            },
        }
    }

    /// The `connection_status` this outcome leaves.
    pub fn connection_status(&self) -> ConnectionStatus {
        match self {
            Self::Connected { .. } => ConnectionStatus::Connected,
            Self::Disconnected { .. } => ConnectionStatus::Disconnected,
            Self::Failed { .. } => ConnectionStatus::Error,
        }
    }

    /// The provider error, when the validation failed.
    pub fn error(&self) -> Option<&ProviderError> {
        match self {
            Self::Connected { .. } => None,
            Self::Disconnected { error } | Self::Failed { error, .. } => Some(error),
        }
    }
}

/// `info` as stored in `account_info` and the cache: the account id, the display name and the
/// provider's allow-listed details, minus any detail whose key looks like a credential. The
/// response time is not part of it (health logs keep that).
pub fn sanitized_account_info(info: &AccountInfo) -> Value {
    let details: Map<String, Value> = info
        .details
        .iter()
        .filter(|(key, _)| {
            let key = key.to_ascii_lowercase();
            !SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    json!({
        "external_account_id": info.external_account_id,
        "display_name": info.display_name,
        "details": details,
    })
}

/// `value` without any object member whose key names a secret (`token`, `secret`, `password`,
/// `api_key`, at any depth): what the attribute history keeps, with the same rule as
/// [`sanitized_account_info`].
pub fn sanitized_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| {
                    let key = key.to_ascii_lowercase();
                    !SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
                })
                .map(|(key, value)| (key.clone(), sanitized_value(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(sanitized_value).collect()),
        other => other.clone(),
    }
}

/// Validates connections against their providers and records the results.
#[derive(Debug, Clone)]
pub struct ConnectionValidator {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    cache: IntegrationCache,
}

impl ConnectionValidator {
    /// A validator on `db`.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        let cache = IntegrationCache::new(db.clone(), clock.clone());
        Self { db, clock, cache }
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// Validates `connection_id` with `client` (see the module documentation for the states).
    ///
    /// Errors, with nothing written: [`EngineError::NotFound`] for an unknown connection,
    /// [`EngineError::InvalidInput`] when `client` talks to another provider than the
    /// connection's. A provider failure is not an error: it is the returned outcome.
    pub async fn validate(
        &self,
        connection_id: Uuid,
        client: &ProviderClient,
    ) -> Result<ValidationOutcome, EngineError> {
        connection_for(&self.db, connection_id, client.provider()).await?;
        self.set(
            connection_id,
            vec![(
                connections::Column::ConnectionStatus,
                Expr::value(ConnectionStatus::Validating.as_str()),
            )],
        )
        .await?;

        let outcome = match client.validate().await {
            Ok(info) => ValidationOutcome::Connected {
                external_account_id: info.external_account_id.clone(),
                account_info: sanitized_account_info(&info),
            },
            Err(error) => ValidationOutcome::from_error(error),
        };
        self.record(connection_id, &outcome).await?;
        tracing::info!(
            %connection_id,
            connection_status = outcome.connection_status().as_str(),
            error = outcome.error().map(tracing::field::display),
            "connection validated"
        );
        Ok(outcome)
    }

    /// Writes `outcome` on the connection (and, when connected, to the cache).
    async fn record(
        &self,
        connection_id: Uuid,
        outcome: &ValidationOutcome,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let mut columns = vec![
            (
                connections::Column::ConnectionStatus,
                Expr::value(outcome.connection_status().as_str()),
            ),
            (
                connections::Column::LastConnectionValidation,
                Expr::value(now),
            ),
        ];
        match outcome {
            ValidationOutcome::Connected {
                external_account_id,
                account_info,
            } => {
                columns.push((
                    connections::Column::AccountInfo,
                    Expr::value(account_info.clone()),
                ));
                columns.push((
                    connections::Column::ValidationError,
                    Expr::value(Option::<String>::None),
                ));
                columns.push((
                    connections::Column::ConnectionMetadata,
                    self.merged_metadata(external_account_id),
                ));
                self.set(connection_id, columns).await?;
                self.cache
                    .put(
                        connection_id,
                        ACCOUNT_INFO_CACHE_KEY,
                        account_info.clone(),
                        validation_interval(),
                    )
                    .await?;
            }
            ValidationOutcome::Disconnected { error } => {
                let transaction = crate::begin_write(&self.db)
                    .await
                    .context("record: beginning a transaction")?;
                crate::lifecycle::stop(
                    &transaction,
                    connection_id,
                    now,
                    crate::lifecycle::Stop::GrantRevoked {
                        reason: &short_message(error),
                    },
                )
                .await?;
                transaction.commit().await.context("record: committing")?;
            }
            ValidationOutcome::Failed { error, .. } => {
                columns.push((
                    connections::Column::ValidationError,
                    Expr::value(short_message(error)),
                ));
                self.set(connection_id, columns).await?;
            }
        }
        Ok(())
    }

    /// `connection_metadata` with `external_account_id` set to `account_id`, other keys kept. Done
    /// in SQL so a concurrent write of another key is not lost; a metadata value that is not an
    /// object is replaced by one.
    fn merged_metadata(&self, account_id: &str) -> SimpleExpr {
        metadata_with(
            self.db.get_database_backend(),
            "external_account_id",
            account_id,
        )
    }

    /// Updates `columns` (and `updated_at`) of one connection.
    async fn set(
        &self,
        connection_id: Uuid,
        columns: Vec<(connections::Column, SimpleExpr)>,
    ) -> Result<(), EngineError> {
        let mut update = connections::Entity::update_many()
            .col_expr(connections::Column::UpdatedAt, Expr::value(self.now()));
        for (column, value) in columns {
            update = update.col_expr(column, value);
        }
        let updated = update
            .filter(connections::Column::Id.eq(connection_id))
            .exec(&self.db)
            .await
            .context("set: writing")?;
        if updated.rows_affected == 0 {
            return Err(EngineError::NotFound(format!("connection {connection_id}")));
        }
        Ok(())
    }

    /// The seed's rule: active connections (`is_active` and status `ACTIVE`) whose
    /// `connection_status` is `unknown` or `error` and that were not validated in the last hour
    /// (never, or before the injected clock's now minus [`validation_interval`]). Oldest
    /// validation first, never-validated ones before all.
    ///
    /// A connection left in `validating` (its worker died mid-call) is treated like `error`: it is
    /// picked up once its last validation is older than the interval. A validation in flight takes
    /// seconds, and validating twice is harmless.
    pub async fn connections_needing_validation(&self) -> Result<Vec<Uuid>, EngineError> {
        let cutoff = self.now() - validation_interval();
        let ids = connections::Entity::find()
            .select_only()
            .column(connections::Column::Id)
            .filter(connections::Column::IsActive.eq(true))
            .filter(connections::Column::Status.eq(crate::Lifecycle::Active))
            .filter(connections::Column::ConnectionStatus.is_in([
                ConnectionStatus::Unknown.as_str(),
                ConnectionStatus::Error.as_str(),
                ConnectionStatus::Validating.as_str(),
            ]))
            .filter(
                Condition::any()
                    .add(connections::Column::LastConnectionValidation.is_null())
                    .add(connections::Column::LastConnectionValidation.lt(cutoff)),
            )
            .order_by_asc(Expr::cust(
                "CASE WHEN last_connection_validation IS NULL THEN 0 ELSE 1 END",
            ))
            .order_by_asc(connections::Column::LastConnectionValidation)
            .order_by_asc(connections::Column::Id)
            .into_tuple::<Uuid>()
            .all(&self.db)
            .await
            .context("connections_needing_validation: reading")?;
        Ok(ids)
    }
}

/// The connection `connection_id`, checked to be one of `provider`'s.
pub(crate) async fn connection_for(
    db: &DatabaseConnection,
    connection_id: Uuid,
    provider: ProviderKind,
) -> Result<connections::Model, EngineError> {
    let (connection, definition) = connections::Entity::find_by_id(connection_id)
        .find_also_related(definitions::Entity)
        .one(db)
        .await
        .context("connection_for: reading")?
        .ok_or_else(|| EngineError::NotFound(format!("connection {connection_id}")))?;
    let slug = definition.map(|definition| definition.slug);
    if slug.as_deref().and_then(ProviderKind::from_slug) != Some(provider) {
        return Err(EngineError::InvalidInput(format!(
            "connection {connection_id} is not a {provider} connection"
        )));
    }
    Ok(connection)
}

/// The provider error's message, shortened for a column (it never contains a token).
pub(crate) fn short_message(error: &ProviderError) -> String {
    let message = error.to_string();
    match message.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// `connection_metadata` with `key` set to `value` and every other key kept, computed by the
/// database in the UPDATE itself: two jobs writing different keys at once never lose each
/// other's (a read-modify-write in the application would).
pub(crate) fn metadata_with(backend: DbBackend, key: &str, value: &str) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => Expr::cust_with_values(
            "(CASE WHEN jsonb_typeof(connection_metadata) = 'object' THEN connection_metadata \
             ELSE '{}'::jsonb END) || jsonb_build_object($1::text, $2::text)",
            [key.to_owned(), value.to_owned()],
        ),
        _ => Expr::cust_with_values(
            "json_set(CASE WHEN json_valid(connection_metadata) \
             AND json_type(connection_metadata) = 'object' THEN connection_metadata \
             ELSE '{}' END, '$.' || ?, ?)",
            [key.to_owned(), value.to_owned()],
        ),
    }
}
