//! Connection validation and health monitoring end to end: mocked providers answering in their
//! documented shapes (account info, 401, 429 with `Retry-After`, 5xx, slow answers), the real
//! adapters, and a fresh database per test on PostgreSQL and SQLite.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use entity::{integration_cache, integration_connections, integration_health_logs};
use integrations::{
    ACCOUNT_INFO_CACHE_KEY, ConnectionStatus, ConnectionValidator, EngineError,
    HEALTH_LOG_RETENTION_DAYS, HealthMonitor, HealthStatus, ValidationOutcome,
};
use providers::secrecy::SecretString;
use providers::{
    Clock as _, HttpCore, ProviderClient, ProviderError, ProviderKind, ProviderSpec, RetryPolicy,
};
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};
use tests::fixtures::{definition_id, new_id, v};
use tests::{Backend, ManualClock, NoWait, TestDb, workspace_root};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

/// The access token every client sends; it must never reach a row.
const ACCESS_TOKEN: &str = "tok-live-7f3a9c";

const HUBSPOT_ACCOUNT: &str = "/account-info/v3/details";

struct World {
    test_db: TestDb,
    clock: Arc<ManualClock>,
    workspace_id: uuid::Uuid,
    connection_id: uuid::Uuid,
}

impl World {
    /// A workspace with an active HubSpot connection whose metadata already holds a key.
    async fn new(backend: Backend) -> anyhow::Result<Self> {
        let test_db = TestDb::migrated(backend).await?;
        let workspace_id = new_id();
        test_db
            .execute(
                "INSERT INTO workspaces (id, name) VALUES ($1, 'Acme')",
                vec![v(workspace_id)],
            )
            .await?;
        let world = Self {
            test_db,
            clock: ManualClock::new(),
            workspace_id,
            connection_id: new_id(),
        };
        world
            .insert_connection(world.connection_id, "hubspot", "ACTIVE", true)
            .await?;
        Ok(world)
    }

    async fn insert_connection(
        &self,
        connection_id: uuid::Uuid,
        slug: &str,
        status: &str,
        is_active: bool,
    ) -> anyhow::Result<()> {
        let integration_id = definition_id(&self.test_db, slug).await?;
        self.test_db
            .execute(
                "INSERT INTO integration_connections
                     (id, workspace_id, integration_id, status, is_active, connection_metadata)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    v(connection_id),
                    v(self.workspace_id),
                    v(integration_id),
                    v(status),
                    v(is_active),
                    v(json!({"region": "eu", "external_account_id": "stale"})),
                ],
            )
            .await?;
        Ok(())
    }

    fn validator(&self) -> ConnectionValidator {
        ConnectionValidator::new(self.test_db.db.clone(), self.clock.clone())
    }

    fn monitor(&self) -> HealthMonitor {
        HealthMonitor::new(self.test_db.db.clone(), self.clock.clone())
    }

    fn client(&self, kind: ProviderKind, server: &MockServer) -> anyhow::Result<ProviderClient> {
        let spec = ProviderSpec::for_provider(kind).with_api_base_url(&server.uri())?;
        let http = HttpCore::new(
            kind,
            RetryPolicy::default(),
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        Ok(ProviderClient::new(
            spec,
            http,
            SecretString::from(ACCESS_TOKEN),
        ))
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    async fn connection(&self, id: uuid::Uuid) -> anyhow::Result<integration_connections::Model> {
        integration_connections::Entity::find_by_id(id)
            .one(&self.test_db.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no connection {id}"))
    }

    async fn logs(&self) -> anyhow::Result<Vec<integration_health_logs::Model>> {
        Ok(self.monitor().recent_logs(self.connection_id, 100).await?)
    }

    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        self.test_db.count(sql, vec![]).await
    }
}

fn fixture(provider: &str, file: &str) -> anyhow::Result<Value> {
    let file = workspace_root()
        .join("crates/providers/test_data")
        .join(provider)
        .join("api")
        .join(file);
    Ok(serde_json::from_str(&std::fs::read_to_string(file)?)?)
}

/// A provider whose `GET {account_path}` answers `response`.
async fn provider(account_path: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(account_path))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn hubspot_ok() -> anyhow::Result<MockServer> {
    Ok(provider(
        HUBSPOT_ACCOUNT,
        ResponseTemplate::new(200).set_body_json(fixture("hubspot", "account_info.json")?),
    )
    .await)
}

/// HubSpot's documented error body.
fn hubspot_error(status: u16, message: &str, category: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "status": "error",
        "message": message,
        "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c",
        "category": category,
    }))
}

