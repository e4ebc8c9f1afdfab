//! The connection lifecycle. Start: a single-use OAuth `state` (stored as a hash) with the PKCE
//! verifier stored sealed, bound to the user, workspace and integration, expiring in 10 minutes.
//! Complete: the state is consumed atomically, the code exchanged, the tokens sealed, provider facts
//! (`instance_url`, subdomain, portal id, …) recorded in `connection_metadata`, the connection made
//! active, and its validation and first sync queued. Stripe connects by API key. Disconnect revokes
//! at the provider where it can, deletes the credentials, sets the statuses and stops syncs. There
//! is one connection per (workspace, integration).

use anyhow::Context as _;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::{
    integration_connections as connections, integration_definitions as definitions, oauth_states,
};
use providers::secrecy::{ExposeSecret as _, SecretString};
use providers::{
    AuthMode, Clock, ConnectionConfig, IntercomRegion, Keyring, OAuthClient, ProviderError,
    ProviderKind, ProviderSpec, Revocation, SealedSecret, TokenSet,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, Set};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::jobs::{Job, NewJob, enqueue_on};
use crate::lifecycle::Lifecycle;
use crate::{CredentialKind, CredentialStore, EngineError};

/// How long an authorization may take before its `state` expires.
pub const OAUTH_STATE_LIFETIME_MINUTES: i64 = 10;

/// A request to connect an integration by OAuth.
#[derive(Debug, Clone)]
pub struct StartConnection {
    /// The workspace connecting.
    pub workspace_id: Uuid,
    /// The user starting it (an OWNER or ADMIN; the caller checks the role).
    pub user_id: Uuid,
    /// The catalog slug (`hubspot`, …).
    pub integration_slug: String,
    /// Per-connection settings (Zendesk subdomain, Salesforce sandbox, Intercom region).
    pub config: ConnectionConfig,
}

/// A started authorization.
#[derive(Debug, Clone)]
pub struct Started {
    /// The pending connection.
    pub connection_id: Uuid,
    /// Where to send the user.
    pub authorization_url: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Clone)]
pub struct OAuthCallback {
    /// The `state` parameter.
    pub state: String,
    /// The authorization code, when the user agreed.
    pub code: Option<String>,
    /// The provider's error (`access_denied`), when the user refused or something failed.
    pub error: Option<String>,
    /// The signed-in user the callback arrived for.
    pub user_id: Uuid,
}

/// The outcome of a disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnected {
    /// What the provider did with the grant, if it was asked; `None` for API keys or when no
    /// OAuth client was given.
    pub revocation: Option<Result<Revocation, ProviderError>>,
}

/// Connects and disconnects integrations.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    keyring: Arc<Keyring>,
    credentials: CredentialStore,
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn verifier_binding(state_hash: &str) -> Vec<u8> {
    format!("oauth_state:{state_hash}/pkce_verifier").into_bytes()
}

/// The per-connection settings as stored in `oauth_states.provider_config` and `connection_metadata`.
pub fn config_to_json(config: &ConnectionConfig) -> Value {
    let mut map = Map::new();
    if let Some(subdomain) = &config.zendesk_subdomain {
        map.insert("zendesk_subdomain".to_owned(), json!(subdomain));
    }
    if config.salesforce_sandbox {
        map.insert("salesforce_sandbox".to_owned(), json!(true));
    }
    if let Some(region) = config.intercom_region {
        let name = match region {
            IntercomRegion::Us => "us",
            IntercomRegion::Eu => "eu",
            IntercomRegion::Au => "au",
        };
        map.insert("intercom_region".to_owned(), json!(name));
    }
    Value::Object(map)
}

/// Reads settings written by [`config_to_json`].
pub fn config_from_json(value: &Value) -> ConnectionConfig {
    ConnectionConfig {
        zendesk_subdomain: value
            .get("zendesk_subdomain")
            .and_then(Value::as_str)
            .map(str::to_owned),
        salesforce_sandbox: value
            .get("salesforce_sandbox")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        intercom_region: value
            .get("intercom_region")
            .and_then(Value::as_str)
            .and_then(IntercomRegion::from_name),
    }
}

