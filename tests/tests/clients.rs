//! The API with its real clients, against a live server on loopback: the Node checks under
//! `tests/clients/` (Apollo Client with relay pagination, graphql-ws, persisted queries, the
//! introspection query, GET, CORS, the graphql-http audit) and headless Chromium (GraphiQL offline
//! with its docs explorer, a query from the editor, a cross-origin fetch allowed and refused, a
//! screenshot under `target/client-artifacts/`), and the schema linter on the committed SDL.
//! `scripts/test` installs what they need (`npm ci`, Debian's `chromium`); without it these tests
//! fail and say what to run.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use providers::secrecy::SecretString;
use server::graphql::auth::{Claims, sign};
use server::{AppState, Settings};
use tests::fixtures::{Tenant, v};
use tests::{Backend, TestDb, workspace_root};

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SECRET: &str = "a-client-checks-secret-of-at-least-32-bytes";

fn clients_dir() -> anyhow::Result<PathBuf> {
    let dir = workspace_root().join("tests/clients");
    anyhow::ensure!(
        dir.join("node_modules").is_dir(),
        "tests/clients/node_modules is missing: run `npm ci --prefix tests/clients` (scripts/test does)"
    );
    Ok(dir)
}

/// Runs `node <script>` in `tests/clients` with `env`, off the async workers, and fails with its
/// output unless it exits 0.
async fn node(script: &'static str, env: Vec<(&'static str, String)>) -> anyhow::Result<String> {
    let dir = clients_dir()?;
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .current_dir(dir)
            .envs(env)
            .output()
    })
    .await??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    anyhow::ensure!(output.status.success(), "node {script} failed:\n{text}");
    Ok(text)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A live server on loopback over a migrated database with one tenant of `entities` entities,
/// and a token of that tenant's member.
struct Live {
    url: String,
    token: String,
    tenant: Tenant,
    _db: TestDb,
}

async fn live(backend: Backend, entities: usize, extra: &[(&str, &str)]) -> anyhow::Result<Live> {
    let test_db = TestDb::migrated(backend).await?;
    let tenant = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    for index in 1..entities {
        test_db.execute("INSERT INTO entities (id, workspace_id, entity_type, display_name, source_type) VALUES ($1, $2, 'person', $3, 'USER_CREATED')",
            vec![v(uuid::Uuid::now_v7()), v(tenant.workspace_id), v(format!("Person {index}"))]).await?;
    }
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    let settings = Settings::from_lookup(move |name| {
        extra
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .or_else(|| match name {
                "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
                "AUTH_JWT_SECRET" => Some(SECRET.to_owned()),
                _ => None,
            })
    })?;
    let app = server::router(AppState::new(
        test_db.db.clone(),
        settings,
        Arc::new(providers::SystemClock),
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let exp = u64::try_from(chrono::Utc::now().timestamp() + 3600)?;
    let token = sign(
        &Claims {
            sub: tenant.user_id.to_string(),
            email: Some("client@example.com".to_owned()),
            exp,
        },
        &SecretString::from(SECRET),
    )?;
    Ok(Live {
        url,
        token,
        tenant,
        _db: test_db,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_graphql_ws_persisted_queries_introspection_get_cors_and_the_graphql_http_audit()
-> anyhow::Result<()> {
    let entities = 7;
    let live = live(
        Backend::Postgres,
        entities,
        &[("CORS_ALLOWED_ORIGINS", "https://app.example.com")],
    )
    .await?;
    let output = node(
        "api.mjs",
        vec![
            ("SERVER_URL", live.url.clone()),
            ("TOKEN", live.token.clone()),
            ("WORKSPACE_ID", live.tenant.workspace_id.to_string()),
            ("CONNECTION_ID", live.tenant.connection_id.to_string()),
            ("ENTITY_COUNT", entities.to_string()),
            ("ALLOWED_ORIGIN", "https://app.example.com".to_owned()),
            ("REFUSED_ORIGIN", "https://evil.example".to_owned()),
        ],
    )
    .await?;
    println!("{output}");
    assert!(output.contains(" 0 failed"), "{output}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_runs_graphiql_offline_and_fetches_across_origins_only_where_allowed()
-> anyhow::Result<()> {
    let live = live(Backend::Sqlite, 3, &[]).await?;
    let artifacts = workspace_root().join("target/client-artifacts");
    std::fs::create_dir_all(&artifacts)?;
    let screenshot = artifacts.join("graphiql.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = node(
        "browser.mjs",
        vec![
            ("SERVER_URL", live.url.clone()),
            ("TOKEN", live.token.clone()),
            (
                "ALLOWED_PAGE_ORIGIN",
                format!("http://127.0.0.1:{}", free_port()?),
            ),
            // Loopback, but not an origin development allows.
            (
                "REFUSED_PAGE_ORIGIN",
                format!("http://127.0.0.2:{}", free_port()?),
            ),
            ("ARTIFACT_DIR", artifacts.display().to_string()),
        ],
    )
    .await?;
    println!("{output}");
    assert!(output.contains(" 0 failed"), "{output}");
    assert!(
        std::fs::metadata(&screenshot)?.len() > 10_000,
        "no screenshot at {}",
        screenshot.display()
    );
    Ok(())
}

#[tokio::test]
async fn the_exported_schema_passes_the_schema_linter() -> anyhow::Result<()> {
    let output = node("lint-schema.mjs", Vec::new()).await?;
    assert!(output.contains("0 error(s)"), "{output}");
    Ok(())
}

/// The vendored GraphiQL on its own (a Node static server, no Rust server): `index.html` names
/// only `/graphql/assets/…`, its Content-Security-Policy hash matches its inline script, and the
/// page renders with every off-loopback request aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendored_graphiql_renders_offline_and_its_csp_matches() -> anyhow::Result<()> {
    let artifacts = workspace_root().join("target/client-artifacts/assets");
    std::fs::create_dir_all(&artifacts)?;
    let output = node(
        "graphiql-assets.mjs",
        vec![("ARTIFACT_DIR", artifacts.display().to_string())],
    )
    .await?;
    println!("{output}");
    assert!(output.contains(" 0 failed"), "{output}");
    Ok(())
}
