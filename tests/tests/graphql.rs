//! The GraphQL API through its router: authentication, membership checks, RLS per request, limits,
//! error codes, and the exported schema.

use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use providers::secrecy::SecretString;
use sea_orm::{ColumnTrait as _, ConnectionTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};
use server::graphql::auth::{Claims, sign};
use server::graphql::{GraphqlState, RequestDb, router};
use tests::fixtures::{Tenant, new_id, v};
use tests::{Backend, TestDb, workspace_root};
use tower::ServiceExt as _;

const SECRET: &str = "test-jwt-secret-with-enough-length-0123456789";

fn token(user_id: uuid::Uuid, expires_in: i64, secret: &str) -> anyhow::Result<String> {
    let exp = u64::try_from(chrono::Utc::now().timestamp() + expires_in)?;
    Ok(sign(
        &Claims {
            sub: user_id.to_string(),
            email: Some("ada@example.com".to_owned()),
            exp,
        },
        &SecretString::from(secret),
    )?)
}

/// The GraphQL routes on `db`, as the server mounts them.
fn app(db: sea_orm::DatabaseConnection) -> axum::Router {
    router(GraphqlState::new(
        db,
        std::sync::Arc::new(server::graphql::auth::Verifier::hs256(SecretString::from(
            SECRET,
        ))),
        engine_handle(),
        integrations::ProgressFeed::default(),
        server::graphql::ApiOptions::default(),
    ))
}

async fn post(
    test_db: &TestDb,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let app = app(test_db.db.clone());
    let mut request = Request::post("/graphql").header(header::CONTENT_TYPE, "application/json");
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {bearer}"));
    }
    let response = app
        .oneshot(request.body(Body::from(
            json!({"query": query, "variables": variables}).to_string(),
        ))?)
        .await?;
    let body = to_bytes(response.into_body(), 1 << 20).await?;
    Ok(serde_json::from_slice(&body)?)
}

fn engine_handle() -> server::graphql::EngineHandle {
    let keyring = providers::Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))
    .unwrap_or_else(|error| panic!("{error}"));
    server::graphql::EngineHandle {
        keyring: std::sync::Arc::new(keyring),
        factory: None,
    }
}

fn code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

#[test]
fn the_exported_schema_matches_the_code() -> anyhow::Result<()> {
    let path = workspace_root().join("apps/server/schema.graphql");
    let current = server::graphql::sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok() {
        std::fs::write(&path, &current)?;
    }
    let committed = std::fs::read_to_string(&path)?;
    assert!(
        committed == current,
        "apps/server/schema.graphql drifted: run `just schema`"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_valid_token_every_field_is_unauthenticated() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let user = new_id();
    let cases = [
        None,
        Some(token(
            user,
            3600,
            "another-secret-entirely-0123456789-abcdef",
        )?),
        Some(token(user, -3600, SECRET)?),
        Some("not.a.jwt".to_owned()),
    ];
    for bearer in cases {
        let response = post(
            &test_db,
            bearer.as_deref(),
            "{ viewer { id } workspaces { id } }",
            json!({}),
        )
        .await?;
        assert_eq!(
            code(&response),
            Some("UNAUTHENTICATED"),
            "{bearer:?}: {response}"
        );
        assert!(response["data"].is_null(), "{response}");
    }
    Ok(())
}

#[tokio::test]
async fn a_user_creates_a_workspace_and_sees_it_with_the_catalog() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let user = new_id();
        let bearer = token(user, 3600, SECRET)?;
        let created = post(
            &test_db,
            Some(&bearer),
            "mutation($name: String!) { createWorkspace(name: $name) { id name role } }",
            json!({"name": "Acme"}),
        )
        .await?;
        assert_eq!(
            created["data"]["createWorkspace"]["role"],
            json!("OWNER"),
            "{backend:?}: {created}"
        );
        let read = post(
            &test_db,
            Some(&bearer),
            "{ viewer { id email } workspaces { name role } integrations { slug category } }",
            json!({}),
        )
        .await?;
        assert!(read["errors"].is_null(), "{backend:?}: {read}");
        assert_eq!(read["data"]["viewer"]["id"], json!(user.to_string()));
        assert_eq!(
            read["data"]["workspaces"],
            json!([{"name": "Acme", "role": "OWNER"}])
        );
        assert_eq!(
            read["data"]["integrations"].as_array().map(Vec::len),
            Some(6)
        );
        let blank = post(
            &test_db,
            Some(&bearer),
            "mutation { createWorkspace(name: \"  \") { id } }",
            json!({}),
        )
        .await?;
        assert_eq!(code(&blank), Some("BAD_USER_INPUT"));
        let wrong_type = post(
            &test_db,
            Some(&bearer),
            "mutation($name: String!) { createWorkspace(name: $name) { id } }",
            json!({"name": 42}),
        )
        .await?;
        assert!(
            wrong_type["errors"].is_array() && wrong_type["data"].is_null(),
            "{wrong_type}"
        );
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM workspaces", vec![])
                .await?,
            1,
            "{backend:?}: bad input changed nothing"
        );
    }
    Ok(())
}

