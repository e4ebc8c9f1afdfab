//! The server on the embedded SQLite default (migrated on start, with a demo workspace) and its
//! `/healthz` and `/readyz`, which tell a migrated database from one that is not.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use server::{AppState, Settings};
use tests::{Backend, TestDb};
use tower::ServiceExt as _;

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn get(app: axum::Router, path: &str) -> anyhow::Result<(StatusCode, serde_json::Value)> {
    let response = app.oneshot(Request::get(path).body(Body::empty())?).await?;
    let status = response.status();
    let body = to_bytes(response.into_body(), 64 * 1024).await?;
    Ok((status, serde_json::from_slice(&body)?))
}

#[tokio::test]
async fn the_server_migrates_an_embedded_sqlite_database_and_is_ready() -> anyhow::Result<()> {
    let path = std::env::temp_dir()
        .join(format!("server-{}", std::process::id()))
        .join("platform.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
        _ => None,
    })?;
    assert!(settings.is_sqlite());
    let app = server::build(&settings).await?;
    let (status, body) = get(app.clone(), "/healthz").await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = get(app, "/readyz").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["schema_version"].as_str(),
        Some("m20261203_000011_sync_fingerprint")
    );
    if let Some(folder) = path.parent() {
        std::fs::remove_dir_all(folder)?;
    }
    Ok(())
}

#[tokio::test]
async fn readyz_reports_pending_migrations_on_postgres_until_migrated() -> anyhow::Result<()> {
    let test_db = TestDb::empty(Backend::Postgres).await?;
    let settings = Settings::from_lookup(|name| {
        (name == "TOKEN_ENCRYPTION_KEYS").then(|| TEST_KEYS.to_owned())
    })?;
    let app = server::router(AppState::new(
        test_db.db.clone(),
        settings,
        Arc::new(providers::SystemClock),
    )?);
    let (status, body) = get(app.clone(), "/readyz").await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["pending_migrations"].as_array().map(Vec::len),
        Some(migration::Migrator::migrations_len())
    );
    use migration::MigratorTrait as _;
    migration::Migrator::up(&test_db.db, None).await?;
    let (status, _) = get(app, "/readyz").await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[test]
fn settings_default_to_the_embedded_database_and_reject_a_bad_bind_address() -> anyhow::Result<()> {
    let settings = Settings::from_lookup(|_| None)?;
    assert_eq!(settings.database_url, migration::DEFAULT_DATABASE_URL);
    assert_eq!(settings.bind_addr.to_string(), "127.0.0.1:8080");
    let bad = Settings::from_lookup(|name| (name == "BIND_ADDR").then(|| "localhost".to_owned()));
    let error = bad.expect_err("an address without a port was accepted");
    assert!(
        error.to_string().starts_with("BIND_ADDR is invalid"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn the_embedded_default_seeds_a_demo_workspace_whose_token_answers_a_query()
-> anyhow::Result<()> {
    let path = std::env::temp_dir()
        .join(format!("server-demo-{}", std::process::id()))
        .join("platform.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.clone()),
        "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
        "AUTH_JWT_SECRET" => Some("demo-secret-for-the-embedded-default-test".to_owned()),
        _ => None,
    })?;
    let state = server::connect(&settings).await?;
    server::seed_demo(&state).await?;
    let access = server::seed_demo(&state).await?;
    assert!(access.graphiql_url.ends_with("/graphql"));
    let app = server::router(state);
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", access.token))
        .body(Body::from(
            r#"{"query":"{ workspaces { name role } integrations { slug } }"}"#,
        ))?;
    let response = app.oneshot(request).await?;
    let body: serde_json::Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await?)?;
    assert_eq!(
        body["data"]["workspaces"],
        serde_json::json!([{"name": "Demo workspace", "role": "OWNER"}]),
        "{body}"
    );
    assert_eq!(
        body["data"]["integrations"].as_array().map(Vec::len),
        Some(6)
    );
    if let Some(folder) = path.parent() {
        std::fs::remove_dir_all(folder)?;
    }
    Ok(())
}

/// `/readyz` runs no DDL: a role that may only read `seaql_migrations` gets the same answer as
/// the owner, and an absent migration table reads as "nothing applied".
#[tokio::test]
async fn readyz_needs_only_select_on_the_migration_table() -> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    // A role of this test's own (unique name), dropped at the end.
    let role = format!("readyz_probe_{}", tests::fixtures::new_id().simple());
    test_db
        .db
        .execute_unprepared(&format!(
            "CREATE ROLE {role} LOGIN; GRANT SELECT ON seaql_migrations TO {role}"
        ))
        .await?;
    let probe_url = test_db
        .url
        .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let outcome = async {
        let probe = migration::connect(&probe_url, 1).await?;
        let status = migration::schema_status(&probe).await?;
        probe.close().await?;
        anyhow::Ok(status)
    }
    .await;
    test_db
        .db
        .execute_unprepared(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .await?;
    let status = outcome?;
    assert!(status.is_current(), "{:?}", status.pending);
    assert_eq!(status.unknown, Vec::<String>::new());

    let empty = TestDb::empty(Backend::Postgres).await?;
    let status = migration::schema_status(&empty.db).await?;
    assert_eq!(status.pending.len(), migration::Migrator::migrations_len());
    let created = empty
        .count(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'seaql_migrations'",
            vec![],
        )
        .await?;
    assert_eq!(created, 0, "reading the status created the migration table");
    Ok(())
}
