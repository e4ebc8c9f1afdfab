//! Least-privilege database roles on PostgreSQL, with the server connected as them: GraphQL
//! requests as `platform_api` (which can only become `authenticated`), everything that spans
//! tenants as `platform_worker` (not owner, superuser or BYPASSRLS). Queries, mutations, webhooks
//! and readiness work; inside a request's transaction, `RESET ROLE` or switching role reads no
//! other tenant's row; tenant tables force row-level security on their owner.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use sea_orm::{ConnectionTrait as _, DbBackend, Statement, TransactionTrait as _};
use serde_json::{Value, json};
use server::Settings;
use server::graphql::RequestDb;
use server::graphql::auth::{Claims, Viewer, sign};
use tests::fixtures::Tenant;
use tests::{Backend, TestDb};
use tower::ServiceExt as _;

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SECRET: &str = "least-privilege-roles-test-secret-32-bytes";

fn as_role(url: &str, role: &str) -> String {
    url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1)
}

async fn graphql(
    app: &axum::Router,
    user_id: uuid::Uuid,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let exp = u64::try_from(chrono::Utc::now().timestamp() + 600)?;
    let token = sign(
        &Claims {
            sub: user_id.to_string(),
            email: Some("someone@example.com".to_owned()),
            exp,
        },
        &providers::secrecy::SecretString::from(SECRET),
    )?;
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(
            json!({"query": query, "variables": variables}).to_string(),
        ))?;
    let response = app.clone().oneshot(request).await?;
    Ok(serde_json::from_slice(
        &to_bytes(response.into_body(), 1 << 20).await?,
    )?)
}