fn hubspot_401() -> ResponseTemplate {
    hubspot_error(
        401,
        "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        "INVALID_AUTHENTICATION",
    )
}

fn hubspot_503() -> ResponseTemplate {
    hubspot_error(503, "Service Unavailable", "SERVICE_UNAVAILABLE")
}

#[tokio::test]
async fn a_successful_validation_stores_sanitized_account_info_the_account_id_and_a_cache_row()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = hubspot_ok().await?;
        let client = world.client(ProviderKind::HubSpot, &server)?;

        let outcome = world
            .validator()
            .validate(world.connection_id, &client)
            .await?;

        let expected_info = json!({
            "external_account_id": "62515",
            "display_name": "app.hubspot.com",
            "details": {
                "account_type": "STANDARD",
                "time_zone": "US/Eastern",
                "currency": "USD",
                "data_hosting_location": "na1",
            },
        });
        assert_eq!(
            outcome,
            ValidationOutcome::Connected {
                external_account_id: "62515".to_owned(),
                account_info: expected_info.clone(),
            },
            "{backend:?}"
        );
        assert_eq!(outcome.connection_status(), ConnectionStatus::Connected);

        let connection = world.connection(world.connection_id).await?;
        assert_eq!(connection.connection_status, "connected");
        assert_eq!(connection.last_connection_validation, Some(world.now()));
        assert_eq!(connection.account_info, Some(expected_info.clone()));
        assert_eq!(connection.validation_error, None);
        assert_eq!(
            connection.connection_metadata,
            json!({"region": "eu", "external_account_id": "62515"}),
            "the account id is merged into the metadata, other keys kept"
        );
        // Validation owns `connection_status`; the lifecycle status and health are left alone.
        assert_eq!(connection.status, "ACTIVE");
        assert_eq!(connection.health_status, "UNKNOWN");

        // Webhook routing reads the id with `->>` on both back ends.
        assert_eq!(
            world
                .test_db
                .count(
                    "SELECT COUNT(*) FROM integration_connections
                     WHERE connection_metadata ->> 'external_account_id' = $1",
                    vec![v("62515")],
                )
                .await?,
            1
        );

        let cache = integration_cache::Entity::find()
            .filter(integration_cache::Column::ConnectionId.eq(world.connection_id))
            .all(&world.test_db.db)
            .await?;
        assert_eq!(cache.len(), 1, "{backend:?}");
        assert_eq!(cache[0].cache_key, ACCOUNT_INFO_CACHE_KEY);
        assert_eq!(cache[0].cache_data, expected_info);
        assert_eq!(
            cache[0].expires_at,
            world.now() + chrono::Duration::hours(1)
        );

        for row in [
            serde_json::to_string(&connection)?,
            serde_json::to_string(&cache)?,
        ] {
            let lowered = row.to_ascii_lowercase();
            assert!(!lowered.contains("token"), "a token-like key in {row}");
            assert!(!row.contains(ACCESS_TOKEN), "the access token in {row}");
        }

        // The provider saw the bearer token on the documented call.
        let requests = server.received_requests().await.unwrap_or_default();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0]
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok()),
            Some(format!("Bearer {ACCESS_TOKEN}").as_str())
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_status_is_validating_while_the_provider_is_asked() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = provider(
            HUBSPOT_ACCOUNT,
            ResponseTemplate::new(200)
                .set_body_json(fixture("hubspot", "account_info.json")?)
                .set_delay(Duration::from_millis(400)),
        )
        .await;
        let client = world.client(ProviderKind::HubSpot, &server)?;
        let validator = world.validator();
        let connection_id = world.connection_id;
        let validation =
            tokio::spawn(async move { validator.validate(connection_id, &client).await });

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut seen_validating = false;
        while !validation.is_finished() && tokio::time::Instant::now() < deadline {
            if world.connection(connection_id).await?.connection_status == "validating" {
                seen_validating = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(seen_validating, "{backend:?}: never saw `validating`");
        let outcome = validation.await??;
        assert_eq!(outcome.connection_status(), ConnectionStatus::Connected);
        assert_eq!(
            world.connection(connection_id).await?.connection_status,
            "connected"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_token_disconnects_the_connection() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = provider(HUBSPOT_ACCOUNT, hubspot_401()).await;
        let client = world.client(ProviderKind::HubSpot, &server)?;

        let outcome = world
            .validator()
            .validate(world.connection_id, &client)
            .await?;

        assert_eq!(
            outcome,
            ValidationOutcome::Disconnected {
                error: ProviderError::Unauthorized {
                    provider: ProviderKind::HubSpot
                }
            },
            "{backend:?}"
        );
        let connection = world.connection(world.connection_id).await?;
        assert_eq!(connection.connection_status, "disconnected");
        assert_eq!(connection.status, "DISCONNECTED");
        assert_eq!(connection.health_status, "ERROR");
        assert_eq!(connection.last_connection_validation, Some(world.now()));
        assert_eq!(
            connection.validation_error.as_deref(),
            Some("HubSpot: access token refused (401)")
        );
        assert_eq!(connection.account_info, None);
        assert_eq!(
            connection.connection_metadata,
            json!({"region": "eu", "external_account_id": "stale"}),
            "a failed validation leaves the metadata alone"
        );
        assert_eq!(
            world
                .count("SELECT COUNT(*) FROM integration_cache")
                .await?,
            0
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_unavailable_provider_leaves_the_connection_in_error_with_the_reason()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        // A first validation succeeds; the next one meets an outage.
        let healthy = hubspot_ok().await?;
        world
            .validator()
            .validate(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &healthy)?,
            )
            .await?;
        world.clock.advance(chrono::Duration::minutes(10));
        let down = provider(HUBSPOT_ACCOUNT, hubspot_503()).await;

        let outcome = world
            .validator()
            .validate(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &down)?,
            )
            .await?;

        assert!(
            matches!(
                &outcome,
                ValidationOutcome::Failed {
                    error: ProviderError::Unavailable { .. },
                    transient: true
                }
            ),
            "{backend:?}: {outcome:?}"
        );
        // The default policy retried the 503 (without waiting, in tests) before giving up.
        assert_eq!(down.received_requests().await.unwrap_or_default().len(), 4);
        let connection = world.connection(world.connection_id).await?;
        assert_eq!(connection.connection_status, "error");
        assert_eq!(connection.status, "ACTIVE");
        assert_eq!(connection.last_connection_validation, Some(world.now()));
        let reason = connection.validation_error.unwrap_or_default();
        assert!(
            reason.starts_with("HubSpot: unavailable (HTTP 503")
                && reason.contains("Service Unavailable"),
            "{reason}"
        );
        // The last known account info stays; a success clears the error again.
        assert!(connection.account_info.is_some());
        world
            .validator()
            .validate(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &healthy)?,
            )
            .await?;
        let connection = world.connection(world.connection_id).await?;
        assert_eq!(connection.connection_status, "connected");
        assert_eq!(connection.validation_error, None);
    }
    Ok(())
}

