//! Credentials: a connection's tokens (or API key) stored only sealed, bound to the workspace and
//! connection by the associated data, and handed out fresh. Getting an access token refreshes ahead
//! of expiry, and across every process only one refresh per connection runs at a time: the refresh
//! happens inside a transaction that first locks the credential row (a row lock on PostgreSQL, the
//! write lock on SQLite) and re-reads it, so the waiters find the new token instead of refreshing
//! again. A revoked grant marks the connection disconnected after exactly one provider call, and
//! later requests fail at once without calling the provider.

use anyhow::Context as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::{integration_connections as connections, integration_credentials as credentials};
use providers::secrecy::SecretString;
use providers::{Clock, Keyring, OAuthClient, ProviderError, SealedSecret, TokenSet};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _, QueryFilter as _, Set,
};
use uuid::Uuid;

use crate::EngineError;

/// Refreshes a token set (the OAuth client of the connection's provider, in production).
pub trait TokenRefresher: Send + Sync {
    /// Exchanges `current`'s refresh token for new tokens.
    fn refresh<'a>(
        &'a self,
        current: &'a TokenSet,
    ) -> Pin<Box<dyn Future<Output = Result<TokenSet, ProviderError>> + Send + 'a>>;
}

impl TokenRefresher for OAuthClient {
    fn refresh<'a>(
        &'a self,
        current: &'a TokenSet,
    ) -> Pin<Box<dyn Future<Output = Result<TokenSet, ProviderError>> + Send + 'a>> {
        Box::pin(OAuthClient::refresh(self, current))
    }
}

/// How a connection authenticates, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// OAuth2 tokens.
    OAuth2,
    /// An API key (Stripe).
    ApiKey,
}

impl CredentialKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::OAuth2 => "OAUTH2",
            Self::ApiKey => "API_KEY",
        }
    }
}

/// Sealed storage of connection credentials.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    keyring: Arc<Keyring>,
    refresh_margin: chrono::Duration,
    observer: Option<Arc<dyn crate::EngineObserver>>,
}

/// The associated data binding a sealed credential to its row: a ciphertext copied to another
/// connection (or workspace) does not open.
pub fn credential_binding(workspace_id: Uuid, connection_id: Uuid) -> Vec<u8> {
    format!("workspace:{workspace_id}/connection:{connection_id}/credentials").into_bytes()
}

fn webhook_binding(workspace_id: Uuid, connection_id: Uuid) -> Vec<u8> {
    format!("workspace:{workspace_id}/connection:{connection_id}/webhook_secret").into_bytes()
}

