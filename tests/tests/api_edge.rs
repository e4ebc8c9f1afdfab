//! The API's HTTP edge as browsers and stock GraphQL clients meet it, through the server's whole
//! router: CORS, GET queries, content negotiation, persisted queries, JSON refusals, GraphiQL
//! served from the binary, and the settings that switch them (`APP_ENV`, `CORS_ALLOWED_ORIGINS`,
//! `GRAPHQL_INTROSPECTION`, `GRAPHIQL`).

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use server::{AppEnv, AppState, Settings};
use sha2::Digest as _;
use tests::{Backend, TestDb};
use tower::ServiceExt as _;

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SECRET: &str = "an-api-edge-test-secret-of-32-bytes-or-more";

fn settings(extra: &[(&str, &str)]) -> anyhow::Result<Settings> {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    Ok(Settings::from_lookup(move |name| {
        extra
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| match name {
                "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
                "AUTH_JWT_SECRET" => Some(SECRET.to_owned()),
                "API_DATABASE_URL" => Some("postgres://platform_api@127.0.0.1/unused".to_owned()),
                "WORKER_DATABASE_URL" => {
                    Some("postgres://platform_worker@127.0.0.1/unused".to_owned())
                }
                _ => None,
            })
    })?)
}

async fn app(test_db: &TestDb, settings: Settings) -> anyhow::Result<axum::Router> {
    Ok(server::router(AppState::new(
        test_db.db.clone(),
        settings,
        Arc::new(providers::SystemClock),
    )?))
}

async fn send(
    app: &axum::Router,
    request: Request<Body>,
) -> anyhow::Result<(StatusCode, HeaderMap, String)> {
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), 4 << 20).await?;
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn preflight(origin: &str) -> anyhow::Result<Request<Body>> {
    Ok(Request::builder()
        .method(Method::OPTIONS)
        .uri("/graphql")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization,content-type",
        )
        .body(Body::empty())?)
}

fn allow_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn cors_allows_configured_origins_and_loopback_only_in_development() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let development = app(
        &test_db,
        settings(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")])?,
    )
    .await?;
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:3000",
        "https://app.example.com",
    ] {
        let (status, headers, _) = send(&development, preflight(origin)?).await?;
        assert!(status.is_success(), "{origin}: {status}");
        assert_eq!(allow_origin(&headers), Some(origin));
        let allowed_headers = headers
            .get(header::ACCESS_CONTROL_ALLOW_HEADERS)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert!(
            allowed_headers.contains("authorization") && allowed_headers.contains("content-type"),
            "{allowed_headers}"
        );
    }
    for origin in ["https://evil.example", "http://localhost.evil.example"] {
        let (_, headers, _) = send(&development, preflight(origin)?).await?;
        assert_eq!(allow_origin(&headers), None, "{origin}");
    }
    let production = app(
        &test_db,
        settings(&[
            ("APP_ENV", "Production"),
            ("DATABASE_URL", "postgres://unused@127.0.0.1/unused"),
            ("CORS_ALLOWED_ORIGINS", "https://app.example.com/"),
        ])?,
    )
    .await?;
    let (_, headers, _) = send(&production, preflight("http://localhost:5173")?).await?;
    assert_eq!(allow_origin(&headers), None, "no loopback in production");
    let (_, headers, _) = send(&production, preflight("https://app.example.com")?).await?;
    assert_eq!(allow_origin(&headers), Some("https://app.example.com"));
    // An actual request from an allowed origin carries the header too.
    let request = Request::post("/graphql")
        .header(header::ORIGIN, "https://app.example.com")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"query":"{ __typename }"}"#))?;
    let (status, headers, body) = send(&production, request).await?;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"data":{"__typename":"Query"}}"#)
    );
    assert_eq!(allow_origin(&headers), Some("https://app.example.com"));
    Ok(())
}