#[test]
fn each_provider_failure_maps_to_its_connection_status() {
    let provider = ProviderKind::HubSpot;
    let cases = [
        (
            ProviderError::Reauthorize {
                provider,
                reason: "invalid_grant".to_owned(),
            },
            ConnectionStatus::Disconnected,
            false,
        ),
        (
            ProviderError::Unauthorized { provider },
            ConnectionStatus::Disconnected,
            false,
        ),
        (
            ProviderError::RateLimited {
                provider,
                wait: Duration::from_secs(10),
            },
            ConnectionStatus::Error,
            true,
        ),
        (
            ProviderError::QuotaExhausted {
                provider,
                retry_after: None,
                detail: "daily".to_owned(),
            },
            ConnectionStatus::Error,
            // A quota resets on the provider's schedule: a pause, not a retry.
            false,
        ),
        (
            ProviderError::Unavailable {
                provider,
                detail: "HTTP 502".to_owned(),
            },
            ConnectionStatus::Error,
            true,
        ),
        (
            ProviderError::Transport {
                provider,
                detail: "connection refused".to_owned(),
            },
            ConnectionStatus::Error,
            true,
        ),
        (
            ProviderError::Misconfigured {
                provider,
                reason: "bad client id".to_owned(),
            },
            ConnectionStatus::Error,
            false,
        ),
        (
            ProviderError::Rejected {
                provider,
                status: 403,
                message: "missing scope".to_owned(),
            },
            ConnectionStatus::Error,
            false,
        ),
        (
            ProviderError::Decode {
                provider,
                what: "GET /account-info/v3/details".to_owned(),
                reason: "no `portalId`".to_owned(),
            },
            ConnectionStatus::Error,
            false,
        ),
        (
            ProviderError::NotFound {
                provider,
                what: "account".to_owned(),
            },
            ConnectionStatus::Error,
            false,
        ),
    ];
    for (error, status, transient) in cases {
        let outcome = ValidationOutcome::from_error(error.clone());
        assert_eq!(outcome.connection_status(), status, "{error:?}");
        assert_eq!(ConnectionStatus::after_failure(&error), status, "{error:?}");
        assert_eq!(outcome.error(), Some(&error));
        match outcome {
            ValidationOutcome::Failed {
                transient: actual, ..
            } => assert_eq!(actual, transient, "{error:?}"),
            ValidationOutcome::Disconnected { .. } => assert!(!transient),
            other => panic!("unexpected {other:?}"),
        }
    }
    for status in [
        ConnectionStatus::Connected,
        ConnectionStatus::Disconnected,
        ConnectionStatus::Error,
        ConnectionStatus::Validating,
        ConnectionStatus::Unknown,
    ] {
        assert_eq!(ConnectionStatus::parse(status.as_str()), Some(status));
    }
}

