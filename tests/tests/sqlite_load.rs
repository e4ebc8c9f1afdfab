//! The embedded default under mixed load: the real server binary on a SQLite file takes a stream
//! of signed HubSpot webhooks (16 at a time) while its worker claims and runs the syncs they
//! queue and its scheduler ticks. Every delivery is answered 200, the syncs run, and the log has
//! no ERROR line and no "database is locked".

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integrations::{CredentialKind, CredentialStore};
use providers::secrecy::SecretString;
use providers::{Keyring, SystemClock, TokenSet};
use serde_json::json;
use tests::fixtures::{Tenant, v};
use tests::{Backend, TestDb};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const CLIENT_SECRET: &str = "hubspot-app-secret";
const PORTAL_ID: u64 = 62515;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signed_delivery(base_url: &str, event_id: u64) -> (String, String, String) {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let timestamp = chrono::Utc::now().timestamp_millis();
    let body = json!([{
        "eventId": event_id, "subscriptionId": 7, "portalId": PORTAL_ID, "appId": 1,
        "occurredAt": timestamp, "subscriptionType": "contact.propertyChange",
        "objectId": 1000 + event_id % 50, "propertyName": "email", "propertyValue": "ada@example.com"
    }])
    .to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(CLIENT_SECRET.as_bytes())
        .unwrap_or_else(|error| panic!("{error}"));
    mac.update(format!("POST{base_url}/webhooks/hubspot{body}{timestamp}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (body, signature, timestamp.to_string())
}

#[tokio::test]
async fn webhooks_and_the_worker_share_a_sqlite_file_without_a_lock_error() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    test_db
        .execute(
            "UPDATE integration_connections SET status = 'ACTIVE', connection_status = 'connected',
             connection_metadata = '{\"external_account_id\": \"62515\"}' WHERE id = $1",
            vec![v(tenant.connection_id)],
        )
        .await?;
    let keyring = Arc::new(Keyring::parse(&SecretString::from(TEST_KEYS))?);
    CredentialStore::new(test_db.db.clone(), Arc::new(SystemClock), keyring)
        .store(
            tenant.connection_id,
            CredentialKind::OAuth2,
            &TokenSet {
                access_token: SecretString::from("live-token"),
                refresh_token: Some(SecretString::from("refresh")),
                expires_at: Some(chrono::Utc::now() + chrono::Duration::days(3650)),
                scopes: Vec::new(),
                metadata: serde_json::Map::new(),
            },
        )
        .await?;
    let provider = MockServer::start().await;
    let contacts: Vec<_> = (0..50)
        .map(|n| {
            json!({"id": (1000 + n).to_string(), "properties": {
            "email": format!("p{n}@example.com"), "lastmodifieddate": "2026-11-01T10:00:00.000Z"}})
        })
        .collect();
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total": 50, "results": contacts})),
        )
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&provider)
        .await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base_url = format!("http://127.0.0.1:{port}");
    let log_path = std::env::temp_dir().join(format!("sqlite-load-{}.log", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path)?;
    let server = Running(
        Command::new(tests::workspace_binary("server")?)
            .env_clear()
            .env("DATABASE_URL", &test_db.url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_BASE_URL", &base_url)
            .env("TOKEN_ENCRYPTION_KEYS", TEST_KEYS)
            .env("AUTH_JWT_SECRET", "sqlite-load-secret-of-at-least-32-bytes")
            .env("HUBSPOT_CLIENT_ID", "client")
            .env("HUBSPOT_CLIENT_SECRET", CLIENT_SECRET)
            .env("HUBSPOT_API_BASE_URL", provider.uri())
            .env("RATE_LIMIT_WEBHOOKS", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?,
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http
        .get(format!("{base_url}/readyz"))
        .send()
        .await
        .map_or(true, |response| !response.status().is_success())
    {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deliveries 16 at a time, a batch every 50 ms (about 300 a second), until the worker has run
    // two webhook syncs meanwhile (they come due every 10 seconds); at most 60 s.
    let succeeded_syncs =
        "SELECT count(*) FROM job_queue WHERE kind = 'sync' AND status = 'succeeded'";
    let mut sent = 0_u64;
    let mut statuses: Vec<reqwest::StatusCode> = Vec::new();
    while test_db.count(succeeded_syncs, vec![]).await? < 2 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{sent} deliveries ({} answered 2xx) and no two syncs ran; jobs: {}",
            statuses.iter().filter(|status| status.is_success()).count(),
            test_db
                .count("SELECT count(*) FROM job_queue", vec![])
                .await?
        );
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..16 {
            sent += 1;
            let (body, signature, timestamp) = signed_delivery(&base_url, sent);
            let request = http
                .post(format!("{base_url}/webhooks/hubspot"))
                .header("content-type", "application/json")
                .header("x-hubspot-signature-v3", signature)
                .header("x-hubspot-request-timestamp", timestamp)
                .body(body);
            batch.spawn(async move { request.send().await.map(|response| response.status()) });
        }
        while let Some(status) = batch.join_next().await {
            statuses.push(status??);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    let refused: Vec<_> = statuses
        .iter()
        .filter(|status| !status.is_success())
        .collect();
    assert!(refused.is_empty(), "{} refused: {refused:?}", refused.len());
    let stored = test_db
        .count("SELECT count(*) FROM webhook_events", vec![])
        .await?;
    assert_eq!(stored, i64::try_from(sent)?, "every delivery stored once");
    let text = std::fs::read_to_string(&log_path)?;
    std::fs::remove_file(&log_path)?;
    let bad: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.contains("\"level\":\"ERROR\"")
                || line.contains("database is locked")
                || line.contains("database is busy")
        })
        .collect();
    println!("{sent} deliveries, {} log lines", text.lines().count());
    assert!(bad.is_empty(), "{} bad lines: {bad:#?}", bad.len());
    Ok(())
}