#[test]
fn settings_refuse_bad_origins_and_unknown_environments_naming_the_variable() -> anyhow::Result<()>
{
    for bad in [
        "app.example.com",
        "https://app.example.com/path",
        "ftp://x.example",
        "*",
    ] {
        let error = settings(&[("CORS_ALLOWED_ORIGINS", bad)])
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with("CORS_ALLOWED_ORIGINS is invalid"),
            "{bad}: {error}"
        );
    }
    for env in ["prod", "staging", "dev"] {
        let error = settings(&[("APP_ENV", env)])
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("APP_ENV is invalid"), "{env}: {error}");
    }
    assert_eq!(
        settings(&[("APP_ENV", "DEVELOPMENT")])?.app_env,
        AppEnv::Development
    );
    let production = settings(&[
        ("APP_ENV", "PRODUCTION"),
        ("DATABASE_URL", "postgres://unused@127.0.0.1/unused"),
    ])?;
    assert_eq!(production.app_env, AppEnv::Production);
    assert!(!production.graphql_introspection && !production.graphiql);
    let opened = settings(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://unused@127.0.0.1/unused"),
        ("GRAPHQL_INTROSPECTION", "true"),
        ("GRAPHIQL", "on"),
    ])?;
    assert!(opened.graphql_introspection && opened.graphiql);
    let short = settings(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "postgres://unused@127.0.0.1/unused"),
        ("AUTH_JWT_SECRET", "short"),
    ]);
    let message = short
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with("AUTH_JWT_SECRET is invalid"),
        "{message}"
    );
    let sqlite = settings(&[
        ("APP_ENV", "production"),
        ("DATABASE_URL", "sqlite://data/platform.db?mode=rwc"),
    ]);
    let message = sqlite
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(message.starts_with("DATABASE_URL is invalid"), "{message}");
    // Production on PostgreSQL runs as the least-privilege roles: both URLs are required.
    let owner_only = Settings::from_lookup(|name| match name {
        "APP_ENV" => Some("production".to_owned()),
        "DATABASE_URL" => Some("postgres://owner@127.0.0.1/platform".to_owned()),
        "AUTH_JWT_SECRET" => Some(SECRET.to_owned()),
        "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
        _ => None,
    });
    let message = owner_only
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("API_DATABASE_URL, WORKER_DATABASE_URL"),
        "{message}"
    );
    let leeway = settings(&[("AUTH_JWT_LEEWAY_SECONDS", "120")]);
    let message = leeway
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        message.starts_with("AUTH_JWT_LEEWAY_SECONDS is invalid"),
        "{message}"
    );
    Ok(())
}