#[tokio::test]
async fn connections_need_validation_when_unknown_or_in_error_and_not_validated_for_an_hour()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        // `world.connection_id`: HubSpot, unknown, never validated → due.
        let mut others = Vec::new();
        for (slug, status, is_active) in [
            ("salesforce", "ACTIVE", true), // validated ok below → never due
            ("stripe", "ACTIVE", true),     // validated with an error below
            ("zendesk", "ACTIVE", false),   // inactive → never due
            ("intercom", "PENDING_AUTHORIZATION", true), // not authorized yet → never due
        ] {
            let id = new_id();
            world.insert_connection(id, slug, status, is_active).await?;
            others.push(id);
        }
        let (salesforce, stripe) = (others[0], others[1]);
        let mut due = world.validator().connections_needing_validation().await?;
        due.sort();
        let mut expected = vec![world.connection_id, salesforce, stripe];
        expected.sort();
        assert_eq!(
            due, expected,
            "{backend:?}: all unknown and never validated"
        );

        let userinfo = provider(
            "/services/oauth2/userinfo",
            ResponseTemplate::new(200).set_body_json(fixture("salesforce", "userinfo.json")?),
        )
        .await;
        let stripe_down = provider(
            "/v1/account",
            ResponseTemplate::new(500).set_body_json(
                json!({"error": {"type": "api_error", "message": "Something went wrong"}}),
            ),
        )
        .await;
        let validator = world.validator();
        let connected = validator
            .validate(
                salesforce,
                &world.client(ProviderKind::Salesforce, &userinfo)?,
            )
            .await?;
        assert_eq!(connected.connection_status(), ConnectionStatus::Connected);
        let failed = validator
            .validate(stripe, &world.client(ProviderKind::Stripe, &stripe_down)?)
            .await?;
        assert_eq!(failed.connection_status(), ConnectionStatus::Error);

        assert_eq!(
            validator.connections_needing_validation().await?,
            vec![world.connection_id],
            "{backend:?}: the error was validated just now"
        );
        world.clock.advance(chrono::Duration::minutes(59));
        assert_eq!(
            validator.connections_needing_validation().await?,
            vec![world.connection_id],
            "{backend:?}: 59 minutes is within the hour"
        );
        world.clock.advance(chrono::Duration::minutes(2));
        assert_eq!(
            validator.connections_needing_validation().await?,
            vec![world.connection_id, stripe],
            "{backend:?}: an hour later the error is due again; connected never is"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_fast_answer_is_healthy_and_logged_with_its_response_time() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = hubspot_ok().await?;
        let check = world
            .monitor()
            .check(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &server)?,
            )
            .await?;

        assert_eq!(check.status, HealthStatus::Healthy, "{backend:?}");
        assert_eq!(check.error, None);
        let logs = world.logs().await?;
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].id, check.log_id);
        assert_eq!(logs[0].status, "HEALTHY");
        assert_eq!(logs[0].error_message, None);
        assert_eq!(logs[0].checked_at, world.now());
        let response_ms = logs[0].response_time.unwrap_or(-1);
        assert!(
            (0..2_000).contains(&response_ms),
            "response time {response_ms} ms"
        );
        let connection = world.connection(world.connection_id).await?;
        assert_eq!(connection.health_status, "HEALTHY");
        assert_eq!(connection.last_health_check, Some(world.now()));
        // Health checks only report.
        assert_eq!(connection.connection_status, "unknown");
    }
    Ok(())
}

