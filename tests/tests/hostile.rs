//! Hostile requests against the GraphQL API, each a finding of the hardening review replayed:
//! fragment fan-out and deep nesting refused before validation, alias and page-size bombs refused
//! by cost, pool starvation by concurrent mutations, other workspaces' ids answered exactly as
//! ids that do not exist, anonymous work limited to meta fields, and NUL bytes refused as input.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use providers::secrecy::SecretString;
use serde_json::{Value, json};
use server::graphql::auth::{Claims, Verifier, sign};
use server::graphql::{ApiOptions, EngineHandle, GraphqlState, router};
use tests::fixtures::{Tenant, new_id};
use tests::{Backend, TestDb};
use tower::ServiceExt as _;

const SECRET: &str = "hostile-requests-test-secret-of-32-bytes";

fn app(db: sea_orm::DatabaseConnection) -> anyhow::Result<axum::Router> {
    let keyring = providers::Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?;
    Ok(router(GraphqlState::new(
        db,
        Arc::new(Verifier::hs256(SecretString::from(SECRET))),
        EngineHandle {
            keyring: Arc::new(keyring),
            factory: None,
        },
        integrations::ProgressFeed::default(),
        ApiOptions::default(),
    )))
}

fn token(user_id: uuid::Uuid) -> anyhow::Result<String> {
    let exp = u64::try_from(chrono::Utc::now().timestamp() + 3600)?;
    Ok(sign(
        &Claims {
            sub: user_id.to_string(),
            email: Some("someone@example.com".to_owned()),
            exp,
        },
        &SecretString::from(SECRET),
    )?)
}

async fn post(
    app: &axum::Router,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    }
    let body = json!({"query": query, "variables": variables}).to_string();
    let response = app.clone().oneshot(request.body(Body::from(body))?).await?;
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 16 << 20).await?;
    Ok((status, serde_json::from_slice(&bytes)?))
}

fn code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

/// `query{...F0} fragment F0 on Query{...F1 ...F1} … fragment F<n-1> on Query{__typename}`:
/// about 1 KB whose expansion doubles per level.
fn fan_out(levels: usize) -> String {
    let mut query = String::from("query{...F0}");
    for level in 0..levels - 1 {
        let next = level + 1;
        query.push_str(&format!(
            " fragment F{level} on Query{{...F{next} ...F{next}}}"
        ));
    }
    query.push_str(&format!(" fragment F{} on Query{{__typename}}", levels - 1));
    query
}

#[tokio::test]
async fn fragment_fan_out_and_deep_nesting_are_refused_before_validation() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let app = app(test_db.db.clone())?;
    let bearer = token(tenant.user_id)?;
    let nested = format!(
        "query {}{}",
        "{ __type(name: \"Query\") ".repeat(40),
        "}".repeat(40)
    );
    for (what, query) in [
        ("fan-out of 25", fan_out(25)),
        ("fan-out of 31", fan_out(31)),
        ("40 levels of nesting", nested),
    ] {
        for bearer in [None, Some(bearer.as_str())] {
            let started = Instant::now();
            let (status, response) = post(&app, bearer, &query, json!({})).await?;
            let elapsed = started.elapsed();
            println!(
                "{what} ({} bytes), token {}: refused in {elapsed:?}",
                query.len(),
                bearer.is_some()
            );
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                code(&response),
                Some("BAD_USER_INPUT"),
                "{what}: {response}"
            );
            let message = response["errors"][0]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(
                message.contains("once its fragments are expanded")
                    || message.contains("nests more than"),
                "{what}: refused by something other than the cost check: {message}"
            );
        }
    }
    // A cycle of fragments is refused the same way.
    let cycle = "query{...A} fragment A on Query{...B} fragment B on Query{...A}";
    let (_, response) = post(&app, Some(&bearer), cycle, json!({})).await?;
    assert_eq!(code(&response), Some("BAD_USER_INPUT"), "{response}");
    Ok(())
}

