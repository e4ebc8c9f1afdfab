//! The GraphQL API: `POST /graphql` (queries and mutations, bearer JWT), `GET /graphql`
//! (GraphiQL) and `GET /graphql/ws` (subscriptions over a WebSocket). Each request is authenticated, runs its reads in one RLS transaction, and is bounded
//! in depth and complexity. The schema is exported to `apps/server/schema.graphql`.

pub mod auth;
mod context;
pub mod entities;
pub mod errors;
mod mutation;
mod query;
pub mod subscription;
mod types;

use async_graphql::Schema;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse as _};
use axum::routing::get;
use providers::secrecy::SecretString;
use sea_orm::DatabaseConnection;
use tower_http::limit::RequestBodyLimitLayer;

pub use context::{RequestContext, RequestDb};
pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

/// The schema type.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Query depth beyond which a request is refused.
pub const MAX_DEPTH: usize = 12;
/// Query complexity beyond which a request is refused.
pub const MAX_COMPLEXITY: usize = 2_000;

/// The largest GraphQL request body accepted (larger: 413, nothing read beyond it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Builds the schema with its limits.
pub fn schema() -> ApiSchema {
    Schema::build(Query, Mutation::default(), Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema in SDL, as committed in `apps/server/schema.graphql`.
pub fn sdl() -> String {
    schema().sdl()
}

/// What the GraphQL routes need.
#[derive(Clone)]
pub struct GraphqlState {
    /// The pool.
    pub db: DatabaseConnection,
    /// `AUTH_JWT_SECRET`.
    pub jwt_secret: SecretString,
    /// The schema.
    pub schema: ApiSchema,
    /// What mutations that reach the engine need.
    pub engine: EngineHandle,
    /// Sync progress for subscriptions.
    pub progress: integrations::ProgressFeed,
    /// What the process remembers across requests (never tenant data).
    pub caches: Caches,
}

/// What the process remembers across requests: users whose row it upserted, and the integration
/// catalog. Neither holds tenant data.
#[derive(Debug, Clone, Default)]
pub struct Caches {
    /// Users recently upserted.
    pub known_users: std::sync::Arc<auth::KnownUsers>,
    /// The integration catalog.
    pub catalog: std::sync::Arc<entities::IntegrationCatalog>,
}

/// The engine's configuration for mutations: the sealing keyring, the provider clients (absent
/// when no provider is configured: mutations that call one answer `PROVIDER_ERROR`), and the
/// public URL.
#[derive(Clone)]
pub struct EngineHandle {
    /// `TOKEN_ENCRYPTION_KEYS`.
    pub keyring: std::sync::Arc<providers::Keyring>,
    /// Builds provider clients from the server's settings.
    pub factory: Option<std::sync::Arc<dyn integrations::ProviderFactory>>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EngineHandle")
            .field("factory", &self.factory.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for GraphqlState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GraphqlState")
            .finish_non_exhaustive()
    }
}

/// `POST /graphql`, `GET /graphql` and `GET /graphql/ws`.
pub fn router(state: GraphqlState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphiql)
                .post(graphql)
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES)),
        )
        .route("/graphql/ws", get(graphql_ws))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

async fn graphql_ws(
    State(state): State<GraphqlState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let GraphqlState {
                db,
                jwt_secret,
                schema,
                progress,
                ..
            } = state;
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| {
                    subscription::connection_init(payload, db, jwt_secret, progress)
                })
                .serve()
        })
}

async fn graphql(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> axum::response::Response {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let viewer = match auth::authenticate(
        &state.db,
        authorization,
        &state.jwt_secret,
        &state.caches.known_users,
    )
    .await
    {
        Ok(viewer) => viewer.map_err(Into::into),
        Err(error) => {
            tracing::error!(%error, "authenticating a GraphQL request");
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let request_db = match &viewer {
        Ok(viewer) => match RequestDb::begin(&state.db, viewer).await {
            Ok(request_db) => Some(request_db),
            Err(error) => {
                tracing::error!(%error, "opening a GraphQL request's transaction");
                return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
        Err(_) => None,
    };
    let context = RequestContext {
        viewer,
        db: request_db.clone(),
        pool: state.db.clone(),
    };
    let mut request = request
        .into_inner()
        .data(context)
        .data(state.engine.clone());
    // Loaders are per request (their caches never cross tenants) and read through this request's
    // RLS transaction.
    if let Some(request_db) = &request_db {
        request = request
            .data(DataLoader::with_cache(
                entities::AttributesLoader(request_db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ))
            .data(DataLoader::with_cache(
                entities::IntegrationsLoader(request_db.clone(), state.caches.catalog.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ));
    }
    let mut response = state.schema.execute(request).await;
    errors::backfill_codes(&mut response.errors);
    if let Some(request_db) = request_db
        && let Err(error) = request_db.finish(response.errors.is_empty()).await
    {
        tracing::error!(%error, "ending a GraphQL request's transaction");
    }
    GraphQLResponse::from(response).into_response()
}