#[tokio::test]
async fn a_slow_answer_is_a_warning() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = provider(
            HUBSPOT_ACCOUNT,
            ResponseTemplate::new(200)
                .set_body_json(fixture("hubspot", "account_info.json")?)
                .set_delay(Duration::from_millis(300)),
        )
        .await;
        let check = world
            .monitor()
            .with_slow_threshold(Duration::from_millis(100))
            .check(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &server)?,
            )
            .await?;

        assert_eq!(check.status, HealthStatus::Warning, "{backend:?}");
        assert!(check.response_time >= Duration::from_millis(300));
        let logs = world.logs().await?;
        assert_eq!(logs[0].status, "WARNING");
        assert_eq!(logs[0].error_message, None);
        assert!(logs[0].response_time.unwrap_or_default() >= 300);
        assert_eq!(
            world.connection(world.connection_id).await?.health_status,
            "WARNING"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_rate_limit_with_a_long_retry_after_is_a_warning() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = provider(
            HUBSPOT_ACCOUNT,
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "600")
                .set_body_json(json!({
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24",
                    "policyName": "SECONDLY",
                })),
        )
        .await;
        let check = world
            .monitor()
            .check(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &server)?,
            )
            .await?;

        assert_eq!(check.status, HealthStatus::Warning, "{backend:?}");
        assert_eq!(
            check.error,
            Some(ProviderError::RateLimited {
                provider: ProviderKind::HubSpot,
                wait: Duration::from_secs(600)
            })
        );
        let logs = world.logs().await?;
        assert_eq!(logs[0].status, "WARNING");
        let message = logs[0].error_message.clone().unwrap_or_default();
        assert!(
            message.starts_with("[rate_limited] HubSpot: rate limited"),
            "{message}"
        );
        assert!(!message.contains(ACCESS_TOKEN));
    }
    Ok(())
}

