//! The platform's HTTP server: the only crate that knows HTTP and environment variables. It serves
//! `/healthz`, `/readyz`, `/metrics`, the OAuth callback and the webhook endpoints, and runs the
//! background worker and scheduler; the GraphQL API is added beside these routes.

mod background;
mod cors;
mod demo;
pub mod graphql;
mod health;
pub mod limits;
mod metrics;
mod oauth;
mod observability;
mod runtime;
mod settings;
mod webhooks;

pub use background::{Background, spawn_background};
pub use demo::{DEMO_USER_ID, DEMO_WORKSPACE_ID, DemoAccess, seed_demo};
pub use metrics::Metrics;
pub use observability::init_tracing;
pub use runtime::{AppState, ConfiguredProviders, Services};
pub use settings::{
    AppEnv, DEV_KEYS_DIR, GOOGLE_OIDC_CERTS_URL, LogFormat, ProviderSettings, Settings,
    SettingsError, env_prefix,
};
pub use webhooks::{JwksCache, MAX_WEBHOOK_BODY_BYTES};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use providers::SystemClock;
use sea_orm::DatabaseConnection;
use tower_http::timeout::TimeoutLayer;

/// How long a request may take before it is answered 503 and its work dropped (its transaction
/// rolls back). A WebSocket is past this once upgraded.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The server's routes with their middleware: request ids, tracing spans and metrics.
pub fn router(state: AppState) -> Router {
    let limits = state.settings.rate_limits();
    let webhooks = Router::new()
        .route("/webhooks/{slug}", post(webhooks::app_level))
        .route(
            "/webhooks/{slug}/{connection_id}",
            post(webhooks::per_connection),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            limits::per_webhook_endpoint,
        ))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY_BYTES));
    let graphql = match &state.verifier {
        Some(verifier) => graphql::router(
            graphql::GraphqlState::new(
                state.api_db.clone(),
                verifier.clone(),
                graphql::EngineHandle {
                    keyring: state.sealing.clone(),
                    factory: Some(state.providers.clone()),
                },
                state.progress.clone(),
                graphql::ApiOptions {
                    introspection: state.settings.graphql_introspection,
                    graphiql: state.settings.graphiql,
                },
            )
            .with_user_limit(limits.per_user.clone())
            .with_history_days(state.settings.attribute_history_days)
            .with_worker_pool(state.db.clone()),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            limits::per_ip,
        )),
        None => {
            tracing::warn!(
                "AUTH_JWT_SECRET and AUTH_JWKS_URL are unset: the GraphQL API is not served"
            );
            Router::new()
        }
    };
    let cors = cors::layer(&state.settings);
    let mut routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if state.settings.metrics_bind_addr.is_none() {
        routes = routes.route("/metrics", get(metrics::metrics));
    }
    let routes = routes
        .route("/oauth/callback", get(oauth::callback))
        .merge(webhooks)
        .with_state(state.clone())
        .merge(graphql)
        .fallback(|| async {
            graphql::http::Refusal::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
        })
        .route_layer(axum::middleware::from_fn_with_state(state, metrics::track))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(cors);
    observability::layers(routes)
}

/// `/metrics` alone, for `METRICS_BIND_ADDR` (an address only the scraper reaches).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
}

/// The text at `location`: an `http(s)` URL (a JWKS endpoint) or a file path (tests, air-gapped
/// setups).
pub(crate) async fn read_document(location: &str) -> anyhow::Result<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        Ok(http_client()?
            .get(location)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    } else {
        Ok(tokio::fs::read_to_string(location).await?)
    }
}

/// An HTTP client for the server's own fetches (signing keys), with the process's TLS provider.
fn http_client() -> anyhow::Result<reqwest::Client> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// Opens the database (migrating it when it is the embedded SQLite default) and returns the state
/// handlers share; background tasks are started separately by [`spawn_background`].
pub async fn connect(settings: &Settings) -> anyhow::Result<AppState> {
    use anyhow::Context as _;
    use migration::MigratorTrait as _;

    let worker_url = match (&settings.worker_database_url, settings.is_sqlite()) {
        (Some(url), false) => url,
        _ => &settings.database_url,
    };
    let db: DatabaseConnection = migration::connect(worker_url, settings.database_pool_size)
        .await
        .context(if worker_url == &settings.database_url {
            "DATABASE_URL"
        } else {
            "WORKER_DATABASE_URL"
        })?;
    if settings.is_sqlite() {
        migration::Migrator::up(&db, None)
            .await
            .context("migrating the embedded SQLite database")?;
        tracing::info!("embedded SQLite database migrated");
    }
    let mut state = AppState::new(db, settings.clone(), Arc::new(SystemClock))?;
    if let (Some(url), false) = (&settings.api_database_url, settings.is_sqlite()) {
        let api_db = migration::connect(url, settings.database_pool_size)
            .await
            .context("API_DATABASE_URL")?;
        state = state.with_api_pool(api_db);
    } else if !settings.is_sqlite() {
        tracing::warn!(
            "API_DATABASE_URL is unset: GraphQL requests use the server's main database role; see README (database roles)"
        );
    }
    match graphql::auth::Verifier::new(settings.auth()).await {
        Ok(verifier) => Ok(state.with_verifier(Arc::new(verifier))),
        Err(graphql::auth::VerifierError::NoKeys) => Ok(state),
        Err(error) => Err(error.into()),
    }
}

/// Opens the database as [`connect`] does and returns the router, without background tasks.
pub async fn build(settings: &Settings) -> anyhow::Result<Router> {
    Ok(router(connect(settings).await?))
}