impl CredentialStore {
    /// A store on `db` sealing with `keyring`; tokens are refreshed five minutes before expiry.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, keyring: Arc<Keyring>) -> Self {
        Self {
            db,
            clock,
            keyring,
            refresh_margin: chrono::Duration::minutes(5),
            observer: None,
        }
    }

    /// Reports every refresh's outcome to `observer` (the server's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn crate::EngineObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    async fn observe_refresh<C: ConnectionTrait>(
        &self,
        db: &C,
        connection: &connections::Model,
        outcome: &'static str,
    ) {
        if let Some(observer) = &self.observer {
            match provider_of(db, connection).await {
                Ok(provider) => observer.token_refresh(provider, outcome),
                Err(error) => tracing::debug!(%error, "refresh not observed"),
            }
        }
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    async fn connection<C: ConnectionTrait>(
        &self,
        db: &C,
        connection_id: Uuid,
    ) -> Result<connections::Model, EngineError> {
        connections::Entity::find_by_id(connection_id)
            .one(db)
            .await
            .context("connection: reading")?
            .ok_or_else(|| EngineError::NotFound(format!("connection {connection_id}")))
    }

    /// Stores `tokens` for the connection, sealed, replacing what was there.
    pub async fn store(
        &self,
        connection_id: Uuid,
        kind: CredentialKind,
        tokens: &TokenSet,
    ) -> Result<(), EngineError> {
        let connection = self.connection(&self.db, connection_id).await?;
        let sealed = tokens
            .seal(
                &self.keyring,
                &credential_binding(connection.workspace_id, connection_id),
            )
            .map_err(|error| anyhow::anyhow!("sealing credentials: {error}"))?;
        let now = self.now();
        credentials::Entity::insert(credentials::ActiveModel {
            connection_id: Set(connection_id),
            credential_type: Set(kind.as_str().to_owned()),
            key_id: Set(sealed.key_id),
            sealed_secret: Set(sealed.bytes),
            sealed_webhook_secret: Set(None),
            scopes: Set(Some(tokens.scopes.join(" ")).filter(|scopes| !scopes.is_empty())),
            access_token_expires_at: Set(tokens.expires_at.map(|time| time.fixed_offset())),
            refreshed_at: Set(Some(now)),
            version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(credentials::Column::ConnectionId)
                .update_columns([
                    credentials::Column::CredentialType,
                    credentials::Column::KeyId,
                    credentials::Column::SealedSecret,
                    credentials::Column::Scopes,
                    credentials::Column::AccessTokenExpiresAt,
                    credentials::Column::RefreshedAt,
                    credentials::Column::UpdatedAt,
                ])
                .value(
                    credentials::Column::Version,
                    Expr::cust("integration_credentials.version + 1"),
                )
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .context("store: writing")?;
        Ok(())
    }

    /// The connection's tokens, opened.
    pub async fn load(&self, connection_id: Uuid) -> Result<TokenSet, EngineError> {
        let connection = self.connection(&self.db, connection_id).await?;
        let row = credentials::Entity::find_by_id(connection_id)
            .one(&self.db)
            .await
            .context("load: reading")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("credentials of connection {connection_id}"))
            })?;
        self.open(&connection, &row)
    }

    fn open(
        &self,
        connection: &connections::Model,
        row: &credentials::Model,
    ) -> Result<TokenSet, EngineError> {
        let sealed = SealedSecret {
            key_id: row.key_id.clone(),
            bytes: row.sealed_secret.clone(),
        };
        TokenSet::open(
            &self.keyring,
            &sealed,
            &credential_binding(connection.workspace_id, connection.id),
        )
        .map_err(|error| {
            EngineError::Unexpected(anyhow::anyhow!(
                "opening credentials of {}: {error}",
                connection.id
            ))
        })
    }

    /// A valid access token for the connection, refreshed first when it expires within the
    /// margin. One refresh per connection at a time across processes; `invalid_grant` disconnects
    /// the connection.
    pub async fn access_token(
        &self,
        connection_id: Uuid,
        refresher: &dyn TokenRefresher,
    ) -> Result<SecretString, EngineError> {
        let tokens = self.load(connection_id).await?;
        if !tokens.expires_within(self.clock.now(), self.refresh_margin) {
            return Ok(tokens.access_token);
        }
        let transaction = crate::begin_write(&self.db)
            .await
            .context("access_token: beginning a transaction")?;
        // Take the row's lock first (PostgreSQL: row lock; SQLite: the write lock), then re-read.
        let locked = credentials::Entity::update_many()
            .col_expr(
                credentials::Column::Version,
                Expr::col(credentials::Column::Version),
            )
            .filter(credentials::Column::ConnectionId.eq(connection_id))
            .exec(&transaction)
            .await
            .context("access_token: writing")?;
        if locked.rows_affected == 0 {
            return Err(EngineError::NotFound(format!(
                "credentials of connection {connection_id}"
            )));
        }
        let connection = self.connection(&transaction, connection_id).await?;
        if connection.connection_status == crate::ConnectionStatus::Disconnected.as_str() {
            return Err(EngineError::Provider(ProviderError::Reauthorize {
                provider: provider_of(&transaction, &connection).await?,
                reason: connection
                    .validation_error
                    .unwrap_or_else(|| "the connection is disconnected".to_owned()),
            }));
        }
        let row = credentials::Entity::find_by_id(connection_id)
            .one(&transaction)
            .await
            .context("access_token: reading")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("credentials of connection {connection_id}"))
            })?;
        let current = self.open(&connection, &row)?;
        if !current.expires_within(self.clock.now(), self.refresh_margin) {
            // Another worker refreshed while we waited for the lock.
            transaction
                .commit()
                .await
                .context("access_token: committing")?;
            return Ok(current.access_token);
        }
        match refresher.refresh(&current).await {
            Ok(refreshed) => {
                let sealed = refreshed
                    .seal(
                        &self.keyring,
                        &credential_binding(connection.workspace_id, connection_id),
                    )
                    .map_err(|error| anyhow::anyhow!("sealing credentials: {error}"))?;
                let now = self.now();
                credentials::Entity::update_many()
                    .col_expr(credentials::Column::KeyId, Expr::value(sealed.key_id))
                    .col_expr(credentials::Column::SealedSecret, Expr::value(sealed.bytes))
                    .col_expr(
                        credentials::Column::AccessTokenExpiresAt,
                        Expr::value(refreshed.expires_at.map(|time| time.fixed_offset())),
                    )
                    .col_expr(credentials::Column::RefreshedAt, Expr::value(now))
                    .col_expr(
                        credentials::Column::Version,
                        Expr::col(credentials::Column::Version).add(1),
                    )
                    .col_expr(credentials::Column::UpdatedAt, Expr::value(now))
                    .filter(credentials::Column::ConnectionId.eq(connection_id))
                    .exec(&transaction)
                    .await
                    .context("access_token: writing")?;
                self.observe_refresh(&transaction, &connection, "refreshed")
                    .await;
                transaction
                    .commit()
                    .await
                    .context("access_token: committing")?;
                Ok(refreshed.access_token)
            }
            Err(error @ ProviderError::Reauthorize { .. }) => {
                crate::lifecycle::stop(
                    &transaction,
                    connection_id,
                    self.now(),
                    crate::lifecycle::Stop::GrantRevoked {
                        reason: &error.to_string(),
                    },
                )
                .await?;
                self.observe_refresh(&transaction, &connection, "revoked")
                    .await;
                transaction
                    .commit()
                    .await
                    .context("access_token: committing")?;
                tracing::warn!(%connection_id, "grant revoked; connection marked disconnected");
                Err(EngineError::Provider(error))
            }
            Err(error) => {
                self.observe_refresh(&transaction, &connection, "failed")
                    .await;
                transaction
                    .rollback()
                    .await
                    .context("access_token: rolling back")?;
                Err(EngineError::Provider(error))
            }
        }
    }

    /// Stores the per-account webhook signing secret (Zendesk, Stripe API-key endpoints), sealed
    /// and bound to the connection, beside its credentials.
    pub async fn set_webhook_secret(
        &self,
        connection_id: Uuid,
        secret: &SecretString,
    ) -> Result<(), EngineError> {
        let connection = self.connection(&self.db, connection_id).await?;
        let sealed = self
            .keyring
            .seal_text(
                secret,
                &webhook_binding(connection.workspace_id, connection_id),
            )
            .map_err(|error| anyhow::anyhow!("sealing the webhook secret: {error}"))?;
        let stored = credentials::Entity::update_many()
            .col_expr(
                credentials::Column::SealedWebhookSecret,
                Expr::value(sealed.bytes),
            )
            .col_expr(credentials::Column::UpdatedAt, Expr::value(self.now()))
            // The webhook secret shares the row's key id: re-seal the credentials first after a
            // rotation (they are, whenever the token refreshes).
            .filter(credentials::Column::KeyId.eq(sealed.key_id))
            .filter(credentials::Column::ConnectionId.eq(connection_id))
            .exec(&self.db)
            .await
            .context("set_webhook_secret: writing")?;
        if stored.rows_affected == 0 {
            return Err(EngineError::Conflict(format!(
                "connection {connection_id} has no credentials sealed with the current key; reconnect or refresh first"
            )));
        }
        Ok(())
    }

    /// The per-account webhook signing secret, if one was set.
    pub async fn webhook_secret(
        &self,
        connection_id: Uuid,
    ) -> Result<Option<SecretString>, EngineError> {
        let connection = self.connection(&self.db, connection_id).await?;
        let Some(row) = credentials::Entity::find_by_id(connection_id)
            .one(&self.db)
            .await
            .context("webhook_secret: reading")?
        else {
            return Ok(None);
        };
        let Some(bytes) = row.sealed_webhook_secret else {
            return Ok(None);
        };
        let secret = self
            .keyring
            .open_text(
                &SealedSecret {
                    key_id: row.key_id,
                    bytes,
                },
                &webhook_binding(connection.workspace_id, connection_id),
            )
            .map_err(|error| {
                EngineError::Unexpected(anyhow::anyhow!(
                    "opening the webhook secret of {connection_id}: {error}"
                ))
            })?;
        Ok(Some(secret))
    }

    /// Deletes the connection's credentials; returns whether there were any.
    pub async fn delete(&self, connection_id: Uuid) -> Result<bool, EngineError> {
        let deleted = credentials::Entity::delete_by_id(connection_id)
            .exec(&self.db)
            .await
            .context("delete: writing")?;
        Ok(deleted.rows_affected > 0)
    }
}

async fn provider_of<C: ConnectionTrait>(
    db: &C,
    connection: &connections::Model,
) -> Result<providers::ProviderKind, EngineError> {
    let definition = entity::integration_definitions::Entity::find_by_id(connection.integration_id)
        .one(db)
        .await
        .context("provider_of: reading")?
        .ok_or_else(|| {
            EngineError::NotFound(format!("integration {}", connection.integration_id))
        })?;
    providers::ProviderKind::from_slug(&definition.slug)
        .ok_or_else(|| EngineError::InvalidInput(format!("no adapter for `{}`", definition.slug)))
}