#[tokio::test]
async fn another_workspaces_connections_are_not_found_and_rls_alone_hides_them()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let alpha = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let beta = Tenant::create(&test_db, "OWNER", "stripe").await?;
    let bearer = token(alpha.user_id, 3600, SECRET)?;
    let own = post(
        &test_db,
        Some(&bearer),
        "query($w: UUID!) { connections(workspaceId: $w) { id integrationSlug status } }",
        json!({"w": alpha.workspace_id}),
    )
    .await?;
    assert_eq!(
        own["data"]["connections"][0]["integrationSlug"],
        json!("hubspot"),
        "{own}"
    );
    let other = post(
        &test_db,
        Some(&bearer),
        "query($w: UUID!) { connections(workspaceId: $w) { id } }",
        json!({"w": beta.workspace_id}),
    )
    .await?;
    assert_eq!(code(&other), Some("NOT_FOUND"), "{other}");
    let by_id = post(
        &test_db,
        Some(&bearer),
        "query($id: UUID!) { connection(id: $id) { id } }",
        json!({"id": beta.connection_id}),
    )
    .await?;
    assert_eq!(code(&by_id), Some("NOT_FOUND"), "{by_id}");

    // Bypass the application's check: the request's own transaction still cannot see B's rows.
    let viewer = server::graphql::auth::Viewer {
        user_id: alpha.user_id,
        email: String::new(),
    };
    let request_db = RequestDb::begin(&test_db.db, &viewer).await?;
    {
        let transaction = request_db.lock().await;
        let visible = entity::integration_connections::Entity::find()
            .filter(entity::integration_connections::Column::WorkspaceId.eq(beta.workspace_id))
            .all(&*transaction)
            .await?;
        assert!(
            visible.is_empty(),
            "RLS let a member of A read B's connection"
        );
        let own_rows = entity::integration_connections::Entity::find()
            .all(&*transaction)
            .await?;
        assert_eq!(own_rows.len(), 1);
        transaction.execute_unprepared("SELECT 1").await?;
    }
    request_db.finish(false).await?;
    Ok(())
}

#[tokio::test]
async fn a_query_nested_too_deep_is_refused() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let bearer = token(new_id(), 3600, SECRET)?;
    let of_types = |n: usize| format!("{}name{}", "ofType { ".repeat(n), " }".repeat(n));
    // Introspection alone has room for the standard introspection query (depth 14), not more
    // than 20; anything else beside it is held to the API's depth of 12.
    let deep_introspection = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} }} }} }} }} }}",
        of_types(18)
    );
    let mixed = format!(
        "{{ viewer {{ id }} __schema {{ types {{ fields {{ type {{ {} }} }} }} }} }}",
        of_types(8)
    );
    let standard = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} }} }} }} }} }}",
        of_types(8)
    );
    for deep in [deep_introspection, mixed] {
        let response = post(&test_db, Some(&bearer), &deep, json!({})).await?;
        let message = response["errors"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("nested too deep"), "{response}");
    }
    let response = post(&test_db, None, &standard, json!({})).await?;
    assert!(response["errors"].is_null(), "{response}");
    assert!(
        response["data"]["__schema"]["types"].is_array(),
        "{response}"
    );
    let malformed = post(&test_db, Some(&bearer), "{ viewer { id ", json!({})).await?;
    assert!(malformed["errors"].is_array(), "{malformed}");
    Ok(())
}

/// Sends `body` as it is to `POST /graphql`; the status and the body back.
async fn post_raw(
    test_db: &TestDb,
    bearer: &str,
    body: Vec<u8>,
) -> anyhow::Result<(axum::http::StatusCode, String)> {
    let app = app(test_db.db.clone());
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/graphql-response+json")
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))?;
    let response = app.oneshot(request).await?;
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn hostile_requests_get_a_clear_error_with_a_code_and_change_nothing() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let bearer = token(new_id(), 3600, SECRET)?;
    let workspaces = "SELECT count(*) FROM workspaces";

    // Not JSON, a batch, an oversized body: refused before anything runs, with a JSON body
    // that carries a code.
    let (status, body) = post_raw(&test_db, &bearer, b"{\"query\": ".to_vec()).await?;
    assert_eq!(status, 400);
    let refusal: Value = serde_json::from_str(&body)?;
    assert_eq!(code(&refusal), Some("BAD_USER_INPUT"), "{body}");
    let create = json!({"query": "mutation { createWorkspace(name: \"A\") { id } }"});
    let batch = json!([create, create]).to_string().into_bytes();
    let (status, body) = post_raw(&test_db, &bearer, batch).await?;
    assert_eq!(status, 400, "{body}");
    let huge = json!({"query": format!("{{ viewer {{ id }} }} #{}", "x".repeat(300 * 1024))});
    let (status, body) = post_raw(&test_db, &bearer, huge.to_string().into_bytes()).await?;
    assert_eq!(status, 413);
    let refusal: Value = serde_json::from_str(&body)?;
    assert_eq!(code(&refusal), Some("PAYLOAD_TOO_LARGE"), "{body}");
    assert_eq!(test_db.count(workspaces, vec![]).await?, 0);

    // Wrong variable types, unknown fields, a subscription over POST, too deep: each a
    // BAD_USER_INPUT error, and nothing written.
    let cases = [
        (
            "mutation($n: String!) { createWorkspace(name: $n) { id } }",
            json!({"n": 42}),
        ),
        (
            "mutation { createWorkspace(name: \"A\") { id nope } }",
            json!({}),
        ),
        (
            "subscription($c: UUID!) { syncProgress(connectionId: $c) { pages } }",
            json!({"c": new_id()}),
        ),
        (
            "mutation { createWorkspace(name: \"A\") { id } } { __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } } } } } } } } }",
            json!({}),
        ),
    ];
    for (query, variables) in cases {
        let response = post(&test_db, Some(&bearer), query, variables).await?;
        assert!(response["errors"].is_array(), "{query}: {response}");
        assert_eq!(
            code(&response),
            Some("BAD_USER_INPUT"),
            "{query}: {response}"
        );
    }
    assert_eq!(test_db.count(workspaces, vec![]).await?, 0);
    Ok(())
}