fn json_post(body: &str, accept: Option<&str>) -> anyhow::Result<Request<Body>> {
    let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
    if let Some(accept) = accept {
        request = request.header(header::ACCEPT, accept);
    }
    Ok(request.body(Body::from(body.to_owned()))?)
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn code(body: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn graphql_over_http_negotiates_runs_get_queries_and_refuses_in_json() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let app = app(&test_db, settings(&[])?).await?;
    let typename = r#"{"query":"{ __typename }"}"#;
    let (_, headers, _) = send(&app, json_post(typename, Some("application/json"))?).await?;
    assert!(content_type(&headers).starts_with("application/json"));
    let graphql_response = "application/graphql-response+json";
    let (_, headers, _) = send(&app, json_post(typename, Some(graphql_response))?).await?;
    assert!(content_type(&headers).starts_with(graphql_response));
    let (status, _, body) = send(&app, json_post(typename, Some("text/csv"))?).await?;
    assert_eq!(
        (status, code(&body).as_deref()),
        (StatusCode::NOT_ACCEPTABLE, Some("NOT_ACCEPTABLE"))
    );

    // A body that is no GraphQL request is 400; a document that fails to parse or validate is 400
    // without `data` under graphql-response+json and 200 with `errors` under JSON.
    for (body, media, expected) in [
        ("{ \"not json", graphql_response, StatusCode::BAD_REQUEST),
        (
            r#"{"query":"{"}"#,
            graphql_response,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"query":"{ nope }"}"#,
            graphql_response,
            StatusCode::BAD_REQUEST,
        ),
        (r#"{"query": 1}"#, graphql_response, StatusCode::BAD_REQUEST),
        ("{ \"not json", "application/json", StatusCode::BAD_REQUEST),
        (
            r#"{"query": 1}"#,
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"query":"{ nope }"}"#,
            "application/json",
            StatusCode::OK,
        ),
    ] {
        let (status, _, answer) = send(&app, json_post(body, Some(media))?).await?;
        assert_eq!(status, expected, "{body} as {media}: {answer}");
        assert_eq!(code(&answer).as_deref(), Some("BAD_USER_INPUT"), "{answer}");
        let parsed: Value = serde_json::from_str(&answer)?;
        assert!(parsed.get("data").is_none(), "{answer}");
    }
    let no_type = Request::post("/graphql").body(Body::from(typename))?;
    let (status, _, body) = send(&app, no_type).await?;
    assert_eq!(
        (status, code(&body).as_deref()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("UNSUPPORTED_MEDIA_TYPE")
        )
    );
    let put = Request::put("/graphql").body(Body::empty())?;
    let (status, headers, body) = send(&app, put).await?;
    assert_eq!(
        (status, code(&body).as_deref()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("METHOD_NOT_ALLOWED"))
    );
    assert!(content_type(&headers).starts_with("application/json"));
    let huge = format!(
        r#"{{"query":"{{ __typename }} #{}"}}"#,
        "x".repeat(300 * 1024)
    );
    let (status, _, body) = send(&app, json_post(&huge, None)?).await?;
    assert_eq!(
        (status, code(&body).as_deref()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("PAYLOAD_TOO_LARGE"))
    );

    // GET runs queries, with variables, and never a mutation.
    let get = |query: &str, variables: Option<&str>| {
        let mut uri = format!("/graphql?query={}", urlencode(query));
        if let Some(variables) = variables {
            uri.push_str(&format!("&variables={}", urlencode(variables)));
        }
        Request::get(uri).body(Body::empty())
    };
    let (status, _, body) = send(&app, get("{ __typename }", None)?).await?;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"data":{"__typename":"Query"}}"#)
    );
    let (status, _, body) = send(
        &app,
        get(
            "query($n: String!) { __type(name: $n) { name } }",
            Some(r#"{"n":"Query"}"#),
        )?,
    )
    .await?;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"data":{"__type":{"name":"Query"}}}"#)
    );
    let (status, headers, body) = send(
        &app,
        get("mutation { createWorkspace(name: \"x\") { id } }", None)?,
    )
    .await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(
        headers.get(header::ALLOW).and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_eq!(
        test_db
            .count("SELECT count(*) FROM workspaces", vec![])
            .await?,
        0
    );
    Ok(())
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn persisted_queries_answer_not_found_until_registered_then_serve_by_hash()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let app = app(&test_db, settings(&[])?).await?;
    let query = "query Probe { __typename }";
    let hash = hex::encode(sha2::Sha256::digest(query.as_bytes()));
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let by_hash = json!({"extensions": extensions}).to_string();
    let (status, _, body) = send(&app, json_post(&by_hash, None)?).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        code(&body).as_deref(),
        Some("PERSISTED_QUERY_NOT_FOUND"),
        "{body}"
    );
    let register = json!({"query": query, "extensions": extensions}).to_string();
    let (_, _, body) = send(&app, json_post(&register, None)?).await?;
    assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);
    let (_, _, body) = send(&app, json_post(&by_hash, None)?).await?;
    assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);
    let uri = format!("/graphql?extensions={}", urlencode(&extensions.to_string()));
    let (_, _, body) = send(&app, Request::get(uri).body(Body::empty())?).await?;
    assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);
    let mismatch = json!({"query": "{ viewer { id } }", "extensions": extensions}).to_string();
    let (_, _, body) = send(&app, json_post(&mismatch, None)?).await?;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    Ok(())
}

