//! Nothing runs away: a provider that keeps expiring Gmail's history position gets one full
//! re-read per run, and every run has a request budget. Both end the run in a visible error
//! state with the checkpoint kept, on PostgreSQL and SQLite.

use std::sync::Arc;

use integrations::{EngineError, SyncEngine};
use providers::secrecy::SecretString;
use providers::{
    HttpCore, ProviderClient, ProviderError, ProviderKind, ProviderSpec, ReadOptions, RetryPolicy,
};
use serde_json::json;
use tests::fixtures::{active_connection, v};
use tests::{Backend, ManualClock, NoWait, TestDb};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct World {
    test_db: TestDb,
    clock: Arc<ManualClock>,
    connection_id: uuid::Uuid,
    provider: ProviderKind,
}

impl World {
    async fn new(backend: Backend, provider: ProviderKind) -> anyhow::Result<Self> {
        let test_db = TestDb::migrated(backend).await?;
        let (_, connection_id) = active_connection(&test_db, provider.slug()).await?;
        Ok(Self {
            test_db,
            clock: ManualClock::new(),
            connection_id,
            provider,
        })
    }

    fn client(&self, server: &MockServer) -> anyhow::Result<ProviderClient> {
        let spec = ProviderSpec::for_provider(self.provider).with_api_base_url(&server.uri())?;
        let http = HttpCore::new(
            self.provider,
            RetryPolicy::default(),
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        Ok(ProviderClient::new(spec, http, SecretString::from("token")))
    }

    async fn run(
        &self,
        engine: &SyncEngine,
        object_type: &str,
        server: &MockServer,
    ) -> anyhow::Result<Result<integrations::SyncReport, EngineError>> {
        let claim = engine
            .claim(self.connection_id, object_type)
            .await?
            .ok_or_else(|| anyhow::anyhow!("not claimed"))?;
        Ok(engine
            .run(claim, &self.client(server)?, &ReadOptions::default())
            .await)
    }

    /// The sync state's status, error count and whether its last error mentions `text`.
    async fn state_says(&self, text: &str) -> anyhow::Result<i64> {
        self.test_db
            .count(
                "SELECT count(*) FROM integration_sync_states WHERE sync_status = 'error'
                 AND error_count >= 1 AND last_error_message LIKE $1 AND sync_cursor IS NOT NULL",
                vec![v(format!("%{text}%"))],
            )
            .await
    }
}

/// A mailbox of one message whose history id has always expired.
async fn gmail_that_always_expires_history() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/gmail/v1/users/me/profile"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "emailAddress": "ada@example.com", "messagesTotal": 1, "threadsTotal": 1, "historyId": "4021"
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gmail/v1/users/me/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messages": [{"id": "18c1a0000000a001", "threadId": "18c1a0000000a001"}],
            "resultSizeEstimate": 1
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gmail/v1/users/me/messages/18c1a0000000a001"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "18c1a0000000a001", "threadId": "18c1a0000000a001", "labelIds": ["INBOX"],
            "snippet": "Hello", "internalDate": "1730455200000", "sizeEstimate": 2048,
            "payload": {"headers": [
                {"name": "From", "value": "Grace <grace@example.com>"},
                {"name": "Subject", "value": "Hello"}
            ]}
        })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gmail/v1/users/me/history"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
        })))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn gmail_history_that_keeps_expiring_is_re_read_once_per_run_then_the_run_stops()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let world = World::new(backend, ProviderKind::Gmail).await?;
        let server = gmail_that_always_expires_history().await;
        let engine = SyncEngine::new(world.test_db.db.clone(), world.clock.clone(), "worker");

        let outcome = world.run(&engine, "messages", &server).await?;
        assert!(
            matches!(outcome, Err(EngineError::RunawayRead(_))),
            "{backend:?}: {outcome:?}"
        );
        // The backfill (profile, list, get: 3), history (1) and its one re-read (3), then
        // history (1) and the start of a second re-read (3), which ends the run unwritten.
        let first_run = server.received_requests().await.unwrap_or_default().len();
        assert!(first_run <= 11, "{backend:?}: {first_run} requests");
        assert_eq!(world.state_says("expired the sync position").await?, 1);
        assert_eq!(
            world
                .test_db
                .count("SELECT count(*) FROM entities", vec![])
                .await?,
            1,
            "{backend:?}: the message was written once"
        );

        // The next run (its job's retry) gets its one re-read again, and no more.
        let server_again = gmail_that_always_expires_history().await;
        let outcome = world.run(&engine, "messages", &server_again).await?;
        assert!(
            matches!(outcome, Err(EngineError::RunawayRead(_))),
            "{outcome:?}"
        );
        let second_run = server_again
            .received_requests()
            .await
            .unwrap_or_default()
            .len();
        assert!(second_run <= 8, "{backend:?}: {second_run} requests");
    }
    Ok(())
}

#[tokio::test]
async fn a_run_stops_at_its_request_budget_with_its_checkpoint_kept() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let world = World::new(backend, ProviderKind::HubSpot).await?;
        // A search that never stops paging.
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/crm/v3/objects/contacts/search"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "total": 1,
                "results": [{"id": "1", "properties": {
                    "email": "ada@example.com", "lastmodifieddate": "2026-11-01T10:00:00.000Z"
                }}],
                "paging": {"next": {"after": "1"}}
            })))
            .mount(&server)
            .await;
        let engine = SyncEngine::new(world.test_db.db.clone(), world.clock.clone(), "worker")
            .with_request_budget(5);
        let outcome = world.run(&engine, "contacts", &server).await?;
        assert!(
            matches!(
                outcome,
                Err(EngineError::Provider(
                    ProviderError::RequestBudgetExhausted { limit: 5, .. }
                ))
            ),
            "{backend:?}: {outcome:?}"
        );
        let requests = server.received_requests().await.unwrap_or_default().len();
        assert_eq!(requests, 5, "{backend:?}");
        assert_eq!(world.state_says("request budget of 5").await?, 1);
    }
    Ok(())
}
