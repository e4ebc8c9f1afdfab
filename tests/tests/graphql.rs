//! The GraphQL API through its router: authentication, membership checks, RLS per request, limits,
//! error codes, and the exported schema.

use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use providers::secrecy::SecretString;
use sea_orm::{ColumnTrait as _, ConnectionTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};
use server::graphql::auth::{Claims, sign};
use server::graphql::{GraphqlState, RequestDb, router, schema};
use tests::fixtures::{Tenant, new_id};
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

async fn post(
    test_db: &TestDb,
    bearer: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let app = router(GraphqlState {
        db: test_db.db.clone(),
        jwt_secret: SecretString::from(SECRET),
        schema: schema(),
    });
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
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } }";
    let response = post(&test_db, Some(&bearer), deep, json!({})).await?;
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("nested too deep"), "{response}");
    let malformed = post(&test_db, Some(&bearer), "{ viewer { id ", json!({})).await?;
    assert!(malformed["errors"].is_array(), "{malformed}");
    Ok(())
}
