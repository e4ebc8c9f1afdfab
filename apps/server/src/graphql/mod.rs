//! The GraphQL API: `POST /graphql` (queries and mutations, bearer JWT), `GET /graphql`
//! (queries, or GraphiQL for a browser), `GET /graphql/ws` (subscriptions over a WebSocket).
//! Each request is authenticated, runs its reads in one RLS transaction, and is bounded in depth
//! and complexity; introspection-only queries run on a schema that can do nothing else, with
//! limits the standard introspection query fits. The schema is exported to
//! `apps/server/schema.graphql`.

mod attribute_list;
pub mod auth;
mod conflicts;
mod context;
pub mod cost;
pub mod entities;
pub mod errors;
mod graphiql;
mod history;
pub mod http;
mod mutation;
pub mod node;
mod paging;
mod query;
pub mod subscription;
mod types;

use std::sync::Arc;

use async_graphql::Schema;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::parser::types::OperationType;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use sea_orm::DatabaseConnection;

use self::http::{Media, Params, PersistedQueries, Refusal};

pub use context::{RequestContext, RequestDb};
pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

/// The schema type.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Query depth beyond which a request is refused.
pub const MAX_DEPTH: usize = 12;
/// Query complexity beyond which a request is refused: every field counts 1, a page counts its
/// children once per entity it may hold (`first`, `last`).
pub const MAX_COMPLEXITY: usize = 10_000;
/// The depth limit of an introspection-only query: the standard one (graphql-js's
/// `getIntrospectionQuery()`, GraphiQL's) nests `ofType` to depth 14.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;
/// The complexity limit of an introspection-only query.
pub const INTROSPECTION_MAX_COMPLEXITY: usize = 5_000;

/// The largest GraphQL request body accepted (larger: a JSON 413, nothing read beyond it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Builds the schema with its limits (introspection allowed).
pub fn schema() -> ApiSchema {
    api_schema(true)
}