#[tokio::test]
async fn alias_and_page_size_bombs_are_refused_by_cost() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let app = app(test_db.db.clone())?;
    let bearer = token(tenant.user_id)?;
    let page = |alias: usize, first: usize| {
        format!(
            "a{alias}: entities(workspaceId: \"{}\", first: {first}) {{ edges {{ node {{ id displayName attributes {{ key value }} }} }} }}",
            tenant.workspace_id
        )
    };
    // 120 aliases of a full page: over the alias limit.
    let aliases: Vec<String> = (0..120).map(|alias| page(alias, 100)).collect();
    let (_, response) = post(
        &app,
        Some(&bearer),
        &format!("{{ {} }}", aliases.join(" ")),
        json!({}),
    )
    .await?;
    assert_eq!(code(&response), Some("BAD_USER_INPUT"), "{response}");
    // 20 aliases of a 100-entity page: within the alias limit, over complexity because each
    // page's children count once per entity it may hold.
    let pages: Vec<String> = (0..20).map(|alias| page(alias, 100)).collect();
    let (_, response) = post(
        &app,
        Some(&bearer),
        &format!("{{ {} }}", pages.join(" ")),
        json!({}),
    )
    .await?;
    assert_eq!(code(&response), Some("BAD_USER_INPUT"), "{response}");
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("complex"), "{message}");
    // The same 20 aliases with `first: 2` are cheap and answer.
    let small: Vec<String> = (0..20).map(|alias| page(alias, 2)).collect();
    let (_, response) = post(
        &app,
        Some(&bearer),
        &format!("{{ {} }}", small.join(" ")),
        json!({}),
    )
    .await?;
    assert!(response["errors"].is_null(), "{response}");
    Ok(())
}

#[tokio::test]
async fn anonymous_requests_get_only_meta_fields_and_nul_bytes_are_bad_input() -> anyhow::Result<()>
{
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let app = app(test_db.db.clone())?;
    let (_, response) = post(&app, None, "{ viewer { id } }", json!({})).await?;
    assert_eq!(code(&response), Some("UNAUTHENTICATED"), "{response}");
    assert!(response.get("data").is_none(), "{response}");
    let (_, response) = post(
        &app,
        Some("not-a-token"),
        "{ workspaces { id } }",
        json!({}),
    )
    .await?;
    assert_eq!(code(&response), Some("UNAUTHENTICATED"), "{response}");
    let (_, response) = post(
        &app,
        None,
        "{ __typename __type(name: \"Query\") { name } }",
        json!({}),
    )
    .await?;
    assert_eq!(
        response,
        json!({"data": {"__typename": "Query", "__type": {"name": "Query"}}})
    );

    let bearer = token(tenant.user_id)?;
    let cases = [
        (
            "query($t: String) { entities(workspaceId: \"W\", filter: {entityType: $t}) { totalCount } }",
            json!({"t": "per\u{0}son"}),
        ),
        (
            "{ entities(workspaceId: \"W\", filter: {entityType: \"per\\u0000son\"}) { totalCount } }",
            json!({}),
        ),
        (
            "mutation($v: JSON!) { updateEntityAttribute(entityId: \"E\", key: \"email\", value: $v, expectedSyncVersion: 1) { syncVersion } }",
            json!({"v": {"text": "a\u{0}b"}}),
        ),
    ];
    for (query, variables) in cases {
        let query = query
            .replace('W', &tenant.workspace_id.to_string())
            .replace("\"E\"", &format!("\"{}\"", tenant.entity_id));
        let (status, response) = post(&app, Some(&bearer), &query, variables).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            code(&response),
            Some("BAD_USER_INPUT"),
            "{query}: {response}"
        );
    }
    Ok(())
}