/// Adds `n` synced entities with two attributes each (one overridden) to the tenant's workspace.
async fn add_entities(test_db: &TestDb, tenant: &Tenant, n: usize) -> anyhow::Result<()> {
    use tests::fixtures::v;
    let name_attribute = new_id();
    test_db.execute("INSERT INTO attribute_definitions (id, workspace_id, entity_type, key, label) VALUES ($1, $2, 'person', 'name', 'Name')",
        vec![v(name_attribute), v(tenant.workspace_id)]).await?;
    for index in 0..n {
        let entity_id = new_id();
        test_db.execute("INSERT INTO entities (id, workspace_id, entity_type, source_type, source_integration_id, source_external_id) VALUES ($1, $2, 'person', 'INTEGRATION', $3, $4)",
            vec![v(entity_id), v(tenant.workspace_id), v(tenant.integration_id), v(format!("ext-{index}"))]).await?;
        for (attribute, value, overridden) in [
            (
                tenant.attribute_id,
                json!(format!("p{index}@example.com")),
                false,
            ),
            (
                name_attribute,
                json!(format!("Person {index}")),
                index % 2 == 0,
            ),
        ] {
            test_db.execute("INSERT INTO entity_attribute_values (entity_id, attribute_id, value, workspace_id) VALUES ($1, $2, $3, $4)",
                vec![v(entity_id), v(attribute), v(value), v(tenant.workspace_id)]).await?;
            let override_at = overridden.then(|| chrono::Utc::now().fixed_offset());
            test_db.execute("INSERT INTO entity_attribute_provenance (id, entity_id, attribute_id, source_type, source_integration_id, source_external_field, override_by_user, override_at, workspace_id)
                VALUES ($1, $2, $3, 'INTEGRATION', $4, 'email', $5, $6, $7)",
                vec![v(new_id()), v(entity_id), v(attribute), v(tenant.integration_id), v(overridden), v(override_at), v(tenant.workspace_id)]).await?;
        }
    }
    Ok(())
}

const PAGE_QUERY: &str = "query($w: UUID!, $first: Int, $after: String) {
  entities(workspaceId: $w, first: $first, after: $after) {
    edges { cursor node { id source { type externalId syncVersion integration { name } }
      attributes { key value provenance { sourceType integration { slug } externalField overriddenByUser } } } }
    pageInfo { hasNextPage endCursor } } }";

#[tokio::test]
async fn an_entity_page_with_provenance_costs_the_same_few_statements_whatever_its_size()
-> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    add_entities(&test_db, &tenant, 120).await?;
    let bearer = token(tenant.user_id, 3600, SECRET)?;

    // Every statement the pool runs for the request, setup included. BEGIN and COMMIT do not
    // pass through sea-orm's callback: on the wire a page is these plus two.
    let mut statements_for = Vec::new();
    for first in [10, 100] {
        let counter = Arc::new(AtomicUsize::new(0));
        let mut db = test_db.db.clone();
        let seen = counter.clone();
        db.set_metric_callback(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let app = app(db);
        let body =
            json!({"query": PAGE_QUERY, "variables": {"w": tenant.workspace_id, "first": first}})
                .to_string();
        let mut counts = Vec::new();
        for _ in 0..2 {
            let before = counter.load(Ordering::SeqCst);
            let request = Request::post("/graphql")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
                .body(Body::from(body.clone()))?;
            let response: Value = serde_json::from_slice(
                &to_bytes(app.clone().oneshot(request).await?.into_body(), 1 << 22).await?,
            )?;
            assert!(response["errors"].is_null(), "{response}");
            let edges = response["data"]["entities"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert_eq!(edges.len(), first);
            let node = &edges[0]["node"];
            assert_eq!(
                node["source"]["integration"]["name"],
                json!("HubSpot"),
                "{node}"
            );
            assert_eq!(
                node["attributes"][0]["provenance"]["integration"]["slug"],
                json!("hubspot"),
                "{node}"
            );
            counts.push(counter.load(Ordering::SeqCst) - before);
        }
        // The first request also upserts the user and reads the catalog; the second reuses both.
        assert_eq!(counts[0], counts[1] + 2, "{counts:?}");
        statements_for.push(counts[1]);
    }
    assert_eq!(
        statements_for[0], statements_for[1],
        "the statement count grew with the page size: {statements_for:?}"
    );
    assert_eq!(
        statements_for[1], 3,
        "set_config, the page with its membership check, the attributes: {statements_for:?}"
    );
    Ok(())
}

/// The page's attributes as the web app asks for them, with aliases and `__typename`; the
/// attribute list answers this selection without the per-field resolvers.
const PLAIN_ATTRIBUTES: &str = "attributes { __typename key v: value value
    provenance { sourceType externalField lastUpdatedAt overriddenByUser overrideAt
                 source: integration { slug name __typename } __typename } }";

/// The same selection inside an inline fragment, which the attribute list leaves to the generic
/// resolvers.
const GENERIC_ATTRIBUTES: &str = "attributes { ... on Attribute { __typename key v: value value
    provenance { sourceType externalField lastUpdatedAt overriddenByUser overrideAt
                 source: integration { slug name __typename } __typename } } }";