#[tokio::test]
async fn a_quota_exhausted_is_a_warning() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let salesforce = new_id();
        world
            .insert_connection(salesforce, "salesforce", "ACTIVE", true)
            .await?;
        let server = provider(
            "/services/oauth2/userinfo",
            ResponseTemplate::new(403)
                .set_body_json(fixture("salesforce", "request_limit_exceeded.json")?),
        )
        .await;
        let check = world
            .monitor()
            .check(
                salesforce,
                &world.client(ProviderKind::Salesforce, &server)?,
            )
            .await?;
        assert_eq!(check.status, HealthStatus::Warning, "{backend:?}");
        assert!(
            matches!(check.error, Some(ProviderError::QuotaExhausted { .. })),
            "{:?}",
            check.error
        );
    }
    Ok(())
}

#[tokio::test]
async fn three_outages_in_a_row_are_an_error_and_a_success_heals() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let down = provider(
            HUBSPOT_ACCOUNT,
            hubspot_error(500, "internal error", "INTERNAL_ERROR"),
        )
        .await;
        let client = world.client(ProviderKind::HubSpot, &down)?;
        let monitor = world.monitor();

        let mut grades = Vec::new();
        for _ in 0..4 {
            world.clock.advance(chrono::Duration::minutes(5));
            grades.push(monitor.check(world.connection_id, &client).await?.status);
        }
        assert_eq!(
            grades,
            [
                HealthStatus::Warning,
                HealthStatus::Warning,
                HealthStatus::Error,
                HealthStatus::Error
            ],
            "{backend:?}"
        );
        let logs = world.logs().await?;
        assert_eq!(
            logs.iter()
                .map(|log| log.status.as_str())
                .collect::<Vec<_>>(),
            ["ERROR", "ERROR", "WARNING", "WARNING"],
            "newest first"
        );
        for log in &logs {
            let message = log.error_message.clone().unwrap_or_default();
            assert!(
                message.starts_with("[unavailable] HubSpot: unavailable (HTTP 500"),
                "{message}"
            );
            assert!(log.response_time.is_some());
        }
        assert_eq!(
            world.connection(world.connection_id).await?.health_status,
            "ERROR"
        );

        // A success breaks the run; the next outage is a warning again.
        let healthy = hubspot_ok().await?;
        world.clock.advance(chrono::Duration::minutes(5));
        let healed = monitor
            .check(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &healthy)?,
            )
            .await?;
        assert_eq!(healed.status, HealthStatus::Healthy);
        world.clock.advance(chrono::Duration::minutes(5));
        assert_eq!(
            monitor.check(world.connection_id, &client).await?.status,
            HealthStatus::Warning
        );
        assert_eq!(
            world.connection(world.connection_id).await?.health_status,
            "WARNING"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_token_is_an_error_at_once() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = provider(HUBSPOT_ACCOUNT, hubspot_401()).await;
        let check = world
            .monitor()
            .check(
                world.connection_id,
                &world.client(ProviderKind::HubSpot, &server)?,
            )
            .await?;
        assert_eq!(check.status, HealthStatus::Error, "{backend:?}");
        let logs = world.logs().await?;
        assert_eq!(
            logs[0].error_message.as_deref(),
            Some("[unauthorized] HubSpot: access token refused (401)")
        );
        assert_eq!(
            world.connection(world.connection_id).await?.health_status,
            "ERROR"
        );
    }
    Ok(())
}

