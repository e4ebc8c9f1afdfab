//! The engine wired to the settings: provider clients built from `PROVIDER_*` variables
//! ([`ConfiguredProviders`], the engine's `ProviderFactory`) and the shared state every handler
//! reaches ([`AppState`]).

use std::sync::Arc;

use integrations::{
    BatchingInbox, ConnectionManager, CredentialStore, EngineError, ProgressFeed, ProviderFactory,
    WebhookInbox,
};
use providers::secrecy::SecretString;
use providers::{
    Clock, ConnectionConfig, HttpCore, Keyring, OAuthClient, OAuthCredentials, ProviderClient,
    ProviderError, ProviderKind, ProviderSpec, RetryPolicy, TokioSleeper,
};
use sea_orm::DatabaseConnection;
use serde_json::Value;

use crate::metrics::Metrics;
use crate::settings::{Settings, SettingsError, env_prefix};
use crate::webhooks::JwksCache;

/// Builds provider clients from the settings: base URL overrides, app credentials, the redirect
/// URI `PUBLIC_BASE_URL/oauth/callback`, and Salesforce's per-org `instance_url`.
#[derive(Debug, Clone)]
pub struct ConfiguredProviders {
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
}

impl ConfiguredProviders {
    /// Clients configured by `settings`, timed by `clock`.
    pub fn new(settings: Arc<Settings>, clock: Arc<dyn Clock>) -> Self {
        Self { settings, clock }
    }

    fn http(&self, kind: ProviderKind) -> Result<HttpCore, ProviderError> {
        HttpCore::new(
            kind,
            RetryPolicy::for_provider(kind),
            self.clock.clone(),
            Arc::new(TokioSleeper),
        )
    }

    fn misconfigured(kind: ProviderKind, reason: String) -> EngineError {
        EngineError::Provider(ProviderError::Misconfigured {
            provider: kind,
            reason,
        })
    }
}

impl ProviderFactory for ConfiguredProviders {
    fn oauth(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
    ) -> Result<OAuthClient, EngineError> {
        let provider = self.settings.provider(kind).cloned().unwrap_or_default();
        let prefix = env_prefix(kind);
        let client_id = provider
            .client_id
            .ok_or_else(|| Self::misconfigured(kind, format!("{prefix}_CLIENT_ID is unset")))?;
        let client_secret = provider
            .client_secret
            .ok_or_else(|| Self::misconfigured(kind, format!("{prefix}_CLIENT_SECRET is unset")))?;
        let mut spec = ProviderSpec::for_provider(kind);
        if let Some(base_url) = &provider.auth_base_url {
            spec = spec.with_auth_base_url(base_url)?;
        }
        let spec = spec.for_connection(config)?;
        Ok(OAuthClient::new(
            spec,
            OAuthCredentials {
                client_id,
                client_secret,
                redirect_uri: self.settings.oauth_redirect_uri(),
            },
            self.http(kind)?,
        )?)
    }

    fn api(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
        metadata: &Value,
        access_token: SecretString,
    ) -> Result<ProviderClient, EngineError> {
        let provider = self.settings.provider(kind).cloned().unwrap_or_default();
        let mut spec = ProviderSpec::for_provider(kind);
        if let Some(base_url) = &provider.api_base_url {
            spec = spec.with_api_base_url(base_url)?;
        }
        let mut spec = spec.for_connection(config)?;
        let mut identity_url = None;
        if kind == ProviderKind::Salesforce {
            // Each org has its own API host, and an identity URL, returned with its tokens.
            if let Some(instance_url) = metadata.get("instance_url").and_then(Value::as_str) {
                spec = spec.with_api_base_url(instance_url)?;
            }
            identity_url = metadata.get("id").and_then(Value::as_str);
        }
        let client = ProviderClient::new(spec, self.http(kind)?, access_token);
        Ok(match identity_url {
            Some(url) => client.with_identity_url(url),
            None => client,
        })
    }
}