#[tokio::test]
async fn the_attribute_list_answers_plain_selections_exactly_as_the_generic_resolvers()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
        add_entities(&test_db, &tenant, 6).await?;
        // An attribute without provenance, with JSON values of every kind.
        let extra = new_id();
        test_db.execute("INSERT INTO attribute_definitions (id, workspace_id, entity_type, key, label) VALUES ($1, $2, 'person', 'extra', 'Extra')",
            vec![v(extra), v(tenant.workspace_id)]).await?;
        let entity_ids: Vec<uuid::Uuid> = entity::entities::Entity::find()
            .filter(entity::entities::Column::WorkspaceId.eq(tenant.workspace_id))
            .filter(entity::entities::Column::SourceExternalId.starts_with("ext-"))
            .all(&test_db.db)
            .await?
            .into_iter()
            .map(|entity| entity.id)
            .collect();
        for (entity_id, value) in entity_ids.iter().zip([
            json!(null),
            json!(42.5),
            json!({"nested": [1, "two", {"three": true}]}),
            json!("text with \"quotes\" and \u{e9}"),
            json!([]),
            json!(false),
        ]) {
            test_db.execute("INSERT INTO entity_attribute_values (entity_id, attribute_id, value, workspace_id) VALUES ($1, $2, $3, $4)",
                vec![v(*entity_id), v(extra), v(value), v(tenant.workspace_id)]).await?;
        }
        let bearer = token(tenant.user_id, 3600, SECRET)?;
        let mut answers = Vec::new();
        for attributes in [PLAIN_ATTRIBUTES, GENERIC_ATTRIBUTES] {
            let query = format!(
                "query($w: UUID!) {{ entities(workspaceId: $w, first: 10) {{ edges {{ node {{ id {attributes} }} }} }} }}"
            );
            let response = post(
                &test_db,
                Some(&bearer),
                &query,
                json!({"w": tenant.workspace_id}),
            )
            .await?;
            assert!(response["errors"].is_null(), "{backend:?}: {response}");
            answers.push(response);
        }
        let nodes = answers[0]["data"]["entities"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // The tenant's own entity and the six added.
        assert_eq!(nodes.len(), 7, "{backend:?}: {}", answers[0]);
        let attributes: Vec<&Value> = nodes
            .iter()
            .flat_map(|edge| edge["node"]["attributes"].as_array().into_iter().flatten())
            .collect();
        assert!(attributes.len() >= 18, "{backend:?}: {}", attributes.len());
        assert!(
            attributes
                .iter()
                .any(|attribute| attribute["provenance"].is_null())
                && attributes
                    .iter()
                    .any(|attribute| !attribute["provenance"]["overrideAt"].is_null())
                && attributes
                    .iter()
                    .all(|attribute| attribute["v"] == attribute["value"]
                        && attribute["__typename"] == json!("Attribute")),
            "{backend:?}: {}",
            answers[0]
        );
        assert!(
            attributes
                .iter()
                .any(|attribute| attribute["provenance"]["source"]
                    == json!({"slug": "hubspot", "name": "HubSpot", "__typename": "Integration"})),
            "{backend:?}: {}",
            answers[0]
        );
        assert_eq!(answers[0], answers[1], "{backend:?}");
        // Keys come in the order the query names them, as the generic resolvers write them.
        let text = serde_json::to_string(&answers[0])?;
        assert!(
            text.contains(r#"{"__typename":"Attribute","key":"#),
            "{backend:?}: {text}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn entity_pages_chain_by_cursor_filter_and_refuse_oversized_pages() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
        add_entities(&test_db, &tenant, 7).await?;
        let bearer = token(tenant.user_id, 3600, SECRET)?;
        let mut seen = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let response = post(
                &test_db,
                Some(&bearer),
                PAGE_QUERY,
                json!({"w": tenant.workspace_id, "first": 3, "after": after}),
            )
            .await?;
            let connection = &response["data"]["entities"];
            for edge in connection["edges"].as_array().cloned().unwrap_or_default() {
                assert!(
                    seen.insert(edge["node"]["id"].to_string()),
                    "{backend:?}: an entity came twice"
                );
            }
            if connection["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = connection["pageInfo"]["endCursor"]
                .as_str()
                .map(str::to_owned);
        }
        assert_eq!(
            seen.len(),
            8,
            "{backend:?}: the fixture's entity and the 7 added"
        );
        let overridden = post(&test_db, Some(&bearer),
            "query($w: UUID!) { entities(workspaceId: $w, first: 100, filter: {hasOverrides: true}) { edges { node { id } } } }",
            json!({"w": tenant.workspace_id})).await?;
        assert_eq!(
            overridden["data"]["entities"]["edges"]
                .as_array()
                .map(Vec::len),
            Some(4),
            "{backend:?}: {overridden}"
        );
        let too_many = post(
            &test_db,
            Some(&bearer),
            PAGE_QUERY,
            json!({"w": tenant.workspace_id, "first": 1000}),
        )
        .await?;
        assert_eq!(code(&too_many), Some("BAD_USER_INPUT"));
        let forged = post(
            &test_db,
            Some(&bearer),
            PAGE_QUERY,
            json!({"w": tenant.workspace_id, "after": "bm90LWEtY3Vyc29y"}),
        )
        .await?;
        assert_eq!(code(&forged), Some("BAD_USER_INPUT"));
        let other = post(&test_db, Some(&bearer), PAGE_QUERY, json!({"w": new_id()})).await?;
        assert_eq!(code(&other), Some("NOT_FOUND"));
    }
    Ok(())
}

#[tokio::test]
async fn members_edit_attributes_with_the_sync_version_and_other_workspaces_cannot()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let alpha = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
        let beta = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let edit = "mutation($e: UUID!, $v: Int!) { updateEntityAttribute(entityId: $e, key: \"email\", value: \"ada@mine.example\", expectedSyncVersion: $v) { syncVersion } }";
        let as_alpha = token(alpha.user_id, 3600, SECRET)?;
        let stale = post(
            &test_db,
            Some(&as_alpha),
            edit,
            json!({"e": alpha.entity_id, "v": 7}),
        )
        .await?;
        assert_eq!(code(&stale), Some("CONFLICT"), "{backend:?}: {stale}");
        let done = post(
            &test_db,
            Some(&as_alpha),
            edit,
            json!({"e": alpha.entity_id, "v": 0}),
        )
        .await?;
        assert_eq!(
            done["data"]["updateEntityAttribute"]["syncVersion"],
            json!(1),
            "{backend:?}: {done}"
        );
        let foreign = post(
            &test_db,
            Some(&as_alpha),
            edit,
            json!({"e": beta.entity_id, "v": 0}),
        )
        .await?;
        assert_eq!(code(&foreign), Some("NOT_FOUND"), "{backend:?}");
        let read = post(&test_db, Some(&as_alpha),
            "query($id: UUID!) { entity(id: $id) { source { syncVersion } attributes { key value provenance { sourceType overriddenByUser } } } }",
            json!({"id": alpha.entity_id})).await?;
        assert_eq!(
            read["data"]["entity"]["attributes"][0]["value"],
            json!("ada@mine.example"),
            "{read}"
        );
        assert_eq!(
            read["data"]["entity"]["attributes"][0]["provenance"]["overriddenByUser"],
            json!(true)
        );
        let clear = "mutation($e: UUID!) { clearAttributeOverride(entityId: $e, key: \"email\", expectedSyncVersion: 1) { syncVersion } }";
        let cleared = post(
            &test_db,
            Some(&as_alpha),
            clear,
            json!({"e": alpha.entity_id}),
        )
        .await?;
        assert_eq!(
            cleared["data"]["clearAttributeOverride"]["syncVersion"],
            json!(2),
            "{backend:?}: {cleared}"
        );
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM entity_attribute_provenance WHERE override_by_user",
                    vec![]
                )
                .await?,
            0
        );
    }
    Ok(())
}

