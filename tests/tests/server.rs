//! The server on the embedded SQLite default (migrated on start, with a demo workspace) and its
//! `/healthz` and `/readyz`, which tell a migrated database from one that is not.

use std::sync::Arc;

use anyhow::Context as _;

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
    // The newest migration (named here, so a new one is a deliberate change to this test).
    assert_eq!(
        body["schema_version"].as_str(),
        Some("m20261207_000012_analyze_key_columns")
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

/// A pooled connection is not pinged at every checkout, but one idle past
/// `migration::database::IDLE_BEFORE_PING` is: after PostgreSQL dropped every connection of the
/// pool (a restart, an idle-session timeout, a proxy), the first statement once they sat idle
/// that long runs on a fresh connection instead of failing on a dead one.
#[tokio::test]
async fn a_connection_postgres_dropped_is_replaced_before_use_once_it_sat_idle()
-> anyhow::Result<()> {
    use sea_orm::ConnectionTrait as _;
    let test_db = TestDb::empty(Backend::Postgres).await?;
    let pool = migration::connect(&test_db.url, 2).await?;
    pool.execute_unprepared("SELECT 1").await?;
    let admin = migration::connect(&tests::test_db::postgres_admin_url(), 1).await?;
    let database = pool
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_database()",
        ))
        .await?
        .context("no row")?
        .try_get_by_index::<String>(0)?;
    let backends = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
        [database.clone().into()],
    );
    admin
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            [database.clone().into()],
        ))
        .await?;
    let gone = async {
        loop {
            let row = admin
                .query_one_raw(backends.clone())
                .await?
                .context("no row")?;
            if row.try_get_by_index::<i64>(0)? == 0 {
                return anyhow::Ok(());
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), gone)
        .await
        .context("the terminated backends did not go")??;
    // The behaviour is defined by idle time, so the test waits that long.
    tokio::time::sleep(
        migration::database::IDLE_BEFORE_PING + std::time::Duration::from_millis(100),
    )
    .await;
    pool.execute_unprepared("SELECT 1")
        .await
        .context("the first statement after the server dropped the pool's connections")?;
    admin.close().await?;
    pool.close().await?;
    Ok(())
}