/// What every request handler can reach: one shared [`Services`], so the clone each extractor and
/// middleware takes is one reference count, not one per pool, metric and store (those clones were
/// ~4% of the server's CPU under a webhook burst).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The server's pools, settings, stores and feeds.
#[derive(Debug, Clone)]
pub struct Services {
    /// The pool of background work, webhooks, the OAuth callback and mutations after their
    /// checks (`WORKER_DATABASE_URL`, else `DATABASE_URL`).
    pub db: DatabaseConnection,
    /// The pool of GraphQL requests' RLS transactions (`API_DATABASE_URL`; the same pool as `db`
    /// when unset).
    pub api_db: DatabaseConnection,
    /// The settings the server started with.
    pub settings: Arc<Settings>,
    /// The clock (the system's, or a manual one in tests).
    pub clock: Arc<dyn Clock>,
    /// The provider clients.
    pub providers: Arc<ConfiguredProviders>,
    /// Connects and disconnects integrations.
    pub connections: ConnectionManager,
    /// Sealed credentials and per-connection webhook secrets.
    pub credentials: CredentialStore,
    /// Exactly-once intake of verified webhook events, concurrent deliveries sharing a transaction.
    pub inbox: BatchingInbox,
    /// The Prometheus registry and the server's metrics.
    pub metrics: Metrics,
    /// Google's signing keys for Gmail push, fetched on first use.
    pub gmail_keys: Arc<JwksCache>,
    /// The sealing keyring.
    pub sealing: Arc<Keyring>,
    /// Checks the API's bearer tokens; `None` when neither `AUTH_JWT_SECRET` nor `AUTH_JWKS_URL`
    /// is set (the API is not served).
    pub verifier: Option<Arc<crate::graphql::auth::Verifier>>,
    /// Sync progress for `syncProgress` subscribers: fed by the PostgreSQL relay
    /// ([`crate::spawn_background`]) or, on SQLite, by this process's workers.
    pub progress: ProgressFeed,
}

impl AppState {
    /// The state on `db`; fails when `TOKEN_ENCRYPTION_KEYS` is unset or unusable (development
    /// fills it through [`Settings::with_dev_keys`]).
    pub fn new(
        db: DatabaseConnection,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let keyring = Arc::new(settings.keyring()?);
        let settings = Arc::new(settings);
        let metrics = Metrics::new()?;
        Ok(Self(Arc::new(Services {
            providers: Arc::new(ConfiguredProviders::new(settings.clone(), clock.clone())),
            connections: ConnectionManager::new(db.clone(), clock.clone(), keyring.clone()),
            credentials: CredentialStore::new(db.clone(), clock.clone(), keyring.clone())
                .with_observer(Arc::new(metrics.clone())),
            sealing: keyring,
            inbox: BatchingInbox::spawn(WebhookInbox::new(db.clone(), clock.clone())),
            metrics,
            gmail_keys: Arc::new(JwksCache::default()),
            progress: ProgressFeed::default(),
            verifier: crate::graphql::auth::Verifier::unfetched(settings.auth()).map(Arc::new),
            api_db: db.clone(),
            db,
            settings,
            clock,
        })))
    }

    /// The state with GraphQL requests on `api_db` (a pool of the API's login role).
    #[must_use]
    pub fn with_api_pool(mut self, api_db: DatabaseConnection) -> Self {
        Arc::make_mut(&mut self.0).api_db = api_db;
        self
    }

    /// The state with `verifier` (one whose key set was fetched at start).
    #[must_use]
    pub fn with_verifier(mut self, verifier: Arc<crate::graphql::auth::Verifier>) -> Self {
        Arc::make_mut(&mut self.0).verifier = Some(verifier);
        self
    }

    /// The keyring sealing credentials.
    pub fn keyring(&self) -> Result<Keyring, SettingsError> {
        self.settings.keyring()
    }
}