#[tokio::test]
async fn recent_logs_are_the_newest_first_and_limited() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = hubspot_ok().await?;
        let client = world.client(ProviderKind::HubSpot, &server)?;
        let monitor = world.monitor();
        let mut log_ids = Vec::new();
        for _ in 0..5 {
            world.clock.advance(chrono::Duration::minutes(1));
            log_ids.push(monitor.check(world.connection_id, &client).await?.log_id);
        }
        let recent = monitor.recent_logs(world.connection_id, 3).await?;
        assert_eq!(
            recent.iter().map(|log| log.id).collect::<Vec<_>>(),
            vec![log_ids[4], log_ids[3], log_ids[2]],
            "{backend:?}"
        );
        assert!(
            recent
                .windows(2)
                .all(|pair| pair[0].checked_at > pair[1].checked_at)
        );
    }
    Ok(())
}

#[tokio::test]
async fn pruning_deletes_only_logs_older_than_the_retention() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = hubspot_ok().await?;
        let client = world.client(ProviderKind::HubSpot, &server)?;
        let monitor = world.monitor();
        // Checks 40, 31, 29 and 0 days before the end.
        for days in [9, 2, 29] {
            monitor.check(world.connection_id, &client).await?;
            world.clock.advance(chrono::Duration::days(days));
        }
        monitor.check(world.connection_id, &client).await?;
        assert_eq!(world.logs().await?.len(), 4);

        let retention = chrono::Duration::days(HEALTH_LOG_RETENTION_DAYS);
        assert_eq!(monitor.prune_logs(retention).await?, 2, "{backend:?}");
        let left: Vec<_> = world
            .logs()
            .await?
            .into_iter()
            .map(|log| (world.now() - log.checked_at).num_days())
            .collect();
        assert_eq!(left, vec![0, 29]);
        assert_eq!(monitor.prune_logs(retention).await?, 0, "idempotent");
        assert!(matches!(
            monitor.prune_logs(chrono::Duration::days(-1)).await,
            Err(EngineError::InvalidInput(_))
        ));
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_connection_is_not_found_and_nothing_is_written() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = hubspot_ok().await?;
        let client = world.client(ProviderKind::HubSpot, &server)?;
        let unknown = new_id();
        let before = world.connection(world.connection_id).await?;

        assert!(
            matches!(
                world.validator().validate(unknown, &client).await,
                Err(EngineError::NotFound(_))
            ),
            "{backend:?}"
        );
        assert!(matches!(
            world.monitor().check(unknown, &client).await,
            Err(EngineError::NotFound(_))
        ));
        assert!(matches!(
            world.monitor().recent_logs(unknown, 10).await,
            Err(EngineError::NotFound(_))
        ));

        assert_eq!(
            server.received_requests().await.unwrap_or_default().len(),
            0,
            "the provider was not called"
        );
        assert_eq!(
            world
                .count("SELECT COUNT(*) FROM integration_health_logs")
                .await?,
            0
        );
        assert_eq!(
            world
                .count("SELECT COUNT(*) FROM integration_cache")
                .await?,
            0
        );
        assert_eq!(world.connection(world.connection_id).await?, before);
    }
    Ok(())
}

#[tokio::test]
async fn a_client_of_another_provider_is_refused_and_nothing_is_written() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = provider(
            "/v1/account",
            ResponseTemplate::new(200).set_body_json(fixture("stripe", "account.json")?),
        )
        .await;
        let stripe_client = world.client(ProviderKind::Stripe, &server)?;
        let before = world.connection(world.connection_id).await?;

        assert!(
            matches!(
                world
                    .validator()
                    .validate(world.connection_id, &stripe_client)
                    .await,
                Err(EngineError::InvalidInput(_))
            ),
            "{backend:?}"
        );
        assert!(matches!(
            world
                .monitor()
                .check(world.connection_id, &stripe_client)
                .await,
            Err(EngineError::InvalidInput(_))
        ));
        assert_eq!(
            server.received_requests().await.unwrap_or_default().len(),
            0
        );
        assert_eq!(
            world
                .count("SELECT COUNT(*) FROM integration_health_logs")
                .await?,
            0
        );
        assert_eq!(world.connection(world.connection_id).await?, before);
    }
    Ok(())
}