#[tokio::test]
async fn graphiql_and_introspection_follow_their_settings() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let introspect = r#"{"query":"{ __schema { queryType { name } } }"}"#;
    let browser = || {
        Request::get("/graphql")
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .body(Body::empty())
    };
    let development = app(&test_db, settings(&[])?).await?;
    let (status, headers, page) = send(&development, browser()?).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type(&headers).starts_with("text/html"));
    assert!(
        !page.contains("https://") && !page.contains("http://"),
        "GraphiQL loads nothing from elsewhere"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(
            page.contains(&format!("/graphql/assets/{asset}")),
            "{asset}"
        );
        let (status, _, body) = send(
            &development,
            Request::get(format!("/graphql/assets/{asset}")).body(Body::empty())?,
        )
        .await?;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(body.len() > 1_000, "{asset}");
    }
    let (_, _, body) = send(&development, json_post(introspect, None)?).await?;
    assert_eq!(
        body,
        r#"{"data":{"__schema":{"queryType":{"name":"Query"}}}}"#
    );

    let production = app(
        &test_db,
        settings(&[
            ("APP_ENV", "production"),
            ("DATABASE_URL", "postgres://unused@127.0.0.1/x"),
        ])?,
    )
    .await?;
    let (status, headers, _) = send(&production, browser()?).await?;
    assert!(!content_type(&headers).starts_with("text/html"), "{status}");
    let (status, _, _) = send(
        &production,
        Request::get("/graphql/assets/graphiql.min.js").body(Body::empty())?,
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, body) = send(&production, json_post(introspect, None)?).await?;
    assert!(
        body.contains("errors") && !body.contains("queryType\":{"),
        "{body}"
    );
    let (_, _, body) = send(
        &production,
        json_post(r#"{"query":"{ __typename }"}"#, None)?,
    )
    .await?;
    assert_eq!(body, r#"{"data":{"__typename":"Query"}}"#);
    Ok(())
}

/// Rate limits: per user on `/graphql`, per client address (from the configured proxy header
/// only), per webhook endpoint; a refusal is 429 with `Retry-After` and a JSON code.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_user_address_and_endpoint()
-> anyhow::Result<()> {
    use server::graphql::auth::{Claims, sign};
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let tenant = tests::fixtures::Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let limited = app(
        &test_db,
        settings(&[
            ("RATE_LIMIT_PER_USER", "1"),
            ("RATE_LIMIT_PER_IP", "1000"),
            ("RATE_LIMIT_WEBHOOKS", "1"),
        ])?,
    )
    .await?;
    let exp = u64::try_from(chrono::Utc::now().timestamp() + 600)?;
    let token = sign(
        &Claims {
            sub: tenant.user_id.to_string(),
            email: None,
            exp,
        },
        &providers::secrecy::SecretString::from(SECRET),
    )?;
    let viewer = || {
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(r#"{"query":"{ viewer { id } }"}"#))
    };
    // A burst of twice the rate passes, the next is refused.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, headers, body) = send(&limited, viewer()?).await?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code(&body).as_deref(), Some("RATE_LIMITED"), "{body}");
            let retry: u64 = headers
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
                .unwrap_or_default();
            assert!(retry >= 1, "{headers:?}");
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );

    // Per address, from the trusted header only; without it configured the header is ignored.
    let by_address = app(
        &test_db,
        settings(&[
            ("RATE_LIMIT_PER_IP", "1"),
            ("CLIENT_IP_HEADER", "X-Forwarded-For"),
        ])?,
    )
    .await?;
    let from = |address: &str| {
        Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", format!("203.0.113.9, {address}"))
            .body(Body::from(r#"{"query":"{ __typename }"}"#))
    };
    for _ in 0..2 {
        assert_eq!(
            send(&by_address, from("198.51.100.1")?).await?.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        send(&by_address, from("198.51.100.1")?).await?.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&by_address, from("198.51.100.2")?).await?.0,
        StatusCode::OK
    );

    // Per webhook endpoint: another endpoint keeps its own budget.
    let hook = |path: &str| Request::post(path.to_owned()).body(Body::from("{}"));
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(send(&limited, hook("/webhooks/hubspot")?).await?.0);
    }
    assert_eq!(first[2], StatusCode::TOO_MANY_REQUESTS, "{first:?}");
    assert_ne!(
        send(&limited, hook("/webhooks/intercom")?).await?.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    Ok(())
}

/// `/metrics` behind `METRICS_TOKEN`, or moved to `METRICS_BIND_ADDR` (absent from the API's
/// address); an unknown route is a JSON 404.
#[tokio::test]
async fn metrics_can_require_a_token_or_move_to_their_own_address() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let guarded = app(&test_db, settings(&[("METRICS_TOKEN", "scrape-secret")])?).await?;
    let metrics = |bearer: Option<&str>| {
        let mut request = Request::get("/metrics");
        if let Some(bearer) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
        }
        request.body(Body::empty())
    };
    let (status, _, body) = send(&guarded, metrics(None)?).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, _) = send(&guarded, metrics(Some("wrong"))?).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&guarded, metrics(Some("scrape-secret"))?).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("build_info"), "{body}");

    let settings = settings(&[("METRICS_BIND_ADDR", "127.0.0.1:0")])?;
    let state = AppState::new(
        test_db.db.clone(),
        settings,
        Arc::new(providers::SystemClock),
    )?;
    let api = server::router(state.clone());
    let (status, headers, body) = send(&api, metrics(None)?).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type(&headers).starts_with("application/json"),
        "{body}"
    );
    let (status, _, body) = send(&server::metrics_router(state), metrics(None)?).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("build_info"), "{body}");
    Ok(())
}