impl ConnectionManager {
    /// A manager on `db`, sealing with `keyring`.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, keyring: Arc<Keyring>) -> Self {
        let credentials = CredentialStore::new(db.clone(), clock.clone(), keyring.clone());
        Self {
            db,
            clock,
            keyring,
            credentials,
        }
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    async fn definition(
        &self,
        slug: &str,
    ) -> Result<(definitions::Model, ProviderKind), EngineError> {
        let definition = definitions::Entity::find()
            .filter(definitions::Column::Slug.eq(slug))
            .filter(definitions::Column::Active.eq(true))
            .one(&self.db)
            .await
            .context("definition: reading")?
            .ok_or_else(|| EngineError::NotFound(format!("integration `{slug}`")))?;
        let kind = ProviderKind::from_slug(&definition.slug).ok_or_else(|| {
            EngineError::InvalidInput(format!("no adapter for integration `{slug}`"))
        })?;
        Ok((definition, kind))
    }

    /// The pending connection for (workspace, integration): the existing row unless it is active,
    /// or a new one.
    async fn pending_connection(
        &self,
        workspace_id: Uuid,
        integration_id: Uuid,
        user_id: Uuid,
        metadata: Value,
    ) -> Result<Uuid, EngineError> {
        let now = self.now();
        let existing = connections::Entity::find()
            .filter(connections::Column::WorkspaceId.eq(workspace_id))
            .filter(connections::Column::IntegrationId.eq(integration_id))
            .one(&self.db)
            .await
            .context("pending_connection: reading")?;
        match existing {
            Some(connection) if connection.status == Lifecycle::Active.as_str() => {
                Err(EngineError::Conflict(format!(
                    "this workspace is already connected to the integration (connection {}); disconnect it first",
                    connection.id
                )))
            }
            Some(connection) => {
                connections::Entity::update_many()
                    .col_expr(
                        connections::Column::Status,
                        Expr::value(Lifecycle::PendingAuthorization),
                    )
                    .col_expr(
                        connections::Column::ConnectionMetadata,
                        Expr::value(metadata),
                    )
                    .col_expr(connections::Column::UpdatedBy, Expr::value(user_id))
                    .col_expr(connections::Column::UpdatedAt, Expr::value(now))
                    .filter(connections::Column::Id.eq(connection.id))
                    .exec(&self.db)
                    .await
                    .context("pending_connection: writing")?;
                Ok(connection.id)
            }
            None => {
                let id = Uuid::new_v4();
                connections::Entity::insert(connections::ActiveModel {
                    id: Set(id),
                    workspace_id: Set(workspace_id),
                    integration_id: Set(integration_id),
                    status: Set(Lifecycle::PendingAuthorization.as_str().to_owned()),
                    connection_metadata: Set(metadata),
                    created_at: Set(now),
                    updated_at: Set(now),
                    created_by: Set(Some(user_id)),
                    updated_by: Set(Some(user_id)),
                    ..Default::default()
                })
                .exec_without_returning(&self.db)
                .await
                .context("pending_connection: writing")?;
                Ok(id)
            }
        }
    }

    /// Starts an OAuth connection: returns the provider's authorization URL. `oauth` is the
    /// client for the provider, already resolved for `request.config`.
    pub async fn start(
        &self,
        request: StartConnection,
        oauth: &OAuthClient,
    ) -> Result<Started, EngineError> {
        let (definition, _) = self.definition(&request.integration_slug).await?;
        let config = config_to_json(&request.config);
        let connection_id = self
            .pending_connection(
                request.workspace_id,
                definition.id,
                request.user_id,
                config.clone(),
            )
            .await?;
        let authorization = oauth.authorization_request()?;
        let hash = state_hash(authorization.state.expose_secret());
        let sealed = authorization
            .pkce_verifier
            .as_ref()
            .map(|verifier| self.keyring.seal_text(verifier, &verifier_binding(&hash)))
            .transpose()
            .map_err(|error| anyhow::anyhow!("sealing the PKCE verifier: {error}"))?;
        let now = self.now();
        oauth_states::Entity::insert(oauth_states::ActiveModel {
            id: Set(Uuid::new_v4()),
            state_hash: Set(hash),
            workspace_id: Set(request.workspace_id),
            user_id: Set(request.user_id),
            integration_id: Set(definition.id),
            connection_id: Set(Some(connection_id)),
            key_id: Set(sealed.as_ref().map(|sealed| sealed.key_id.clone())),
            sealed_pkce_verifier: Set(sealed.map(|sealed| sealed.bytes)),
            redirect_uri: Set(oauth.redirect_uri().to_owned()),
            provider_config: Set(config),
            expires_at: Set(now + chrono::Duration::minutes(OAUTH_STATE_LIFETIME_MINUTES)),
            consumed_at: Set(None),
            created_at: Set(now),
        })
        .exec_without_returning(&self.db)
        .await
        .context("start: writing")?;
        Ok(Started {
            connection_id,
            authorization_url: authorization.url,
        })
    }