/// The schema with its limits, answering introspection or not.
fn api_schema(introspection: bool) -> ApiSchema {
    let builder = Schema::build(Query, Mutation::default(), Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY);
    if introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The schema that answers introspection-only queries: deep enough for the standard
/// introspection query, and unable to run anything but introspection.
fn introspection_schema() -> ApiSchema {
    Schema::build(Query, Mutation::default(), Subscription)
        .introspection_only()
        .limit_depth(INTROSPECTION_MAX_DEPTH)
        .limit_complexity(INTROSPECTION_MAX_COMPLEXITY)
        .finish()
}

/// The field names of the `Query` and `Mutation` types of `sdl`.
fn root_fields(sdl: &str) -> std::collections::HashSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
        return std::collections::HashSet::new();
    };
    document
        .definitions
        .iter()
        .filter_map(|definition| match definition {
            TypeSystemDefinition::Type(definition)
                if matches!(definition.node.name.node.as_str(), "Query" | "Mutation") =>
            {
                match &definition.node.kind {
                    TypeKind::Object(object) => Some(
                        object
                            .fields
                            .iter()
                            .map(|field| field.node.name.node.to_string())
                            .collect::<Vec<_>>(),
                    ),
                    _ => None,
                }
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// What the GraphQL routes allow beyond queries and mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiOptions {
    /// `GRAPHQL_INTROSPECTION`: answer `__schema` and `__type`.
    pub introspection: bool,
    /// `GRAPHIQL`: serve GraphiQL on `GET /graphql` for browsers.
    pub graphiql: bool,
}

impl Default for ApiOptions {
    /// Both on (development).
    fn default() -> Self {
        Self {
            introspection: true,
            graphiql: true,
        }
    }
}

/// The schema in SDL, as committed in `apps/server/schema.graphql`.
pub fn sdl() -> String {
    schema().sdl()
}

/// What the GraphQL routes need.
#[derive(Clone)]
pub struct GraphqlState {
    /// The pool of the requests' RLS transactions (the API's login role on PostgreSQL).
    pub db: DatabaseConnection,
    /// The pool of user upserts and of mutations after their checks (the worker role).
    pub worker_db: DatabaseConnection,
    /// Checks bearer tokens.
    pub verifier: Arc<auth::Verifier>,
    /// The schema (without introspection when it is off).
    pub schema: ApiSchema,
    /// The schema answering introspection-only queries, when introspection is on.
    pub introspection: Option<ApiSchema>,
    /// Apollo's persisted queries.
    pub persisted: Arc<PersistedQueries>,
    /// Introspection and GraphiQL.
    pub options: ApiOptions,
    /// GraphQL requests per signed-in user (off when `None`).
    pub per_user: Option<Arc<crate::limits::Limit>>,
    /// The names of the query and mutation roots' fields (all of which need a signed-in user).
    pub root_fields: Arc<std::collections::HashSet<String>>,
    /// What mutations that reach the engine need.
    pub engine: EngineHandle,
    /// Sync progress for subscriptions.
    pub progress: integrations::ProgressFeed,
    /// What the process remembers across requests (never tenant data).
    pub caches: Caches,
    /// How long attribute history is kept.
    pub history_days: i64,
}

/// How many days of attribute history are kept (`ATTRIBUTE_HISTORY_DAYS`): `entity(asOf:)` refuses
/// earlier times.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRetention(pub i64);

/// What the process remembers across requests: users whose row it upserted, and the integration
/// catalog. Neither holds tenant data.
#[derive(Debug, Clone, Default)]
pub struct Caches {
    /// Users recently upserted.
    pub known_users: Arc<auth::KnownUsers>,
    /// The integration catalog.
    pub catalog: Arc<entities::IntegrationCatalog>,
}

/// The engine's configuration for mutations: the sealing keyring, the provider clients (absent
/// when no provider is configured: mutations that call one answer `PROVIDER_ERROR`), and the
/// public URL.
#[derive(Clone)]
pub struct EngineHandle {
    /// `TOKEN_ENCRYPTION_KEYS`.
    pub keyring: Arc<providers::Keyring>,
    /// Builds provider clients from the server's settings.
    pub factory: Option<Arc<dyn integrations::ProviderFactory>>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EngineHandle")
            .field("factory", &self.factory.is_some())
            .finish_non_exhaustive()
    }
}

impl GraphqlState {
    /// The state with user upserts and mutations on `worker_db`.
    #[must_use]
    pub fn with_worker_pool(mut self, worker_db: DatabaseConnection) -> Self {
        self.worker_db = worker_db;
        self
    }

    /// The state with a per-user rate limit.
    #[must_use]
    pub fn with_user_limit(mut self, limit: Option<Arc<crate::limits::Limit>>) -> Self {
        self.per_user = limit;
        self
    }

    /// The state for `db`, with schemas built for `options`.
    pub fn new(
        db: DatabaseConnection,
        verifier: Arc<auth::Verifier>,
        engine: EngineHandle,
        progress: integrations::ProgressFeed,
        options: ApiOptions,
    ) -> Self {
        let schema = api_schema(options.introspection);
        let root_fields = Arc::new(root_fields(&schema.sdl()));
        Self {
            worker_db: db.clone(),
            db,
            verifier,
            per_user: None,
            root_fields,
            schema,
            introspection: options.introspection.then(introspection_schema),
            persisted: Arc::new(PersistedQueries::default()),
            options,
            engine,
            progress,
            caches: Caches::default(),
            history_days: integrations::DEFAULT_ATTRIBUTE_HISTORY_DAYS,
        }
    }

    /// The state keeping `days` of attribute history (`ATTRIBUTE_HISTORY_DAYS`).
    #[must_use]
    pub fn with_history_days(mut self, days: i64) -> Self {
        self.history_days = days;
        self
    }
}

impl std::fmt::Debug for GraphqlState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GraphqlState")
            .finish_non_exhaustive()
    }
}

/// `POST /graphql`, `GET /graphql` (queries, or GraphiQL for a browser), `GET /graphql/ws` and
/// GraphiQL's assets under `/graphql/assets/`. Any other method is a JSON 405.
pub fn router(state: GraphqlState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .fallback(method_not_allowed),
        )
        .route("/graphql/ws", get(graphql_ws))
        .route("/graphql/assets/{name}", get(graphiql::asset))
        .with_state(state)
}

