//! The server's non-GraphQL endpoints end to end through `Router::oneshot` on a fresh PostgreSQL
//! database: settings (production refusal, dev keys, redaction), webhooks (app-level and
//! per-connection, signatures, dedupe, limits), the OAuth callback against a wiremock provider, and
//! `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, Response, StatusCode, header};
use integrations::{CredentialKind, ProviderFactory as _, StartConnection};
use providers::secrecy::SecretString;
use providers::{ConnectionConfig, ProviderKind, SystemClock, TokenSet};
use serde_json::json;
use server::{AppState, Settings, SettingsError};
use tests::fixtures::{Tenant, new_id, v};
use tests::{Backend, TestDb};
use tower::ServiceExt as _;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PUBLIC_BASE_URL: &str = "https://platform.example.com";
const APP_URL: &str = "https://app.example.com/integrations";
const HUBSPOT_CLIENT_SECRET: &str = "hubspot-client-secret";
const HUBSPOT_PORTAL_ID: &str = "62515";

// ---- Signing, as the providers document it (HMAC-SHA256 written out: the test crate has no
// crypto dependency of its own, and a wrong implementation could not pass the verifiers). ----

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap_or_else(|error| panic!("{error}"));
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- The world under test. ----

fn lookup(extra: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let mut values: Vec<(String, String)> = vec![
        ("TOKEN_ENCRYPTION_KEYS".to_owned(), TEST_KEYS.to_owned()),
        ("AUTH_JWT_SECRET".to_owned(), "test-jwt-secret".to_owned()),
        ("PUBLIC_BASE_URL".to_owned(), PUBLIC_BASE_URL.to_owned()),
        ("APP_URL".to_owned(), APP_URL.to_owned()),
        ("HUBSPOT_CLIENT_ID".to_owned(), "hubspot-client".to_owned()),
        (
            "HUBSPOT_CLIENT_SECRET".to_owned(),
            HUBSPOT_CLIENT_SECRET.to_owned(),
        ),
    ];
    values.extend(
        extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    move |name| {
        values
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

struct World {
    test_db: TestDb,
    state: AppState,
    app: Router,
    provider: MockServer,
}

impl World {
    async fn new() -> anyhow::Result<Self> {
        let test_db = TestDb::migrated(Backend::Postgres).await?;
        let provider = MockServer::start().await;
        let settings = Settings::from_lookup(lookup(&[
            ("HUBSPOT_AUTH_BASE_URL", provider.uri()),
            ("STRIPE_API_BASE_URL", provider.uri()),
        ]))?;
        let state = AppState::new(test_db.db.clone(), settings, Arc::new(SystemClock))?;
        let app = server::router(state.clone());
        Ok(Self {
            test_db,
            state,
            app,
            provider,
        })
    }

    /// Stores a restricted Stripe key as the connection's credentials.
    async fn store_api_key(&self, tenant: &Tenant) -> anyhow::Result<()> {
        let tokens = TokenSet {
            access_token: SecretString::from("rk_test_restricted"),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            metadata: serde_json::Map::new(),
        };
        self.state
            .credentials
            .store(tenant.connection_id, CredentialKind::ApiKey, &tokens)
            .await?;
        Ok(())
    }

    /// The connection's `status` column.
    async fn connection_status(&self, tenant: &Tenant) -> anyhow::Result<String> {
        use sea_orm::EntityTrait as _;
        Ok(
            entity::integration_connections::Entity::find_by_id(tenant.connection_id)
                .one(&self.test_db.db)
                .await?
                .map(|row| row.status)
                .unwrap_or_default(),
        )
    }

    /// A GraphQL request as `user_id` (signed with the test's `AUTH_JWT_SECRET`).
    async fn graphql(
        &self,
        user_id: uuid::Uuid,
        query: &str,
        variables: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let exp = u64::try_from(chrono::Utc::now().timestamp() + 600)?;
        let token = server::graphql::auth::sign(
            &server::graphql::auth::Claims {
                sub: user_id.to_string(),
                email: Some("someone@example.com".to_owned()),
                exp,
            },
            &SecretString::from("test-jwt-secret"),
        )?;
        let request = Request::post("/graphql")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(
                json!({"query": query, "variables": variables}).to_string(),
            ))?;
        let response = self.send(request).await?;
        let body = to_bytes(response.into_body(), 1 << 20).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    async fn send(&self, request: Request<Body>) -> anyhow::Result<Response<Body>> {
        Ok(self.app.clone().oneshot(request).await?)
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<(StatusCode, String, String)> {
        let mut request = Request::post(path);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = self.send(request.body(Body::from(body))?).await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = to_bytes(response.into_body(), 1024 * 1024).await?;
        Ok((status, content_type, String::from_utf8(body.to_vec())?))
    }

    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        self.test_db.count(sql, vec![]).await
    }

    /// A connection of `slug` whose provider account is `account_id`.
    async fn connection(&self, slug: &str, account_id: &str) -> anyhow::Result<Tenant> {
        let tenant = Tenant::create(&self.test_db, "OWNER", slug).await?;
        self.test_db
            .execute(
                "UPDATE integration_connections SET connection_metadata = $1, status = 'ACTIVE' WHERE id = $2",
                vec![
                    v(json!({"external_account_id": account_id})),
                    v(tenant.connection_id),
                ],
            )
            .await?;
        Ok(tenant)
    }
}

fn hubspot_delivery(
    event_id: u64,
    timestamp_ms: i64,
    secret: &str,
) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = json!([{
        "eventId": event_id,
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": 1,
        "occurredAt": timestamp_ms,
        "subscriptionType": "contact.propertyChange",
        "objectId": 1001,
        "propertyName": "email",
        "propertyValue": "ada@example.com"
    }])
    .to_string()
    .into_bytes();
    let url = format!("{PUBLIC_BASE_URL}/webhooks/hubspot");
    let mut signed = format!("POST{url}").into_bytes();
    signed.extend_from_slice(&body);
    signed.extend_from_slice(timestamp_ms.to_string().as_bytes());
    let signature = to_base64(&hmac_sha256(secret.as_bytes(), &signed));
    (
        vec![
            ("content-type", "application/json".to_owned()),
            ("x-hubspot-signature-v3", signature),
            ("x-hubspot-request-timestamp", timestamp_ms.to_string()),
        ],
        body,
    )
}

fn stripe_delivery(event_id: &str, secret: &str) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let now = chrono::Utc::now().timestamp();
    let body = json!({
        "id": event_id,
        "object": "event",
        "type": "customer.updated",
        "created": now,
        "data": {"object": {"id": "cus_1", "object": "customer"}}
    })
    .to_string()
    .into_bytes();
    let mut signed = format!("{now}.").into_bytes();
    signed.extend_from_slice(&body);
    let signature = to_hex(&hmac_sha256(secret.as_bytes(), &signed));
    (
        vec![
            ("content-type", "application/json".to_owned()),
            ("stripe-signature", format!("t={now},v1={signature}")),
        ],
        body,
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

// ---- Settings. ----

#[test]
fn production_refuses_to_start_and_names_every_missing_variable() {
    let result = Settings::from_lookup(|name| match name {
        "APP_ENV" => Some("production".to_owned()),
        "TOKEN_ENCRYPTION_KEYS" => Some(TEST_KEYS.to_owned()),
        _ => None,
    });
    match result {
        Err(SettingsError::MissingInProduction { names }) => {
            assert_eq!(names, vec!["DATABASE_URL", "AUTH_JWT_SECRET"]);
        }
        other => panic!("production started without its keys: {other:?}"),
    }
    let message =
        Settings::from_lookup(|name| (name == "APP_ENV").then(|| "production".to_owned()))
            .map(|_| ())
            .map_err(|error| error.to_string());
    assert_eq!(
        message,
        Err("APP_ENV=production requires DATABASE_URL, AUTH_JWT_SECRET, TOKEN_ENCRYPTION_KEYS, which are unset".to_owned())
    );
}

#[test]
fn background_workers_is_a_whole_number_and_zero_means_api_only() -> anyhow::Result<()> {
    let workers = |value: &str| {
        Settings::from_lookup(lookup(&[("BACKGROUND_WORKERS", value.to_owned())]))
            .map(|settings| settings.background_workers)
            .map_err(|error| error.to_string())
    };
    assert_eq!(workers("0"), Ok(Some(0)));
    assert_eq!(workers("8"), Ok(Some(8)));
    let refused = workers("four").err().unwrap_or_default();
    assert!(
        refused.contains("BACKGROUND_WORKERS") && refused.contains("four"),
        "{refused}"
    );
    assert_eq!(Settings::from_lookup(lookup(&[]))?.background_workers, None);
    Ok(())
}

#[test]
fn sync_analyze_every_rows_is_a_whole_number_and_zero_turns_it_off() -> anyhow::Result<()> {
    let every = |value: &str| {
        Settings::from_lookup(lookup(&[("SYNC_ANALYZE_EVERY_ROWS", value.to_owned())]))
            .map(|settings| settings.sync_analyze_every_rows)
            .map_err(|error| error.to_string())
    };
    assert_eq!(every("0"), Ok(0));
    assert_eq!(every(" 20000 "), Ok(20_000));
    for bad in ["-1", "many", "1e5"] {
        let refused = every(bad).err().unwrap_or_default();
        assert!(
            refused.contains("SYNC_ANALYZE_EVERY_ROWS") && refused.contains(bad),
            "{bad}: {refused}"
        );
    }
    assert_eq!(
        Settings::from_lookup(lookup(&[]))?.sync_analyze_every_rows,
        integrations::DEFAULT_ANALYZE_EVERY_ROWS
    );
    Ok(())
}

#[test]
fn sync_slices_are_bounded_and_a_zero_or_absurd_slice_is_refused() -> anyhow::Result<()> {
    let slice = |name: &str, value: &str| {
        Settings::from_lookup(lookup(&[(name, value.to_owned())]))
            .map(|settings| settings.sync_slice)
            .map_err(|error| error.to_string())
    };
    assert_eq!(
        slice("SYNC_SLICE_PAGES", "5").map(|slice| slice.pages),
        Ok(5)
    );
    assert_eq!(
        slice("SYNC_SLICE_SECONDS", " 60 ").map(|slice| slice.time),
        Ok(chrono::Duration::seconds(60))
    );
    for (name, bad) in [
        ("SYNC_SLICE_PAGES", "0"),
        ("SYNC_SLICE_PAGES", "-3"),
        ("SYNC_SLICE_PAGES", "100001"),
        ("SYNC_SLICE_PAGES", "many"),
        ("SYNC_SLICE_SECONDS", "0"),
        ("SYNC_SLICE_SECONDS", "86400"),
        ("SYNC_SLICE_SECONDS", "1.5"),
    ] {
        let refused = slice(name, bad).err().unwrap_or_default();
        assert!(
            refused.contains(name) && refused.contains(bad) && !refused.contains('\n'),
            "{name}={bad}: {refused}"
        );
    }
    assert_eq!(
        Settings::from_lookup(lookup(&[]))?.sync_slice,
        integrations::SyncSlice::default()
    );
    Ok(())
}

#[test]
fn pages_in_flight_are_bounded_and_a_zero_or_absurd_depth_is_refused() -> anyhow::Result<()> {
    let depth = |value: &str| {
        Settings::from_lookup(lookup(&[("SYNC_PAGES_IN_FLIGHT", value.to_owned())]))
            .map(|settings| settings.sync_pages_in_flight)
            .map_err(|error| error.to_string())
    };
    assert_eq!(depth(" 2 "), Ok(2));
    for bad in ["0", "-1", "17", "two"] {
        let refused = depth(bad).err().unwrap_or_default();
        assert!(
            refused.contains("SYNC_PAGES_IN_FLIGHT")
                && refused.contains(bad)
                && !refused.contains('\n'),
            "{bad}: {refused}"
        );
    }
    assert_eq!(
        usize::try_from(Settings::from_lookup(lookup(&[]))?.sync_pages_in_flight)?,
        integrations::DEFAULT_PAGES_IN_FLIGHT
    );
    Ok(())
}

#[test]
fn dev_keys_are_generated_once_and_reused() -> anyhow::Result<()> {
    use providers::secrecy::ExposeSecret as _;
    let dir = std::env::temp_dir().join(format!("dev-keys-{}", new_id()));
    let first = Settings::from_lookup(|_| None)?.with_dev_keys(&dir)?;
    assert!(first.uses_dev_keys);
    let second = Settings::from_lookup(|_| None)?.with_dev_keys(&dir)?;
    let secret = |settings: &Settings| {
        (
            settings
                .auth_jwt_secret
                .as_ref()
                .map(|secret| secret.expose_secret().to_owned()),
            settings
                .token_encryption_keys
                .as_ref()
                .map(|keys| keys.expose_secret().to_owned()),
        )
    };
    let (jwt, keys) = secret(&first);
    assert!(jwt.as_deref().is_some_and(|jwt| jwt.len() >= 32));
    assert!(keys.is_some());
    assert_eq!(secret(&first), secret(&second), "the same keys on restart");
    first.keyring()?;
    let configured = Settings::from_lookup(|name| {
        (name == "TOKEN_ENCRYPTION_KEYS").then(|| TEST_KEYS.to_owned())
    })?
    .with_dev_keys(&dir)?;
    assert_eq!(
        configured
            .token_encryption_keys
            .as_ref()
            .map(|keys| keys.expose_secret().to_owned()),
        Some(TEST_KEYS.to_owned()),
        "a configured key is never replaced"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn secrets_never_appear_in_debug_output() -> anyhow::Result<()> {
    let settings = Settings::from_lookup(lookup(&[
        (
            "DATABASE_URL",
            "postgres://app:db-password-123@localhost/platform".to_owned(),
        ),
        ("STRIPE_WEBHOOK_SECRET", "whsec_stripe_secret".to_owned()),
    ]))?;
    let debug = format!("{settings:?}");
    for secret in [
        "db-password-123",
        "whsec_stripe_secret",
        HUBSPOT_CLIENT_SECRET,
        "test-jwt-secret",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("hubspot-client"), "non-secrets stay visible");
    Ok(())
}

// ---- Webhooks. ----

#[tokio::test]
async fn a_signed_hubspot_delivery_is_stored_once_and_queued() -> anyhow::Result<()> {
    let world = World::new().await?;
    world.connection("hubspot", HUBSPOT_PORTAL_ID).await?;
    let (headers, body) = hubspot_delivery(1, now_ms(), HUBSPOT_CLIENT_SECRET);
    let (status, _, text) = world
        .post("/webhooks/hubspot", &headers, body.clone())
        .await?;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 1);
    assert_eq!(
        world
            .count(
                "SELECT count(*) FROM job_queue WHERE kind = 'sync' AND job_key LIKE '%:webhook:%'"
            )
            .await?,
        1
    );

    // The same delivery again: acknowledged, not stored twice.
    let (status, _, text) = world.post("/webhooks/hubspot", &headers, body).await?;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("\"duplicates\":1"), "{text}");
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 1);
    assert_eq!(
        world
            .count(
                "SELECT count(*) FROM job_queue WHERE kind = 'sync' AND job_key LIKE '%:webhook:%'"
            )
            .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_tampered_or_stale_hubspot_delivery_is_rejected_and_nothing_is_stored()
-> anyhow::Result<()> {
    let world = World::new().await?;
    world.connection("hubspot", HUBSPOT_PORTAL_ID).await?;
    let (headers, mut body) = hubspot_delivery(2, now_ms(), HUBSPOT_CLIENT_SECRET);
    body.extend_from_slice(b" ");
    let (status, _, _) = world.post("/webhooks/hubspot", &headers, body).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (headers, body) = hubspot_delivery(3, now_ms(), "another-apps-secret");
    let (status, _, _) = world.post("/webhooks/hubspot", &headers, body).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let ten_minutes_ago = now_ms() - 10 * 60 * 1000;
    let (headers, body) = hubspot_delivery(4, ten_minutes_ago, HUBSPOT_CLIENT_SECRET);
    let (status, _, _) = world.post("/webhooks/hubspot", &headers, body).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "stale");

    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 0);
    assert_eq!(world.count("SELECT count(*) FROM job_queue").await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_delivery_for_an_unknown_account_is_acknowledged_and_not_stored() -> anyhow::Result<()> {
    let world = World::new().await?;
    let (headers, body) = hubspot_delivery(5, now_ms(), HUBSPOT_CLIENT_SECRET);
    let (status, _, text) = world.post("/webhooks/hubspot", &headers, body).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("\"unknown_account\":1"), "{text}");
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 0);
    Ok(())
}

#[tokio::test]
async fn unknown_slugs_and_connections_are_not_found() -> anyhow::Result<()> {
    let world = World::new().await?;
    let (headers, body) = hubspot_delivery(6, now_ms(), HUBSPOT_CLIENT_SECRET);
    for path in [
        "/webhooks/pipedrive".to_owned(),
        format!("/webhooks/stripe/{}", new_id()),
        "/webhooks/stripe/not-a-uuid".to_owned(),
        format!("/webhooks/pipedrive/{}", new_id()),
        // Zendesk has no app-level endpoint; Stripe's is not configured here.
        "/webhooks/zendesk".to_owned(),
        "/webhooks/stripe".to_owned(),
    ] {
        let (status, _, _) = world.post(&path, &headers, body.clone()).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    // A connection of another provider is not found under this slug.
    let hubspot = world.connection("hubspot", HUBSPOT_PORTAL_ID).await?;
    let path = format!("/webhooks/stripe/{}", hubspot.connection_id);
    let (status, _, _) = world.post(&path, &headers, body).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413() -> anyhow::Result<()> {
    let world = World::new().await?;
    let (headers, _) = hubspot_delivery(7, now_ms(), HUBSPOT_CLIENT_SECRET);
    let body = vec![b' '; server::MAX_WEBHOOK_BODY_BYTES + 1];
    let (status, _, _) = world.post("/webhooks/hubspot", &headers, body).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 0);
    Ok(())
}

/// A webhook secret sealed under keys the server no longer has: each delivery is refused 410 with
/// a JSON body (the provider stops retrying a delivery no retry can verify), nothing is stored,
/// and the connection is marked as needing reconnection.
#[tokio::test]
async fn a_webhook_secret_that_no_longer_opens_is_a_410_and_marks_the_connection()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let tenant = world.connection("stripe", "acct_1").await?;
    let old_keys = providers::Keyring::parse(&SecretString::from(
        "old:ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=",
    ))?;
    let old_store = integrations::CredentialStore::new(
        world.test_db.db.clone(),
        Arc::new(SystemClock),
        Arc::new(old_keys),
    );
    let tokens = TokenSet {
        access_token: SecretString::from("rk_test_restricted"),
        refresh_token: None,
        expires_at: None,
        scopes: Vec::new(),
        metadata: serde_json::Map::new(),
    };
    old_store
        .store(tenant.connection_id, CredentialKind::ApiKey, &tokens)
        .await?;
    old_store
        .set_webhook_secret(tenant.connection_id, &SecretString::from("whsec_old"))
        .await?;
    let path = format!("/webhooks/stripe/{}", tenant.connection_id);
    for attempt in 0..2 {
        let (headers, body) = stripe_delivery("evt_1", "whsec_old");
        let (status, _, text) = world.post(&path, &headers, body).await?;
        assert_eq!(status, StatusCode::GONE, "attempt {attempt}: {text}");
        let answer: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(answer["error"]["code"], "unverifiable", "{text}");
    }
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 0);
    let marked = world
        .test_db
        .count(
            "SELECT count(*) FROM integration_connections WHERE id = $1 AND connection_status = 'error' AND validation_error LIKE '%reconnect%'",
            vec![v(tenant.connection_id)],
        )
        .await?;
    assert_eq!(marked, 1);
    // Other refusals carry JSON bodies too.
    let (status, _, text) = world
        .post(
            &format!("/webhooks/stripe/{}", new_id()),
            &[],
            b"{}".to_vec(),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let answer: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(answer["error"]["code"], "not_found", "{text}");
    Ok(())
}

/// `disconnect` removes the webhook endpoint the platform registered at the provider (Stripe's
/// `DELETE /v1/webhook_endpoints/{id}`) before deleting the credentials.
#[tokio::test]
async fn disconnect_removes_the_registered_webhook_endpoint() -> anyhow::Result<()> {
    let world = World::new().await?;
    let tenant = world.connection("stripe", "acct_1").await?;
    world
        .test_db
        .execute(
            "UPDATE integration_connections SET connection_metadata = $1 WHERE id = $2",
            vec![
                v(json!({"external_account_id": "acct_1", "webhook_id": "we_123"})),
                v(tenant.connection_id),
            ],
        )
        .await?;
    world.store_api_key(&tenant).await?;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhook_endpoints/we_123"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"id": "we_123", "object": "webhook_endpoint", "deleted": true}),
            ),
        )
        .expect(1)
        .mount(&world.provider)
        .await;
    let answer = world
        .graphql(
            tenant.user_id,
            "mutation($c: UUID!) { disconnect(connectionId: $c) }",
            json!({"c": tenant.connection_id}),
        )
        .await?;
    assert!(answer["errors"].is_null(), "{answer}");
    world.provider.verify().await;
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_credentials")
            .await?,
        0
    );
    Ok(())
}