    /// Completes an OAuth connection from the provider's callback. `oauth_for` builds the
    /// provider's OAuth client for the connection's settings (the state says which integration).
    pub async fn complete(
        &self,
        callback: OAuthCallback,
        oauth_for: &(
             dyn Fn(ProviderKind, &ConnectionConfig) -> Result<OAuthClient, EngineError> + Sync
         ),
    ) -> Result<Uuid, EngineError> {
        let hash = state_hash(&callback.state);
        let now = self.now();
        let state = oauth_states::Entity::find()
            .filter(oauth_states::Column::StateHash.eq(hash.clone()))
            .one(&self.db)
            .await
            .context("complete: reading")?
            .ok_or_else(|| EngineError::InvalidInput("unknown authorization state".to_owned()))?;
        if state.user_id != callback.user_id {
            return Err(EngineError::Forbidden(
                "the authorization was started by another user".to_owned(),
            ));
        }
        let consumed = oauth_states::Entity::update_many()
            .col_expr(oauth_states::Column::ConsumedAt, Expr::value(now))
            .filter(oauth_states::Column::Id.eq(state.id))
            .filter(oauth_states::Column::ConsumedAt.is_null())
            .filter(oauth_states::Column::ExpiresAt.gt(now))
            .exec(&self.db)
            .await
            .context("complete: writing")?;
        if consumed.rows_affected != 1 {
            return Err(EngineError::Conflict(
                "the authorization state has expired or was already used; start again".to_owned(),
            ));
        }
        let connection_id = state.connection_id.ok_or_else(|| {
            EngineError::NotFound("the connection of this authorization".to_owned())
        })?;
        let definition = definitions::Entity::find_by_id(state.integration_id)
            .one(&self.db)
            .await
            .context("complete: reading")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("integration {}", state.integration_id))
            })?;
        let kind = ProviderKind::from_slug(&definition.slug).ok_or_else(|| {
            EngineError::InvalidInput(format!("no adapter for `{}`", definition.slug))
        })?;
        if let Some(error) = callback.error {
            return Err(EngineError::Provider(ProviderError::Rejected {
                provider: kind,
                status: 400,
                message: error.chars().take(200).collect(),
            }));
        }
        let code = callback.code.ok_or_else(|| {
            EngineError::InvalidInput("the callback has neither a code nor an error".to_owned())
        })?;
        let verifier = match (state.key_id, state.sealed_pkce_verifier) {
            (Some(key_id), Some(bytes)) => Some(
                self.keyring
                    .open_text(&SealedSecret { key_id, bytes }, &verifier_binding(&hash))
                    .map_err(|error| anyhow::anyhow!("opening the PKCE verifier: {error}"))?,
            ),
            _ => None,
        };
        let config = config_from_json(&state.provider_config);
        let oauth = oauth_for(kind, &config)?;
        let tokens = oauth.exchange_code(&code, verifier.as_ref()).await?;
        self.credentials
            .store(connection_id, CredentialKind::OAuth2, &tokens)
            .await?;
        let mut metadata = state
            .provider_config
            .as_object()
            .cloned()
            .unwrap_or_default();
        metadata.extend(tokens.metadata.clone());
        self.activate(
            connection_id,
            kind,
            callback.user_id,
            Value::Object(metadata),
        )
        .await?;
        Ok(connection_id)
    }

    /// Connects Stripe with an API key entered by an admin (a restricted key is recommended).
    pub async fn connect_with_api_key(
        &self,
        workspace_id: Uuid,
        user_id: Uuid,
        integration_slug: &str,
        api_key: &SecretString,
    ) -> Result<Uuid, EngineError> {
        let (definition, kind) = self.definition(integration_slug).await?;
        if !ProviderSpec::for_provider(kind)
            .auth_modes
            .contains(&AuthMode::ApiKey)
        {
            return Err(EngineError::InvalidInput(format!(
                "{kind} does not connect by API key"
            )));
        }
        let key_kind = providers::check_stripe_api_key(api_key)
            .map_err(|error| EngineError::InvalidInput(error.to_string()))?;
        let metadata =
            json!({"auth_mode": "api_key", "key_kind": format!("{key_kind:?}").to_lowercase()});
        let connection_id = self
            .pending_connection(workspace_id, definition.id, user_id, metadata.clone())
            .await?;
        let tokens = TokenSet {
            access_token: api_key.clone(),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            metadata: Map::new(),
        };
        self.credentials
            .store(connection_id, CredentialKind::ApiKey, &tokens)
            .await?;
        self.activate(connection_id, kind, user_id, metadata)
            .await?;
        Ok(connection_id)
    }

    /// Marks the connection active and connected and queues its validation and first sync, in
    /// one transaction.
    async fn activate(
        &self,
        connection_id: Uuid,
        kind: ProviderKind,
        user_id: Uuid,
        metadata: Value,
    ) -> Result<(), EngineError> {
        let now = self.now();
        let metadata_is_api_key =
            metadata.get("auth_mode").and_then(Value::as_str) == Some("api_key");
        let transaction = crate::begin_write(&self.db)
            .await
            .context("activate: beginning a transaction")?;
        crate::lifecycle::activate(&transaction, connection_id, now, user_id, metadata).await?;
        let stamp = now.timestamp();
        enqueue_on(
            &transaction,
            now,
            NewJob::new(Job::Validate { connection_id })
                .with_key(format!("validate:{connection_id}:{stamp}")),
        )
        .await?;
        let per_connection_webhooks =
            kind == ProviderKind::Zendesk || (kind == ProviderKind::Stripe && metadata_is_api_key);
        if per_connection_webhooks {
            enqueue_on(
                &transaction,
                now,
                NewJob::new(Job::RegisterWebhook { connection_id })
                    .with_key(format!("register_webhook:{connection_id}:{stamp}")),
            )
            .await?;
        }
        for object_type in providers::objects(kind) {
            enqueue_on(
                &transaction,
                now,
                NewJob::new(Job::Sync {
                    connection_id,
                    object_type: (*object_type).to_owned(),
                })
                .with_key(format!(
                    "sync:{connection_id}:{object_type}:connect:{stamp}"
                )),
            )
            .await?;
        }
        transaction.commit().await.context("activate: committing")?;
        Ok(())
    }

    /// The connection, if it belongs to `workspace_id`: another workspace's is "not found".
    async fn workspace_connection(
        &self,
        workspace_id: Uuid,
        connection_id: Uuid,
    ) -> Result<connections::Model, EngineError> {
        connections::Entity::find_by_id(connection_id)
            .filter(connections::Column::WorkspaceId.eq(workspace_id))
            .one(&self.db)
            .await
            .context("workspace_connection: reading")?
            .ok_or_else(|| EngineError::NotFound(format!("connection {connection_id}")))
    }

    /// Replaces the connection's custom field mappings after checking every object is one its
    /// provider syncs, every target is a valid attribute key and — when `provider` (the
    /// connection's API client) is given — every mapped field exists at the provider; a bad
    /// mapping changes nothing.
    pub async fn update_property_mappings(
        &self,
        workspace_id: Uuid,
        connection_id: Uuid,
        user_id: Uuid,
        mappings: Value,
        provider: Option<&providers::ProviderClient>,
    ) -> Result<(), EngineError> {
        let connection = self
            .workspace_connection(workspace_id, connection_id)
            .await?;
        let definition = definitions::Entity::find_by_id(connection.integration_id)
            .one(&self.db)
            .await
            .context("update_property_mappings: reading")?
            .ok_or_else(|| {
                EngineError::NotFound(format!("integration {}", connection.integration_id))
            })?;
        let kind = ProviderKind::from_slug(&definition.slug).ok_or_else(|| {
            EngineError::InvalidInput(format!("no adapter for `{}`", definition.slug))
        })?;
        let objects = mappings.as_object().ok_or_else(|| {
            EngineError::InvalidInput(
                "property mappings are an object keyed by object type".to_owned(),
            )
        })?;
        for object_type in objects.keys() {
            if !providers::objects(kind).contains(&object_type.as_str()) {
                return Err(EngineError::InvalidInput(format!(
                    "{kind} has no object `{object_type}`; it syncs {}",
                    providers::objects(kind).join(", ")
                )));
            }
            crate::object_mapping(kind, object_type, Some(&mappings))?;
            // With a client, ask the provider whether the mapped fields exist on the object.
            if let (Some(client), Some(fields)) = (provider, objects[object_type].as_object()) {
                let named: Vec<String> = fields.keys().cloned().collect();
                let missing = client.missing_fields(object_type, &named).await?;
                if !missing.is_empty() {
                    return Err(EngineError::InvalidInput(format!(
                        "{kind} {object_type} has no field {}",
                        missing.join(", ")
                    )));
                }
            }
        }
        connections::Entity::update_many()
            .col_expr(connections::Column::PropertyMappings, Expr::value(mappings))
            .col_expr(connections::Column::UpdatedBy, Expr::value(user_id))
            .col_expr(connections::Column::UpdatedAt, Expr::value(self.now()))
            .filter(connections::Column::Id.eq(connection.id))
            .exec(&self.db)
            .await
            .context("update_property_mappings: writing")?;
        Ok(())
    }

    /// Disconnects: removes the registered webhook when `api` is given, revokes at the provider
    /// when `oauth` is given and the connection used OAuth (failures there are reported, not
    /// fatal: the grant is forgotten here regardless), deletes the credentials, disables syncs and
    /// cancels queued jobs of the connection.
    pub async fn disconnect(
        &self,
        workspace_id: Uuid,
        connection_id: Uuid,
        user_id: Uuid,
        oauth: Option<&OAuthClient>,
        api: Option<&providers::ProviderClient>,
    ) -> Result<Disconnected, EngineError> {
        let connection = self
            .workspace_connection(workspace_id, connection_id)
            .await?;
        let webhook_id = connection
            .connection_metadata
            .get("webhook_id")
            .and_then(Value::as_str);
        if let (Some(api), Some(webhook_id)) = (api, webhook_id)
            && let Err(error) = api.unregister_webhook(webhook_id).await
        {
            tracing::warn!(%connection_id, %error, "removing the provider webhook failed; disconnecting anyway");
        }
        let mut revocation = None;
        let stored = entity::integration_credentials::Entity::find_by_id(connection_id)
            .one(&self.db)
            .await
            .context("disconnect: reading")?;
        let uses_oauth =
            stored.is_some_and(|row| row.credential_type == CredentialKind::OAuth2.as_str());
        if let (Some(oauth), true) = (oauth, uses_oauth) {
            let tokens = self.credentials.load(connection_id).await?;
            let outcome = oauth.revoke(&tokens).await;
            if let Err(error) = &outcome {
                tracing::warn!(%connection_id, %error, "revocation at the provider failed; disconnecting anyway");
            }
            revocation = Some(outcome);
        }
        let now = self.now();
        let transaction = crate::begin_write(&self.db)
            .await
            .context("disconnect: beginning a transaction")?;
        entity::integration_credentials::Entity::delete_by_id(connection_id)
            .exec(&transaction)
            .await
            .context("disconnect: writing")?;
        crate::lifecycle::stop(
            &transaction,
            connection.id,
            now,
            crate::lifecycle::Stop::ByUser { by: user_id },
        )
        .await?;
        transaction
            .commit()
            .await
            .context("disconnect: committing")?;
        Ok(Disconnected { revocation })
    }
}