async fn method_not_allowed() -> Response {
    Refusal::method_not_allowed(
        "/graphql takes POST (queries and mutations) and GET (queries)",
        "GET, POST",
    )
    .into_response()
}

async fn graphql_ws(
    State(state): State<GraphqlState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let GraphqlState {
                db,
                worker_db,
                verifier,
                schema,
                progress,
                ..
            } = state;
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| {
                    subscription::connection_init(payload, db, worker_db, verifier, progress)
                })
                .serve()
        })
}

fn media_of(headers: &HeaderMap) -> Result<Media, Refusal> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|value| value.to_str().unwrap_or("\u{fffd}"));
    http::negotiate(accept).ok_or_else(|| {
        Refusal::new(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "accept application/graphql-response+json or application/json",
        )
    })
}

async fn graphql_get(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if state.options.graphiql && http::wants_html(&headers) {
        return graphiql::page();
    }
    let media = match media_of(&headers) {
        Ok(media) => media,
        Err(refusal) => return refusal.into_response(),
    };
    match Params::from_query_string(query.as_deref()) {
        Ok(params) => execute(&state, &headers, Method::GET, media, params).await,
        Err(refusal) => refusal.into_response_as(media),
    }
}

async fn graphql_post(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = match media_of(&headers) {
        Ok(media) => media,
        Err(refusal) => return refusal.into_response(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut parts = content_type.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    let charset_ok = parts
        .filter_map(|param| param.strip_prefix("charset="))
        .all(|charset| charset.trim_matches('"') == "utf-8");
    if !matches!(essence, "application/json" | "application/graphql+json") || !charset_ok {
        return Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as Content-Type: application/json (UTF-8)",
        )
        .into_response_as(media);
    }
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is over {MAX_BODY_BYTES} bytes"),
        )
        .into_response_as(media)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return too_large();
    };
    match Params::from_json(&bytes) {
        Ok(params) => execute(&state, &headers, Method::POST, media, params).await,
        Err(refusal) => refusal.into_response_as(media),
    }
}