/// Every operation that takes an id answers another workspace's id exactly as an id that never
/// existed: the same code and the same message once the id itself is blanked out.
#[tokio::test]
async fn other_workspaces_ids_answer_exactly_as_ids_that_do_not_exist() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let caller = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    let other = Tenant::create(&test_db, "OWNER", "stripe").await?;
    let app = app(test_db.db.clone())?;
    let bearer = token(caller.user_id)?;
    let operations: Vec<(&str, &str, uuid::Uuid)> = vec![
        (
            "connection",
            "query($id: UUID!) { connection(id: $id) { id } }",
            other.connection_id,
        ),
        (
            "entity",
            "query($id: UUID!) { entity(id: $id) { id } }",
            other.entity_id,
        ),
        (
            "entities",
            "query($id: UUID!) { entities(workspaceId: $id) { totalCount } }",
            other.workspace_id,
        ),
        (
            "connections",
            "query($id: UUID!) { connections(workspaceId: $id) { id } }",
            other.workspace_id,
        ),
        (
            "disconnect",
            "mutation($id: UUID!) { disconnect(connectionId: $id) }",
            other.connection_id,
        ),
        (
            "triggerSync",
            "mutation($id: UUID!) { triggerSync(connectionId: $id) }",
            other.connection_id,
        ),
        (
            "validateConnection",
            "mutation($id: UUID!) { validateConnection(connectionId: $id) }",
            other.connection_id,
        ),
        (
            "runHealthCheck",
            "mutation($id: UUID!) { runHealthCheck(connectionId: $id) }",
            other.connection_id,
        ),
        (
            "updatePropertyMappings",
            "mutation($id: UUID!) { updatePropertyMappings(connectionId: $id, mappings: {}) }",
            other.connection_id,
        ),
        (
            "updateEntityAttribute",
            "mutation($id: UUID!) { updateEntityAttribute(entityId: $id, key: \"email\", value: \"x\", expectedSyncVersion: 1) { syncVersion } }",
            other.entity_id,
        ),
        (
            "clearAttributeOverride",
            "mutation($id: UUID!) { clearAttributeOverride(entityId: $id, key: \"email\", expectedSyncVersion: 1) { syncVersion } }",
            other.entity_id,
        ),
        (
            "startConnection",
            "mutation($id: UUID!) { startConnection(workspaceId: $id, integrationSlug: \"hubspot\") { connectionId } }",
            other.workspace_id,
        ),
        (
            "connectWithApiKey",
            "mutation($id: UUID!) { connectWithApiKey(workspaceId: $id, integrationSlug: \"stripe\", apiKey: \"rk_test_x\") }",
            other.workspace_id,
        ),
    ];
    for (name, query, foreign) in operations {
        let missing = new_id();
        let answer = |id: uuid::Uuid, response: &Value| {
            let text = response["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .replace(&id.to_string(), "<id>");
            (
                code(response).map(str::to_owned),
                text,
                response["data"].clone(),
            )
        };
        let (_, theirs) = post(&app, Some(&bearer), query, json!({"id": foreign})).await?;
        let (_, none) = post(&app, Some(&bearer), query, json!({"id": missing})).await?;
        assert_eq!(code(&theirs), Some("NOT_FOUND"), "{name}: {theirs}");
        assert_eq!(answer(foreign, &theirs), answer(missing, &none), "{name}");
        let text = theirs.to_string();
        assert!(
            !text.contains(&other.workspace_id.to_string()) || foreign == other.workspace_id,
            "{name} named their workspace: {text}"
        );
    }
    // node(id:) answers null for both.
    let (_, theirs) = post(&app, Some(&bearer), "query($id: ID!) { node(id: $id) { nodeId } }",
        json!({"id": server::graphql::node::global_id(server::graphql::node::NodeKind::Entity, other.entity_id)})).await?;
    assert_eq!(theirs, json!({"data": {"node": null}}));
    Ok(())
}