/// A disconnected connection takes no webhook at its own endpoint (410) and no mutation runs on
/// it.
#[tokio::test]
async fn a_disconnected_connection_takes_no_webhook_and_no_job() -> anyhow::Result<()> {
    let world = World::new().await?;
    let tenant = world.connection("stripe", "acct_1").await?;
    world.store_api_key(&tenant).await?;
    world
        .state
        .credentials
        .set_webhook_secret(tenant.connection_id, &SecretString::from("whsec_x"))
        .await?;
    world
        .test_db
        .execute(
            "UPDATE integration_connections SET status = 'DISCONNECTED' WHERE id = $1",
            vec![v(tenant.connection_id)],
        )
        .await?;
    let (headers, body) = stripe_delivery("evt_after", "whsec_x");
    let path = format!("/webhooks/stripe/{}", tenant.connection_id);
    let (status, _, text) = world.post(&path, &headers, body).await?;
    assert_eq!(status, StatusCode::GONE, "{text}");
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 0);
    for mutation in [
        "triggerSync(connectionId: $c)",
        "validateConnection(connectionId: $c)",
        "runHealthCheck(connectionId: $c)",
        "updatePropertyMappings(connectionId: $c, mappings: {})",
    ] {
        let answer = world
            .graphql(
                tenant.user_id,
                &format!("mutation($c: UUID!) {{ {mutation} }}"),
                json!({"c": tenant.connection_id}),
            )
            .await?;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"].as_str(),
            Some("CONFLICT"),
            "{mutation}: {answer}"
        );
    }
    assert_eq!(world.count("SELECT count(*) FROM job_queue").await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_per_connection_stripe_delivery_is_verified_with_the_sealed_secret() -> anyhow::Result<()>
{
    let world = World::new().await?;
    let tenant = world.connection("stripe", "acct_1").await?;
    world.store_api_key(&tenant).await?;
    world
        .state
        .credentials
        .set_webhook_secret(
            tenant.connection_id,
            &SecretString::from("whsec_per_account"),
        )
        .await?;
    let path = format!("/webhooks/stripe/{}", tenant.connection_id);

    let (headers, body) = stripe_delivery("evt_wrong", "whsec_someone_else");
    let (status, _, _) = world.post(&path, &headers, body).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 0);

    let (headers, body) = stripe_delivery("evt_1", "whsec_per_account");
    let (status, _, text) = world.post(&path, &headers, body).await?;
    assert_eq!(status, StatusCode::OK, "{text}");
    let stored = world
        .test_db
        .count(
            "SELECT count(*) FROM webhook_events WHERE event_id LIKE '%:stripe:evt_1' AND connection_id = $1",
            vec![v(tenant.connection_id)],
        )
        .await?;
    assert_eq!(stored, 1);
    Ok(())
}