#[tokio::test]
async fn the_server_runs_as_least_privilege_roles_and_a_request_cannot_escape_its_role()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let a = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    let b = Tenant::create(&test_db, "OWNER", "stripe").await?;
    let (api_url, worker_url) = (
        as_role(&test_db.url, "platform_api"),
        as_role(&test_db.url, "platform_worker"),
    );
    let settings = Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(test_db.url.clone()),
        "API_DATABASE_URL" => Some(api_url.clone()),
        "WORKER_DATABASE_URL" => Some(worker_url.clone()),
        "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
        "AUTH_JWT_SECRET" => Some(SECRET.to_owned()),
        "BACKGROUND_WORKERS" => Some("0".to_owned()),
        _ => None,
    })?;
    let state = server::connect(&settings).await?;
    let app = server::router(state.clone());

    // Neither login role is owner, superuser or BYPASSRLS; the API role inherits nothing.
    let flags = test_db
        .count(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('platform_api', 'platform_worker')
             AND NOT rolsuper AND NOT rolbypassrls AND NOT rolcreaterole AND NOT rolcreatedb",
            vec![],
        )
        .await?;
    assert_eq!(flags, 2);
    let owned = test_db
        .count(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
             AND tableowner IN ('platform_api', 'platform_worker')",
            vec![],
        )
        .await?;
    assert_eq!(owned, 0);
    let forced = test_db
        .count(
            "SELECT count(*) FROM pg_class WHERE relname IN ('entities', 'integration_credentials', 'job_queue')
             AND relforcerowsecurity",
            vec![],
        )
        .await?;
    assert_eq!(forced, 3);

    // Queries and mutations work through the roles.
    let own = graphql(
        &app,
        a.user_id,
        "query($w: UUID!) { entities(workspaceId: $w) { totalCount } connections(workspaceId: $w) { id } }",
        json!({"w": a.workspace_id}),
    )
    .await?;
    assert!(own["errors"].is_null(), "{own}");
    assert_eq!(own["data"]["entities"]["totalCount"], 1);
    for (query, variables) in [
        (
            "mutation($c: UUID!) { updatePropertyMappings(connectionId: $c, mappings: {contacts: {hs_score: \"score\"}}) }",
            json!({"c": a.connection_id}),
        ),
        (
            "mutation($c: UUID!) { triggerSync(connectionId: $c) }",
            json!({"c": a.connection_id}),
        ),
        (
            "mutation { createWorkspace(name: \"Second\") { id } }",
            json!({}),
        ),
        (
            "mutation($e: UUID!) { updateEntityAttribute(entityId: $e, key: \"email\", value: \"new@example.com\", expectedSyncVersion: 1) { syncVersion } }",
            json!({"e": a.entity_id}),
        ),
    ] {
        let answer = graphql(&app, a.user_id, query, variables).await?;
        let codes: Vec<&str> = answer["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| error["extensions"]["code"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            codes.iter().all(|code| *code == "CONFLICT"),
            "{query}: {answer}"
        );
    }
    let theirs = graphql(
        &app,
        a.user_id,
        "query($w: UUID!) { entities(workspaceId: $w) { totalCount } }",
        json!({"w": b.workspace_id}),
    )
    .await?;
    assert_eq!(
        theirs["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{theirs}"
    );

    // Readiness needs only SELECT on the migration table (the worker role has it).
    let ready = app
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty())?)
        .await?;
    assert_eq!(ready.status(), StatusCode::OK);

    // The worker role may analyze the tables syncs grow (through the owner's function), and
    // the API role may not.
    {
        use sea_orm::ConnectionTrait as _;
        let worker = sea_orm::Database::connect(&worker_url).await?;
        worker
            .execute_unprepared("SELECT analyze_synced_tables()")
            .await?;
        // It analyzes the columns queries are planned on, not the JSON values.
        let test_db = &test_db;
        let stats = |columns: &'static str| {
            let sql = format!(
                "SELECT count(*) FROM pg_stats WHERE schemaname = 'public'
                 AND (tablename, attname) IN ({columns})"
            );
            async move { test_db.count(&sql, vec![]).await }
        };
        let planned = stats(
            "('entities', 'source_external_id'), ('entities', 'workspace_id'),
             ('entity_attribute_values', 'entity_id'),
             ('entity_attribute_provenance', 'override_by_user')",
        )
        .await?;
        assert_eq!(planned, 4, "the planned columns were not analyzed");
        let json = stats(
            "('entity_attribute_values', 'value'),
             ('entity_attribute_provenance', 'observed_value')",
        )
        .await?;
        assert_eq!(json, 0, "the JSON values were analyzed");
        let api = sea_orm::Database::connect(&api_url).await?;
        let refused = api
            .execute_unprepared("SELECT analyze_synced_tables()")
            .await;
        assert!(
            refused.is_err_and(|error| error.to_string().contains("permission denied")),
            "the API role ran analyze_synced_tables()"
        );
    }

    // Inside a request's transaction: leaving `authenticated` reads nothing of anyone's.
    let viewer = Viewer {
        user_id: a.user_id,
        email: String::new(),
    };
    for escape in [
        "RESET ROLE",
        "SET ROLE platform_worker",
        "SELECT set_config('role', 'postgres', true)",
        "SELECT set_config('role', 'platform_worker', true)",
    ] {
        let request_db = RequestDb::begin(&state.api_db, &viewer).await?;
        let outcome = {
            let transaction = request_db.lock().await;
            let escaped = transaction.execute_unprepared(escape).await;
            match escaped {
                Err(_) => None,
                Ok(_) => Some(
                    transaction
                        .query_one_raw(Statement::from_string(
                            DbBackend::Postgres,
                            "SELECT count(*) AS n FROM entities",
                        ))
                        .await,
                ),
            }
        };
        match outcome {
            // The switch itself was refused.
            None => {}
            // The switch happened (RESET ROLE): the login role reads no table.
            Some(Err(error)) => assert!(
                error.to_string().contains("permission denied"),
                "{escape}: {error}"
            ),
            Some(Ok(row)) => {
                let n: i64 = row.map_or(Ok(0), |row| row.try_get("", "n"))?;
                panic!("{escape} then read {n} entities");
            }
        }
        request_db.finish(false).await?;
    }
    // The API's login role alone reads nothing either.
    let api = migration::connect(&api_url, 1).await?;
    let transaction = api.begin().await?;
    let direct = transaction
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM integration_credentials",
        ))
        .await;
    assert!(direct.is_err(), "platform_api read integration_credentials");
    transaction.rollback().await?;
    Ok(())
}