/// Four times the pool's size of concurrent mutations of every kind, from two workspaces, while
/// a third workspace reads: every answer is correct and none is INTERNAL or 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mutations_never_starve_the_pool() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let pool_size = 3;
    let pool = migration::connect(&test_db.url, pool_size).await?;
    let app = app(pool)?;
    let admins = [
        Tenant::create(&test_db, "OWNER", "hubspot").await?,
        Tenant::create(&test_db, "OWNER", "stripe").await?,
    ];
    let reader = Tenant::create(&test_db, "MEMBER", "zendesk").await?;
    let mut tasks = tokio::task::JoinSet::new();
    let mutations = [
        "mutation($c: UUID!) { updatePropertyMappings(connectionId: $c, mappings: {contacts: {hs_score: \"score\"}}) }",
        "mutation($c: UUID!) { triggerSync(connectionId: $c) }",
        "mutation($c: UUID!) { validateConnection(connectionId: $c) }",
        "mutation($c: UUID!) { runHealthCheck(connectionId: $c) }",
        "mutation($e: UUID!) { updateEntityAttribute(entityId: $e, key: \"email\", value: \"x@example.com\", expectedSyncVersion: 0) { syncVersion } }",
        "mutation { createWorkspace(name: \"Load\") { id } }",
    ];
    let n = usize::try_from(pool_size)? * 4;
    for index in 0..n {
        let tenant = &admins[index % admins.len()];
        let (app, bearer) = (app.clone(), token(tenant.user_id)?);
        let query = mutations[index % mutations.len()];
        let variables = json!({"c": tenant.connection_id, "e": tenant.entity_id});
        tasks.spawn(async move {
            post(&app, Some(&bearer), query, variables)
                .await
                .map(|answer| (query, answer))
        });
    }
    for _ in 0..n {
        let (app, bearer) = (app.clone(), token(reader.user_id)?);
        tasks.spawn(async move {
            post(
                &app,
                Some(&bearer),
                "{ viewer { id } workspaces { id } }",
                json!({}),
            )
            .await
            .map(|answer| ("viewer", answer))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (query, (status, response)) = joined??;
        assert_ne!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{query}: {response}"
        );
        let errors = response["errors"].as_array().cloned().unwrap_or_default();
        for error in &errors {
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            // Only the stale version of the edit is an expected refusal.
            assert_eq!(code, "CONFLICT", "{query}: {response}");
        }
    }
    Ok(())
}

/// While fan-out bombs arrive (anonymous and signed in, many at once), `/healthz` keeps
/// answering: no request occupies the runtime's workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_stays_answered_while_fan_out_bombs_arrive() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let settings = server::Settings::from_lookup(|name| match name {
        "TOKEN_ENCRYPTION_KEYS" => {
            Some("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned())
        }
        "AUTH_JWT_SECRET" => Some(SECRET.to_owned()),
        "RATE_LIMIT_PER_IP" => Some("0".to_owned()),
        _ => None,
    })?;
    let app = server::router(server::AppState::new(
        test_db.db.clone(),
        settings,
        Arc::new(providers::SystemClock),
    )?);
    let bearer = token(tenant.user_id)?;
    let mut bombs = tokio::task::JoinSet::new();
    for index in 0..40 {
        let (app, bearer) = (app.clone(), bearer.clone());
        bombs.spawn(async move {
            let bearer = (index % 2 == 0).then_some(bearer);
            post(&app, bearer.as_deref(), &fan_out(31), json!({})).await
        });
    }
    let healthz = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        app.clone()
            .oneshot(Request::get("/healthz").body(Body::empty())?),
    )
    .await
    .map_err(|_| anyhow::anyhow!("/healthz did not answer within 5 s of the bombs"))??;
    assert_eq!(healthz.status(), StatusCode::OK);
    while let Some(bomb) = bombs.join_next().await {
        let (_, response) = bomb??;
        assert_eq!(code(&response), Some("BAD_USER_INPUT"), "{response}");
    }
    Ok(())
}