async fn execute(
    state: &GraphqlState,
    headers: &HeaderMap,
    method: Method,
    media: Media,
    params: Params,
) -> Response {
    let query = match state.persisted.resolve(&params) {
        Ok(query) => query,
        Err(refusal) => return refusal.into_response_as(media),
    };
    if has_nul(&query, params.variables.as_ref()) {
        return Refusal::request_error(media, "strings may not contain NUL (U+0000)")
            .into_response_as(media);
    }
    // The document's cost is bounded before anything expensive reads it: tokens and nesting
    // before the parser, expanded selections, aliases and depth before the validator.
    let limits = cost::CostLimits::default();
    if let Err(why) = cost::check_text(&query, &limits) {
        return Refusal::request_error(media, why.to_string()).into_response_as(media);
    }
    let document = async_graphql::parser::parse_query(&query).ok();
    if let Some(document) = &document
        && let Err(why) = cost::check_document(document, &limits)
    {
        return Refusal::request_error(media, why.to_string()).into_response_as(media);
    }
    let operation_name = params.operation_name.as_deref();
    if method == Method::GET
        && let Some(document) = &document
        && http::operation_type(document, operation_name)
            .is_some_and(|kind| kind != OperationType::Query)
    {
        return Refusal::method_not_allowed(
            "GET runs queries only: send mutations with POST",
            "POST",
        )
        .into_response_as(media);
    }
    let introspection = document
        .as_ref()
        .is_some_and(|document| http::is_introspection(document, operation_name));
    let schema = match (&state.introspection, introspection) {
        (Some(introspection), true) => introspection,
        (None, true) => {
            let mut refusal = Refusal::request_error(
                media,
                "introspection is off on this server (GRAPHQL_INTROSPECTION)",
            );
            refusal.code = errors::Code::Forbidden.as_str();
            return refusal.into_response_as(media);
        }
        (_, false) => &state.schema,
    };
    let is_mutation = document.as_ref().is_some_and(|document| {
        http::operation_type(document, operation_name) == Some(OperationType::Mutation)
    });
    let selects_api_fields = document.as_ref().is_some_and(|document| {
        http::root_field_names(document, operation_name)
            .iter()
            .any(|name| state.root_fields.contains(name))
    });
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name.clone() {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        request = request.variables(async_graphql::Variables::from_json(
            serde_json::Value::Object(variables),
        ));
    }
    // Parsed once: async-graphql executes the document read above.
    if let Some(document) = document {
        request.set_parsed_query(document);
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let viewer = match auth::authenticate(
        &state.worker_db,
        authorization,
        &state.verifier,
        &state.caches.known_users,
    )
    .await
    {
        Ok(viewer) => viewer.map_err(Into::into),
        Err(error) => {
            tracing::error!(%error, "authenticating a GraphQL request");
            return unavailable().into_response_as(media);
        }
    };
    if let (Ok(viewer), Some(limit)) = (&viewer, &state.per_user)
        && let Err(seconds) = limit.check(&viewer.user_id.to_string())
    {
        return crate::limits::too_many(seconds, "for this user").into_response_as(media);
    }
    // Without a valid token only meta fields (`__typename`, introspection) may run: a document
    // that selects any of the API's own root fields is refused here, before validation or any
    // resolver. (Unknown fields go on to validation, which names them.)
    if let Err(why) = &viewer
        && selects_api_fields
    {
        let message = match why {
            context::AuthErrorCode::Missing => "sign in: send a bearer token",
            context::AuthErrorCode::Invalid => "the bearer token is invalid or expired",
        };
        let mut refusal = Refusal::request_error(media, message);
        refusal.code = errors::Code::Unauthenticated.as_str();
        if media == Media::GraphqlResponse {
            refusal.status = StatusCode::UNAUTHORIZED;
        }
        refusal.headers.push((
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        ));
        return refusal.into_response_as(media);
    }
    // Queries read through one RLS transaction, the request's only pooled connection. Mutations
    // open none: each of their steps takes one connection from the pool and returns it, so a
    // request never holds one connection while waiting for another.
    let request_db = match &viewer {
        Ok(_) if is_mutation => None,
        Ok(viewer) => match RequestDb::begin(&state.db, viewer).await {
            Ok(request_db) => Some(request_db),
            Err(error) => {
                tracing::error!(%error, "opening a GraphQL request's transaction");
                return unavailable().into_response_as(media);
            }
        },
        Err(_) => None,
    };
    let context = RequestContext {
        viewer,
        db: request_db.clone(),
        pool: state.worker_db.clone(),
    };
    let mut request = request
        .data(context)
        .data(state.engine.clone())
        .data(state.progress.clone())
        .data(HistoryRetention(state.history_days));
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
    let mut response = schema.execute(request).await;
    errors::backfill_codes(&mut response.errors);
    if let Some(request_db) = request_db
        && let Err(error) = request_db.finish(response.errors.is_empty()).await
    {
        tracing::error!(%error, "ending a GraphQL request's transaction");
    }
    http::respond(media, &response)
}

/// True when the query text or a variable carries a NUL character, which no column can store
/// (PostgreSQL refuses it in text): refused as the client's input, never an internal error.
fn has_nul(query: &str, variables: Option<&serde_json::Map<String, serde_json::Value>>) -> bool {
    fn in_value(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(in_value),
            serde_json::Value::Object(map) => map
                .iter()
                .any(|(key, value)| key.contains('\0') || in_value(value)),
            _ => false,
        }
    }
    // `\u0000` in a string literal, in any case, without copying the query.
    let escaped = query.as_bytes().windows(6).any(|window| {
        window[0] == b'\\' && window[1].eq_ignore_ascii_case(&b'u') && &window[2..] == b"0000"
    });
    query.contains('\0')
        || escaped
        || variables.is_some_and(|variables| {
            variables
                .iter()
                .any(|(key, value)| key.contains('\0') || in_value(value))
        })
}

/// The database is unavailable (pool exhausted or down): a coded 503 the client may retry.
pub(crate) fn unavailable() -> Refusal {
    let mut refusal = Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "the database is unavailable; retry shortly",
    );
    refusal.headers.push((
        header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    ));
    refusal
}