#[tokio::test]
async fn a_salesforce_outbound_message_is_answered_with_the_soap_acknowledgement()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let organization_id = "00D000000000001AAA";
    let tenant = world.connection("salesforce", organization_id).await?;
    let message = |organization: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{organization}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>001000000000001AAA</sf:Id>
     <sf:Name>Acme</sf:Name>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
        )
        .into_bytes()
    };
    let path = format!("/webhooks/salesforce/{}", tenant.connection_id);
    let headers = [("content-type", "text/xml".to_owned())];

    let (status, _, _) = world
        .post(&path, &headers, message("00D000000000002AAA"))
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "another org");

    let (status, content_type, text) = world
        .post(&path, &headers, message(organization_id))
        .await?;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert_eq!(text, providers::webhooks::salesforce_acknowledgement());
    assert_eq!(world.count("SELECT count(*) FROM webhook_events").await?, 1);
    Ok(())
}

// ---- OAuth callback. ----

async fn start_hubspot(world: &World, tenant: &Tenant) -> anyhow::Result<String> {
    let config = ConnectionConfig::default();
    let oauth = world
        .state
        .providers
        .oauth(ProviderKind::HubSpot, &config)?;
    let started = world
        .state
        .connections
        .start(
            StartConnection {
                workspace_id: tenant.workspace_id,
                user_id: tenant.user_id,
                integration_slug: "hubspot".to_owned(),
                config,
            },
            &oauth,
        )
        .await?;
    assert!(
        started
            .authorization_url
            .contains("redirect_uri=https%3A%2F%2Fplatform.example.com%2Foauth%2Fcallback"),
        "{}",
        started.authorization_url
    );
    let url = url::Url::parse(&started.authorization_url)?;
    url.query_pairs()
        .find(|(key, _)| key == "state")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| anyhow::anyhow!("no state in the authorization URL"))
}