/// A conflict (an override and a newer, different provider value) is listed to members and decided
/// by `resolveConflict`; stale versions, gone conflicts, foreign workspaces and forged cursors get
/// coded errors and change nothing.
#[tokio::test]
async fn members_list_and_resolve_conflicts_and_bad_input_changes_nothing() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let alpha = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
        let beta = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let as_alpha = token(alpha.user_id, 3600, SECRET)?;
        let as_beta = token(beta.user_id, 3600, SECRET)?;
        let before_edit = chrono::Utc::now();
        let edit = "mutation($e: UUID!) { updateEntityAttribute(entityId: $e, key: \"email\", value: \"ada@mine.example\", expectedSyncVersion: 0) { syncVersion } }";
        post(
            &test_db,
            Some(&as_alpha),
            edit,
            json!({"e": alpha.entity_id}),
        )
        .await?;
        let after_edit = chrono::Utc::now();
        // The provider's newer value, as a sync keeps it under the override.
        let hubspot = tests::fixtures::definition_id(&test_db, "hubspot").await?;
        let observe = |value: &'static str| {
            let later = (chrono::Utc::now() + chrono::Duration::hours(1)).fixed_offset();
            (
                "UPDATE entity_attribute_provenance SET observed_value = $1, observed_integration_id = $2,
                 observed_external_field = 'email', observed_updated_at = $3, observed_at = $4 WHERE entity_id = $5",
                vec![v(json!(value)), v(hubspot), v(later), v(later), v(alpha.entity_id)],
            )
        };
        let (sql, values) = observe("ada@provider.example");
        test_db.execute(sql, values).await?;
        let list = "query($w: UUID!, $after: String) { conflicts(workspaceId: $w, first: 10, after: $after) { edges { cursor node { entityId key userValue providerValue since integration { slug } entity { id } } } pageInfo { hasNextPage endCursor } } }";
        let page = post(
            &test_db,
            Some(&as_alpha),
            list,
            json!({"w": alpha.workspace_id}),
        )
        .await?;
        let node = &page["data"]["conflicts"]["edges"][0]["node"];
        assert_eq!(node["key"], json!("email"), "{backend:?}: {page}");
        assert_eq!(node["userValue"], json!("ada@mine.example"));
        assert_eq!(node["providerValue"], json!("ada@provider.example"));
        assert_eq!(node["integration"]["slug"], json!("hubspot"));
        assert_eq!(node["entity"]["id"], json!(alpha.entity_id));
        assert_eq!(
            page["data"]["conflicts"]["pageInfo"]["hasNextPage"],
            json!(false)
        );
        let after = page["data"]["conflicts"]["pageInfo"]["endCursor"].clone();
        let rest = post(
            &test_db,
            Some(&as_alpha),
            list,
            json!({"w": alpha.workspace_id, "after": after}),
        )
        .await?;
        assert_eq!(rest["data"]["conflicts"]["edges"], json!([]), "{rest}");

        for (who, variables, expected) in [
            (&as_beta, json!({"w": alpha.workspace_id}), "NOT_FOUND"),
            (
                &as_alpha,
                json!({"w": alpha.workspace_id, "after": "bm90LWEtY3Vyc29y"}),
                "BAD_USER_INPUT",
            ),
        ] {
            let refused = post(&test_db, Some(who), list, variables).await?;
            assert_eq!(code(&refused), Some(expected), "{backend:?}: {refused}");
        }
        let resolve = "mutation($e: UUID!, $keep: ConflictResolution!, $v: Int!) { resolveConflict(entityId: $e, key: \"email\", keep: $keep, expectedSyncVersion: $v) { syncVersion } }";
        for (who, variables, expected) in [
            (
                &as_alpha,
                json!({"e": alpha.entity_id, "keep": "PROVIDER", "v": 0}),
                "CONFLICT",
            ),
            (
                &as_beta,
                json!({"e": alpha.entity_id, "keep": "PROVIDER", "v": 1}),
                "NOT_FOUND",
            ),
        ] {
            let refused = post(&test_db, Some(who), resolve, variables).await?;
            assert_eq!(code(&refused), Some(expected), "{backend:?}: {refused}");
        }
        // Keeping the user's value ends the conflict and keeps the override.
        let kept = post(
            &test_db,
            Some(&as_alpha),
            resolve,
            json!({"e": alpha.entity_id, "keep": "USER", "v": 1}),
        )
        .await?;
        assert_eq!(
            kept["data"]["resolveConflict"]["syncVersion"],
            json!(2),
            "{backend:?}: {kept}"
        );
        let page = post(
            &test_db,
            Some(&as_alpha),
            list,
            json!({"w": alpha.workspace_id}),
        )
        .await?;
        assert_eq!(
            page["data"]["conflicts"]["edges"],
            json!([]),
            "{backend:?}: {page}"
        );
        let gone = post(
            &test_db,
            Some(&as_alpha),
            resolve,
            json!({"e": alpha.entity_id, "keep": "PROVIDER", "v": 2}),
        )
        .await?;
        assert_eq!(code(&gone), Some("NOT_FOUND"), "{backend:?}: {gone}");
        // A newer provider value again; taking it replaces the override.
        let (sql, values) = observe("ada@newer.example");
        test_db.execute(sql, values).await?;
        // (The refused resolution above changed nothing: the version is still 2.)
        let taken = post(
            &test_db,
            Some(&as_alpha),
            resolve,
            json!({"e": alpha.entity_id, "keep": "PROVIDER", "v": 2}),
        )
        .await?;
        assert_eq!(
            taken["data"]["resolveConflict"]["syncVersion"],
            json!(3),
            "{backend:?}: {taken}"
        );
        let read = post(&test_db, Some(&as_alpha),
            "query($id: UUID!) { entity(id: $id) { attributes { key value provenance { sourceType overriddenByUser externalField integration { slug } } } } }",
            json!({"id": alpha.entity_id})).await?;
        let attribute = &read["data"]["entity"]["attributes"][0];
        assert_eq!(attribute["value"], json!("ada@newer.example"), "{read}");
        assert_eq!(attribute["provenance"]["overriddenByUser"], json!(false));
        assert_eq!(attribute["provenance"]["sourceType"], json!("INTEGRATION"));
        assert_eq!(
            attribute["provenance"]["integration"]["slug"],
            json!("hubspot")
        );

        // The attribute's history, newest first: the provider's value taken, the decision to keep
        // the user's, the user's edit (with who made them).
        let history = post(&test_db, Some(&as_alpha),
            "query($id: UUID!) { entity(id: $id) { attributes { history(first: 10) { edges { node { oldValue newValue sourceType userId integration { slug } } } pageInfo { hasNextPage } } } } }",
            json!({"id": alpha.entity_id})).await?;
        let changes = &history["data"]["entity"]["attributes"][0]["history"]["edges"];
        let summary: Vec<(Value, Value, Value)> = changes
            .as_array()
            .map(|edges| {
                edges
                    .iter()
                    .map(|edge| {
                        let node = &edge["node"];
                        (
                            node["sourceType"].clone(),
                            node["newValue"].clone(),
                            node["userId"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let user = json!(alpha.user_id);
        assert_eq!(
            summary,
            vec![
                (
                    json!("INTEGRATION"),
                    json!("ada@newer.example"),
                    user.clone()
                ),
                (
                    json!("USER_OVERRIDE"),
                    json!("ada@mine.example"),
                    user.clone()
                ),
                (json!("USER_OVERRIDE"), json!("ada@mine.example"), user),
            ],
            "{backend:?}: {history}"
        );

        // A sync run is visible to the workspace's members only.
        let run = new_id();
        test_db
            .execute(
                "INSERT INTO sync_runs (id, workspace_id, connection_id, object_type, status, started_at)
                 VALUES ($1, $2, $3, 'contacts', 'succeeded', $4)",
                vec![v(run), v(alpha.workspace_id), v(alpha.connection_id), v(chrono::Utc::now().fixed_offset())],
            )
            .await?;
        let query = "query($id: UUID!) { syncRun(id: $id) { id objectType status } }";
        let seen = post(&test_db, Some(&as_alpha), query, json!({"id": run})).await?;
        assert_eq!(
            seen["data"]["syncRun"]["objectType"],
            json!("contacts"),
            "{backend:?}: {seen}"
        );
        let hidden = post(&test_db, Some(&as_beta), query, json!({"id": run})).await?;
        assert_eq!(
            hidden["data"]["syncRun"],
            Value::Null,
            "{backend:?}: {hidden}"
        );

        // The entity as it stood before the edit, just after it, and now.
        let as_of = "query($id: UUID!, $at: DateTime!) { entity(id: $id, asOf: $at) { attributes { key value provenance { sourceType } } } }";
        for (at, expected) in [
            (before_edit, json!("ada@example.com")),
            (after_edit, json!("ada@mine.example")),
            (chrono::Utc::now(), json!("ada@newer.example")),
        ] {
            let then = post(
                &test_db,
                Some(&as_alpha),
                as_of,
                json!({"id": alpha.entity_id, "at": at}),
            )
            .await?;
            assert_eq!(
                then["data"]["entity"]["attributes"][0]["value"], expected,
                "{backend:?} at {at}: {then}"
            );
        }
        for at in [
            chrono::Utc::now() + chrono::Duration::hours(1),
            chrono::Utc::now() - chrono::Duration::days(91),
        ] {
            let refused = post(
                &test_db,
                Some(&as_alpha),
                as_of,
                json!({"id": alpha.entity_id, "at": at}),
            )
            .await?;
            assert_eq!(
                code(&refused),
                Some("BAD_USER_INPUT"),
                "{backend:?}: {refused}"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn only_owners_and_admins_manage_connections_through_the_api() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let member = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let admin = Tenant::create(&test_db, "ADMIN", "hubspot").await?;
    let connect = "mutation($w: UUID!) { connectWithApiKey(workspaceId: $w, integrationSlug: \"stripe\", apiKey: \"rk_test_51Nv0FGQ9RKHgCVdKabcdef\") }";
    let by_member = post(
        &test_db,
        Some(&token(member.user_id, 3600, SECRET)?),
        connect,
        json!({"w": member.workspace_id}),
    )
    .await?;
    assert_eq!(code(&by_member), Some("FORBIDDEN"), "{by_member}");
    let as_admin = token(admin.user_id, 3600, SECRET)?;
    let elsewhere = post(
        &test_db,
        Some(&as_admin),
        connect,
        json!({"w": member.workspace_id}),
    )
    .await?;
    assert_eq!(code(&elsewhere), Some("NOT_FOUND"), "{elsewhere}");
    let connected = post(
        &test_db,
        Some(&as_admin),
        connect,
        json!({"w": admin.workspace_id}),
    )
    .await?;
    let connection_id = connected["data"]["connectWithApiKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!connection_id.is_empty(), "{connected}");
    let sync = post(
        &test_db,
        Some(&as_admin),
        "mutation($c: UUID!) { triggerSync(connectionId: $c, objectType: \"customers\") }",
        json!({"c": connection_id}),
    )
    .await?;
    assert_eq!(sync["data"]["triggerSync"], json!(1), "{sync}");
    let bad_object = post(
        &test_db,
        Some(&as_admin),
        "mutation($c: UUID!) { triggerSync(connectionId: $c, objectType: \"tickets\") }",
        json!({"c": connection_id}),
    )
    .await?;
    assert_eq!(code(&bad_object), Some("BAD_USER_INPUT"));
    let start = post(&test_db, Some(&as_admin), "mutation($w: UUID!) { startConnection(workspaceId: $w, integrationSlug: \"hubspot\") { authorizationUrl } }", json!({"w": admin.workspace_id})).await?;
    assert_eq!(
        code(&start),
        Some("PROVIDER_ERROR"),
        "no provider configured here: {start}"
    );
    let gone = post(
        &test_db,
        Some(&as_admin),
        "mutation($c: UUID!) { disconnect(connectionId: $c) }",
        json!({"c": connection_id}),
    )
    .await?;
    assert!(gone["errors"].is_null(), "{gone}");
    assert_eq!(
        test_db
            .count(
                "SELECT count(*) FROM integration_connections WHERE status = 'DISCONNECTED'",
                vec![]
            )
            .await?,
        1
    );
    Ok(())
}

const ORDERED_PAGE: &str = "query($w: UUID!, $order: EntityOrder, $after: String) {
  entities(workspaceId: $w, first: 3, after: $after, orderBy: $order) {
    edges { cursor node { id nodeId displayName } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount } }";

/// Every `orderBy` pages through all entities exactly once, in its documented order, on both
/// back ends; `totalCount` counts every match; a cursor of one order is refused by another.
#[tokio::test]
async fn entities_page_in_every_order_with_complete_page_info_and_a_total_count()
-> anyhow::Result<()> {
    use tests::fixtures::v;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
        test_db
            .execute("DELETE FROM entity_attribute_provenance", vec![])
            .await?;
        test_db
            .execute("DELETE FROM entity_attribute_values", vec![])
            .await?;
        test_db.execute("DELETE FROM entities", vec![]).await?;
        let base = chrono::Utc::now().fixed_offset() - chrono::Duration::hours(1);
        // (name, minutes after base): two share a time, two have no name, two share a name.
        let rows = [
            (Some("Carol"), 5),
            (None, 1),
            (Some("alice"), 9),
            (Some("Bob"), 5),
            (Some("Bob"), 2),
            (None, 7),
            (Some("Dave"), 3),
        ];
        let mut entities = Vec::new();
        for (index, (name, minutes)) in rows.into_iter().enumerate() {
            // Time-ordered ids, so `ID_ASC` is insertion order.
            let id = uuid::Uuid::now_v7();
            let updated_at = base + chrono::Duration::minutes(minutes);
            test_db.execute("INSERT INTO entities (id, workspace_id, entity_type, display_name, updated_at, source_type) VALUES ($1, $2, 'person', $3, $4, 'USER_CREATED')",
                vec![v(id), v(tenant.workspace_id), v(name.map(str::to_owned)), v(updated_at)]).await?;
            entities.push((id, name.map(str::to_owned), updated_at, index));
        }
        let bearer = token(tenant.user_id, 3600, SECRET)?;
        let expected = |order: &str| -> Vec<String> {
            let mut sorted = entities.clone();
            match order {
                "ID_ASC" => sorted.sort_by_key(|(id, ..)| *id),
                "UPDATED_AT_DESC" => {
                    sorted.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
                }
                _ => sorted
                    .sort_by(|a, b| (a.1.is_none(), &a.1, a.0).cmp(&(b.1.is_none(), &b.1, b.0))),
            }
            sorted.into_iter().map(|(id, ..)| id.to_string()).collect()
        };
        for order in ["ID_ASC", "UPDATED_AT_DESC", "DISPLAY_NAME_ASC"] {
            let mut seen: Vec<String> = Vec::new();
            let mut after: Option<String> = None;
            let mut pages = 0;
            loop {
                let response = post(
                    &test_db,
                    Some(&bearer),
                    ORDERED_PAGE,
                    json!({"w": tenant.workspace_id, "order": order, "after": after}),
                )
                .await?;
                let page = &response["data"]["entities"];
                assert!(response["errors"].is_null(), "{order}: {response}");
                assert_eq!(page["totalCount"], json!(rows.len()), "{order}");
                assert_eq!(page["pageInfo"]["hasPreviousPage"], json!(after.is_some()));
                let edges = page["edges"].as_array().cloned().unwrap_or_default();
                assert_eq!(page["pageInfo"]["startCursor"], edges[0]["cursor"]);
                seen.extend(
                    edges
                        .iter()
                        .filter_map(|edge| edge["node"]["id"].as_str().map(str::to_owned)),
                );
                pages += 1;
                if page["pageInfo"]["hasNextPage"] != json!(true) {
                    break;
                }
                after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
                assert!(pages < 10, "{order}: pages never end");
            }
            assert_eq!(seen, expected(order), "{backend:?} {order}");
            assert_eq!(pages, 3);
        }
        // A cursor of one order under another: refused.
        let first = post(
            &test_db,
            Some(&bearer),
            ORDERED_PAGE,
            json!({"w": tenant.workspace_id, "order": "UPDATED_AT_DESC"}),
        )
        .await?;
        let cursor = first["data"]["entities"]["pageInfo"]["endCursor"].clone();
        let mixed = post(
            &test_db,
            Some(&bearer),
            ORDERED_PAGE,
            json!({"w": tenant.workspace_id, "order": "DISPLAY_NAME_ASC", "after": cursor}),
        )
        .await?;
        assert_eq!(code(&mixed), Some("BAD_USER_INPUT"), "{mixed}");
    }
    Ok(())
}

/// `node(id:)` refetches an entity, a workspace and a connected account by their global ids;
/// another workspace's object is null, exactly as one that does not exist.
#[tokio::test]
async fn node_refetches_by_global_id_and_hides_other_workspaces() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let own = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let other = Tenant::create(&test_db, "OWNER", "stripe").await?;
    let bearer = token(own.user_id, 3600, SECRET)?;
    let ids = post(
        &test_db,
        Some(&bearer),
        "query($e: UUID!, $c: UUID!) {
        entity(id: $e) { nodeId } connection(id: $c) { nodeId } workspaces { id nodeId } }",
        json!({"e": own.entity_id, "c": own.connection_id}),
    )
    .await?;
    let data = &ids["data"];
    assert!(ids["errors"].is_null(), "{ids}");
    let node = "query($id: ID!) { node(id: $id) { __typename nodeId
        ... on Entity { id } ... on Workspace { id } ... on ConnectedAccount { id } } }";
    for (global, typename, id) in [
        (&data["entity"]["nodeId"], "Entity", own.entity_id),
        (
            &data["connection"]["nodeId"],
            "ConnectedAccount",
            own.connection_id,
        ),
        (
            &data["workspaces"][0]["nodeId"],
            "Workspace",
            own.workspace_id,
        ),
    ] {
        let response = post(&test_db, Some(&bearer), node, json!({"id": global})).await?;
        assert_eq!(
            response["data"]["node"],
            json!({"__typename": typename, "nodeId": global, "id": id.to_string()}),
            "{response}"
        );
    }
    // Another workspace's objects, and ids that never existed: null, with no error.
    let their_bearer = token(other.user_id, 3600, SECRET)?;
    let theirs = post(
        &test_db,
        Some(&their_bearer),
        "query($e: UUID!) { entity(id: $e) { nodeId } workspaces { nodeId } }",
        json!({"e": other.entity_id}),
    )
    .await?;
    for global in [
        &theirs["data"]["entity"]["nodeId"],
        &theirs["data"]["workspaces"][0]["nodeId"],
    ] {
        assert!(global.is_string(), "{theirs}");
        let response = post(&test_db, Some(&bearer), node, json!({"id": global})).await?;
        assert_eq!(response, json!({"data": {"node": null}}), "{global}");
    }
    let malformed = post(
        &test_db,
        Some(&bearer),
        node,
        json!({"id": "not-a-global-id"}),
    )
    .await?;
    assert_eq!(code(&malformed), Some("BAD_USER_INPUT"), "{malformed}");
    Ok(())
}

#[tokio::test]
async fn sync_states_show_their_place_in_the_queue_or_when_their_next_slice_runs()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
        let now = chrono::Utc::now().fixed_offset();
        let queue = integrations::JobQueue::new(
            test_db.db.clone(),
            std::sync::Arc::new(providers::SystemClock),
            "test",
        );
        let sync = |object_type: &str| {
            integrations::NewJob::new(integrations::Job::Sync {
                connection_id: tenant.connection_id,
                object_type: object_type.to_owned(),
            })
        };
        // Two jobs of other connections are due before the contacts sync; the deals sync is not
        // due for an hour.
        for _ in 0..2 {
            queue
                .enqueue(
                    integrations::NewJob::new(integrations::Job::Validate {
                        connection_id: uuid::Uuid::new_v4(),
                    })
                    .at(now - chrono::Duration::minutes(5)),
                )
                .await?;
        }
        queue
            .enqueue(sync("contacts").at(now - chrono::Duration::minutes(1)))
            .await?;
        queue
            .enqueue(sync("deals").at(now + chrono::Duration::hours(1)))
            .await?;
        for object_type in ["contacts", "deals", "companies"] {
            test_db
                .execute(
                    "INSERT INTO integration_sync_states (id, connection_id, object_type) VALUES ($1, $2, $3)",
                    vec![v(uuid::Uuid::new_v4()), v(tenant.connection_id), v(object_type)],
                )
                .await?;
        }
        let bearer = token(tenant.user_id, 3600, SECRET)?;
        let response = post(
            &test_db,
            Some(&bearer),
            "query($id: UUID!) { connection(id: $id) { syncStates { objectType nextRunAt queuePosition } } }",
            json!({"id": tenant.connection_id}),
        )
        .await?;
        let states = response["data"]["connection"]["syncStates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let state = |object_type: &str| {
            states
                .iter()
                .find(|state| state["objectType"] == object_type)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            state("contacts")["queuePosition"],
            json!(3),
            "{backend:?}: {response}"
        );
        assert!(state("contacts")["nextRunAt"].is_string(), "{response}");
        assert_eq!(state("deals")["queuePosition"], Value::Null, "{response}");
        let deals_at: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(state("deals")["nextRunAt"].clone())?;
        assert!(
            (deals_at - (now + chrono::Duration::hours(1)).to_utc())
                .num_seconds()
                .abs()
                <= 1,
            "{response}"
        );
        assert_eq!(state("companies")["nextRunAt"], Value::Null, "{response}");
        assert_eq!(state("companies")["queuePosition"], Value::Null);
    }
    Ok(())
}