async fn callback(world: &World, query: &str) -> anyhow::Result<(StatusCode, url::Url)> {
    let response = world
        .send(Request::get(format!("/oauth/callback?{query}")).body(Body::empty())?)
        .await?;
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("no Location"))?;
    Ok((response.status(), url::Url::parse(location)?))
}

fn query_value(url: &url::Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn the_oauth_callback_connects_and_redirects_to_the_app() -> anyhow::Result<()> {
    let world = World::new().await?;
    Mock::given(method("POST"))
        .and(path("/oauth/v3/token"))
        .and(body_string_contains("code=good-code"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "hubspot-access", "refresh_token": "hubspot-refresh",
            "expires_in": 1800, "hub_id": 62515
        })))
        .expect(1)
        .mount(&world.provider)
        .await;
    let tenant = Tenant::create(&world.test_db, "OWNER", "hubspot").await?;
    let state = start_hubspot(&world, &tenant).await?;

    let (status, location) = callback(&world, &format!("state={state}&code=good-code")).await?;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.as_str().starts_with(APP_URL), "{location}");
    let completion = query_value(&location, "complete")
        .ok_or_else(|| anyhow::anyhow!("no completion code in {location}"))?;
    assert!(
        !location.as_str().contains("good-code"),
        "the provider's code is sealed"
    );
    assert_eq!(
        world.connection_status(&tenant).await?,
        "PENDING_AUTHORIZATION"
    );

    // The web app redeems it under the starter's token.
    let response = world
        .graphql(tenant.user_id, COMPLETE, json!({"code": completion}))
        .await?;
    assert_eq!(
        response["data"]["completeConnection"],
        json!(tenant.connection_id.to_string()),
        "{response}"
    );
    assert_eq!(world.connection_status(&tenant).await?, "ACTIVE");

    // Single use: the same callback again is refused, and so is the same completion code.
    let (status, location) = callback(&world, &format!("state={state}&code=good-code")).await?;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("state_expired")
    );
    assert_eq!(query_value(&location, "complete"), None);
    let replay = world
        .graphql(tenant.user_id, COMPLETE, json!({"code": completion}))
        .await?;
    assert_eq!(
        replay["errors"][0]["extensions"]["code"].as_str(),
        Some("CONFLICT"),
        "{replay}"
    );
    Ok(())
}

const COMPLETE: &str = "mutation($code: String!) { completeConnection(code: $code) }";

/// Connection fixation: user B follows user A's authorization URL and consents with B's provider
/// account. The callback gives B's browser the completion code; B cannot redeem it (A started the
/// authorization), A never sees it, and nothing lands in either workspace.
#[tokio::test]
async fn a_connection_completes_only_for_the_user_who_started_it() -> anyhow::Result<()> {
    let world = World::new().await?;
    Mock::given(method("POST"))
        .and(path("/oauth/v3/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "bearer", "access_token": "b-access", "refresh_token": "b-refresh",
            "expires_in": 1800, "hub_id": 777
        })))
        .expect(0)
        .mount(&world.provider)
        .await;
    let a = Tenant::create(&world.test_db, "OWNER", "hubspot").await?;
    let b = Tenant::create(&world.test_db, "OWNER", "hubspot").await?;
    let state = start_hubspot(&world, &a).await?;
    // B's browser comes back from the provider with A's state and B's code.
    let (_, location) = callback(&world, &format!("state={state}&code=b-code")).await?;
    let completion = query_value(&location, "complete")
        .ok_or_else(|| anyhow::anyhow!("no completion code in {location}"))?;
    let refused = world
        .graphql(b.user_id, COMPLETE, json!({"code": completion}))
        .await?;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"].as_str(),
        Some("FORBIDDEN"),
        "{refused}"
    );
    // A forged or altered completion code is not one of ours.
    let forged = world
        .graphql(
            a.user_id,
            COMPLETE,
            json!({"code": format!("{completion}x")}),
        )
        .await?;
    assert_eq!(
        forged["errors"][0]["extensions"]["code"].as_str(),
        Some("BAD_USER_INPUT"),
        "{forged}"
    );
    for tenant in [&a, &b] {
        assert_eq!(
            world.connection_status(tenant).await?,
            "PENDING_AUTHORIZATION"
        );
    }
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_credentials")
            .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_authorization_redirects_with_the_providers_error() -> anyhow::Result<()> {
    let world = World::new().await?;
    let tenant = Tenant::create(&world.test_db, "OWNER", "hubspot").await?;
    let state = start_hubspot(&world, &tenant).await?;
    let (status, location) = callback(
        &world,
        &format!("state={state}&error=access_denied&error_description=The+user+said+no"),
    )
    .await?;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(
        query_value(&location, "error_description").as_deref(),
        Some("The user said no")
    );
    let (status, location) = callback(&world, "state=never-issued&code=x").await?;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("invalid_state")
    );
    Ok(())
}

// ---- Metrics. ----

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() -> anyhow::Result<()> {
    let world = World::new().await?;
    let response = world
        .send(Request::get("/healthz").body(Body::empty())?)
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let (headers, body) = hubspot_delivery(8, now_ms(), "wrong-secret");
    world.post("/webhooks/hubspot", &headers, body).await?;

    let response = world
        .send(Request::get("/metrics").body(Body::empty())?)
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(to_bytes(response.into_body(), 1024 * 1024).await?.to_vec())?;
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"http_requests_total{method="POST",route="/webhooks/{slug}",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"webhook_deliveries_total{provider="hubspot",result="rejected"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    Ok(())
}
