//! Schedules and workers on a fresh database: each scheduled slot is enqueued once however many
//! instances tick, and workers run sync, validation and webhook follow-up jobs against a mock.

use std::sync::Arc;
use std::time::Duration;

use integrations::{
    CredentialKind, CredentialStore, EngineError, Job, JobOutcome, JobQueue, NewJob,
    ProviderFactory, Scheduler, Worker,
};
use providers::secrecy::SecretString;
use providers::{
    ConnectionConfig, HttpCore, Keyring, OAuthClient, OAuthCredentials, ProviderClient,
    ProviderKind, ProviderSpec, RetryPolicy, TokenSet,
};
use serde_json::{Value, json};
use tests::fixtures::{Tenant, v};
use tests::{Backend, ManualClock, NoWait, TestDb};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct MockFactory {
    base_url: String,
    clock: Arc<ManualClock>,
}

impl ProviderFactory for MockFactory {
    fn oauth(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
    ) -> Result<OAuthClient, EngineError> {
        let spec = ProviderSpec::for_provider(kind)
            .with_auth_base_url(&self.base_url)?
            .for_connection(config)?;
        let http = HttpCore::new(
            kind,
            RetryPolicy::default(),
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        Ok(OAuthClient::new(
            spec,
            OAuthCredentials {
                client_id: "client".to_owned(),
                client_secret: SecretString::from("secret"),
                redirect_uri: "https://platform.example.com/oauth/callback".to_owned(),
            },
            http,
        )?)
    }

    fn api(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
        _: &Value,
        token: SecretString,
    ) -> Result<ProviderClient, EngineError> {
        let spec = ProviderSpec::for_provider(kind)
            .with_api_base_url(&self.base_url)?
            .for_connection(config)?;
        let http = HttpCore::new(
            kind,
            RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        Ok(ProviderClient::new(spec, http, token))
    }
}

/// A credential store holding a long-lived OAuth token for `connection_id`.
async fn live_credentials(
    test_db: &TestDb,
    clock: &Arc<ManualClock>,
    connection_id: uuid::Uuid,
) -> anyhow::Result<CredentialStore> {
    let keyring = Arc::new(Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?);
    let credentials = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring);
    credentials
        .store(
            connection_id,
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
    Ok(credentials)
}

async fn active_tenant(test_db: &TestDb, slug: &str) -> anyhow::Result<Tenant> {
    let tenant = Tenant::create(test_db, "OWNER", slug).await?;
    test_db
        .execute(
            "UPDATE integration_connections SET status = 'ACTIVE' WHERE id = $1",
            vec![v(tenant.connection_id)],
        )
        .await?;
    Ok(tenant)
}

#[tokio::test]
async fn two_instances_ticking_enqueue_each_scheduled_slot_once() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    active_tenant(&test_db, "hubspot").await?;
    active_tenant(&test_db, "stripe").await?;
    let clock = ManualClock::new();
    let instance = |name: &str| {
        Scheduler::new(
            test_db.db.clone(),
            clock.clone(),
            JobQueue::new(test_db.db.clone(), clock.clone(), name),
            &[(ProviderKind::HubSpot, "*/30 * * * *".to_owned())],
        )
    };
    let (a, b) = (instance("a")?, instance("b")?);
    let (first, second) = tokio::join!(a.tick(), b.tick());
    let (first, second) = (first?, second?);
    assert_eq!(
        first.syncs + second.syncs,
        6,
        "3 HubSpot objects + 3 Stripe objects, once"
    );
    assert_eq!(first.health_checks + second.health_checks, 2);
    assert_eq!(
        first.validations + second.validations,
        2,
        "both connections are `unknown`"
    );
    assert_eq!(first.cleanups + second.cleanups, 1);
    let again = a.tick().await?;
    assert_eq!(
        (again.syncs, again.health_checks, again.cleanups),
        (0, 0, 0),
        "the same slot is not enqueued twice"
    );
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(b.tick().await?.syncs, 6, "the next slot");
    assert_eq!(
        test_db
            .count("SELECT count(*) FROM job_queue WHERE kind = 'sync'", vec![])
            .await?,
        12
    );

    let bad = Scheduler::new(
        test_db.db.clone(),
        clock.clone(),
        JobQueue::new(test_db.db.clone(), clock.clone(), "c"),
        &[(ProviderKind::Zendesk, "every thirty minutes".to_owned())],
    );
    assert!(
        matches!(&bad, Err(EngineError::InvalidInput(message)) if message.contains("ZENDESK_SYNC_SCHEDULE"))
    );
    Ok(())
}

#[tokio::test]
async fn a_worker_runs_validation_sync_and_webhook_jobs_against_the_provider() -> anyhow::Result<()>
{
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = active_tenant(&test_db, "hubspot").await?;
        let clock = ManualClock::new();
        let credentials = live_credentials(&test_db, &clock, tenant.connection_id).await?;
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/account-info/v3/details"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"portalId": 62515, "uiDomain": "app.hubspot.com", "timeZone": "US/Eastern"}),
            ))
            .mount(&server)
            .await;
        Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
                {"id": "1", "properties": {"email": "ada@example.com", "firstname": "Ada", "lastmodifieddate": "2026-11-01T10:00:00.000Z"}}
            ]})))
            .mount(&server).await;
        Mock::given(method("GET"))
            .and(path("/crm/v3/objects/contacts"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/crm/v3/objects/deals/search"))
            .respond_with(ResponseTemplate::new(500))
            .mount(&server)
            .await;

        let factory = Arc::new(MockFactory {
            base_url: server.uri(),
            clock: clock.clone(),
        });
        let worker = Worker::new(
            test_db.db.clone(),
            clock.clone(),
            credentials,
            factory,
            "worker-1",
        );
        let queue = JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer");
        queue
            .enqueue(NewJob::new(Job::Validate {
                connection_id: tenant.connection_id,
            }))
            .await?;
        queue
            .enqueue(NewJob::new(Job::Sync {
                connection_id: tenant.connection_id,
                object_type: "contacts".to_owned(),
            }))
            .await?;
        queue
            .enqueue(NewJob::new(Job::Sync {
                connection_id: tenant.connection_id,
                object_type: "deals".to_owned(),
            }))
            .await?;

        let mut outcomes = Vec::new();
        while let Some(outcome) = worker.run_once().await? {
            outcomes.push(outcome);
            assert!(outcomes.len() < 20, "the queue never drains");
        }
        let succeeded = |kind: &str| {
            outcomes.iter().filter(|outcome| matches!(outcome, JobOutcome::Succeeded { kind: done } if done == kind)).count()
        };
        assert_eq!(succeeded("validate"), 1, "{backend:?}: {outcomes:?}");
        assert_eq!(succeeded("sync"), 1, "{backend:?}: contacts");
        assert!(
            outcomes.iter().any(
                |outcome| matches!(outcome, JobOutcome::Failed { kind, .. } if kind == "sync")
            ),
            "deals failed"
        );
        assert_eq!(test_db.count("SELECT count(*) FROM integration_connections WHERE connection_status = 'connected'
            AND CAST(connection_metadata ->> 'external_account_id' AS TEXT) = '62515'", vec![]).await?, 1, "{backend:?}");
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM entities WHERE source_external_id = '1'",
                    vec![]
                )
                .await?,
            1
        );
        assert_eq!(test_db.count("SELECT count(*) FROM job_queue WHERE status = 'queued' AND attempts = 1 AND last_error LIKE '%HTTP 500%'", vec![]).await?, 1,
            "{backend:?}: the failed sync waits for its retry");
    }
    Ok(())
}

#[tokio::test]
async fn a_stripe_key_connection_registers_its_webhook_and_keeps_the_secret_sealed()
-> anyhow::Result<()> {
    use integrations::ConnectionManager;
    use providers::secrecy::ExposeSecret as _;
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    let clock = ManualClock::new();
    let keyring = Arc::new(Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?);
    let manager = ConnectionManager::new(test_db.db.clone(), clock.clone(), keyring.clone());
    let connection_id = manager
        .connect_with_api_key(
            tenant.workspace_id,
            tenant.user_id,
            "stripe",
            &SecretString::from("rk_test_51Nv0FGQ9RKHgCVdKabcdef"),
        )
        .await?;
    assert_eq!(
        test_db
            .count(
                "SELECT count(*) FROM job_queue WHERE kind = 'register_webhook'",
                vec![]
            )
            .await?,
        1
    );

    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/webhook_endpoints"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "we_123", "object": "webhook_endpoint", "secret": "whsec_registered_plaintext"})))
        .expect(1).mount(&server).await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhook_endpoints/we_123"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "we_123", "deleted": true})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [], "has_more": false, "id": "acct_1"}),
        ))
        .mount(&server)
        .await;
    let credentials = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring);
    let factory = Arc::new(MockFactory {
        base_url: server.uri(),
        clock: clock.clone(),
    });
    let worker = Worker::new(
        test_db.db.clone(),
        clock.clone(),
        credentials.clone(),
        factory.clone(),
        "w",
    )
    .with_public_base_url("https://platform.example.com/");
    let mut n_jobs = 0;
    while worker.run_once().await?.is_some() {
        n_jobs += 1;
        assert!(n_jobs < 30, "the queue never drains");
    }
    assert_eq!(test_db.count("SELECT count(*) FROM job_queue WHERE kind = 'register_webhook' AND status = 'succeeded'", vec![]).await?, 1);
    let secret = credentials
        .webhook_secret(connection_id)
        .await?
        .map(|secret| secret.expose_secret().to_owned());
    assert_eq!(secret.as_deref(), Some("whsec_registered_plaintext"));
    assert_eq!(test_db.count("SELECT count(*) FROM integration_connections WHERE connection_metadata ->> 'webhook_id' = 'we_123'", vec![]).await?, 1);
    assert_eq!(test_db.count("SELECT count(*) FROM integration_credentials WHERE position('whsec' in encode(sealed_webhook_secret, 'escape')) > 0", vec![]).await?, 0,
        "the secret is stored sealed");

    let api = factory.api(
        ProviderKind::Stripe,
        &ConnectionConfig::default(),
        &json!({}),
        SecretString::from("rk_test_51Nv0FGQ9RKHgCVdKabcdef"),
    )?;
    manager
        .disconnect(
            tenant.workspace_id,
            connection_id,
            tenant.user_id,
            None,
            Some(&api),
        )
        .await?;
    server.verify().await;
    Ok(())
}

/// A sync whose worker died holding its lease: the next sync job is not marked done and
/// dropped, it is put back (no attempt spent) for the second after the lease ends, at most a
/// minute away, and then takes the sync over from its last checkpoint.
#[tokio::test]
async fn a_sync_held_by_a_dead_worker_is_taken_over_when_its_lease_ends() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = active_tenant(&test_db, "hubspot").await?;
        let clock = ManualClock::new();
        let credentials = live_credentials(&test_db, &clock, tenant.connection_id).await?;
        let server = MockServer::start().await;
        Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
                {"id": "1", "properties": {"email": "ada@example.com", "lastmodifieddate": "2026-11-01T10:00:00.000Z"}}
            ]})))
            .mount(&server).await;
        Mock::given(method("GET"))
            .and(path("/crm/v3/objects/contacts"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&server)
            .await;
        // The dead worker: it claimed the sync and its process went away.
        let dead = integrations::SyncEngine::new(test_db.db.clone(), clock.clone(), "dead");
        let held = dead.claim(tenant.connection_id, "contacts").await?;
        assert!(held.is_some());
        drop(held);

        let factory = Arc::new(MockFactory {
            base_url: server.uri(),
            clock: clock.clone(),
        });
        let worker = Worker::new(
            test_db.db.clone(),
            clock.clone(),
            credentials,
            factory,
            "live",
        );
        JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer")
            .enqueue(NewJob::new(Job::Sync {
                connection_id: tenant.connection_id,
                object_type: "contacts".to_owned(),
            }))
            .await?;
        let outcome = worker.run_once().await?;
        assert_eq!(
            outcome,
            Some(JobOutcome::Deferred {
                kind: "sync".to_owned()
            }),
            "{backend:?}"
        );
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM job_queue WHERE kind = 'sync' AND status = 'queued' AND attempts = 0", vec![])
                .await?,
            1,
            "{backend:?}: put back without spending an attempt"
        );
        assert_eq!(worker.run_once().await?, None, "not before the lease ends");
        clock.advance(integrations::DEFAULT_SYNC_LEASE + chrono::Duration::seconds(1));
        assert_eq!(
            worker.run_once().await?,
            Some(JobOutcome::Succeeded {
                kind: "sync".to_owned()
            }),
            "{backend:?}: taken over once the lease ended"
        );
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM entities WHERE source_external_id = '1'",
                    vec![]
                )
                .await?,
            1,
            "{backend:?}"
        );
        // A job whose worker died while running it: its lock lapses within a minute (a live
        // worker renews it) and another worker takes the job over.
        JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer")
            .enqueue(NewJob::new(Job::Sync {
                connection_id: tenant.connection_id,
                object_type: "contacts".to_owned(),
            }))
            .await?;
        let dead_queue = JobQueue::new(test_db.db.clone(), clock.clone(), "dead");
        assert!(dead_queue.claim(&["sync"]).await?.is_some());
        assert_eq!(worker.run_once().await?, None, "{backend:?}: still locked");
        clock.advance(integrations::DEFAULT_JOB_LOCK + chrono::Duration::seconds(1));
        assert_eq!(
            worker.run_once().await?,
            Some(JobOutcome::Succeeded {
                kind: "sync".to_owned()
            }),
            "{backend:?}: the dead worker's job is taken over"
        );
    }
    Ok(())
}

/// A takeover resumes the dead worker's run: its counters and start time carry on instead of
/// starting over (the run then reports every record it wrote, not only the last worker's); a
/// fresh run after a finished one starts from zero.
#[tokio::test]
async fn a_takeover_keeps_the_runs_counters_and_a_fresh_run_resets_them() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = active_tenant(&test_db, "hubspot").await?;
        let clock = ManualClock::new();
        let dead = integrations::SyncEngine::new(test_db.db.clone(), clock.clone(), "dead");
        assert!(
            dead.claim(tenant.connection_id, "contacts")
                .await?
                .is_some()
        );
        // The dead worker had checkpointed 800 created records.
        test_db
            .execute(
                "UPDATE integration_sync_states SET last_sync_created = 800, last_sync_updated = 7 WHERE connection_id = $1",
                vec![v(tenant.connection_id)],
            )
            .await?;
        clock.advance(integrations::DEFAULT_SYNC_LEASE + chrono::Duration::seconds(1));
        let live = integrations::SyncEngine::new(test_db.db.clone(), clock.clone(), "live");
        assert!(
            live.claim(tenant.connection_id, "contacts")
                .await?
                .is_some()
        );
        let counters = |sql: &'static str| test_db.count(sql, vec![v(tenant.connection_id)]);
        assert_eq!(
            counters("SELECT count(*) FROM integration_sync_states WHERE connection_id = $1 AND last_sync_created = 800 AND last_sync_updated = 7").await?,
            1,
            "{backend:?}: the takeover kept the counts"
        );
        // The run ends; a later claim is a fresh run.
        test_db
            .execute(
                "UPDATE integration_sync_states SET sync_status = 'idle', lease_owner = NULL WHERE connection_id = $1",
                vec![v(tenant.connection_id)],
            )
            .await?;
        assert!(
            live.claim(tenant.connection_id, "contacts")
                .await?
                .is_some()
        );
        assert_eq!(
            counters("SELECT count(*) FROM integration_sync_states WHERE connection_id = $1 AND last_sync_created = 0 AND last_sync_updated = 0").await?,
            1,
            "{backend:?}: a fresh run starts at zero"
        );
    }
    Ok(())
}

/// A manual request is not swallowed by a dead process's job: a `running` job whose lock has
/// lapsed no longer counts as pending.
#[tokio::test]
async fn a_dead_processs_running_job_does_not_count_as_pending() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let clock = ManualClock::new();
    let api = JobQueue::new(test_db.db.clone(), clock.clone(), "api");
    let family = "sync:c:contacts:manual:";
    let job = || {
        NewJob::new(Job::Sync {
            connection_id: uuid::Uuid::nil(),
            object_type: "contacts".to_owned(),
        })
    };
    assert!(api.enqueue_unless_pending(job(), family).await?);
    assert!(
        !api.enqueue_unless_pending(job(), family).await?,
        "queued: pending"
    );
    let dead = JobQueue::new(test_db.db.clone(), clock.clone(), "dead");
    assert!(dead.claim(&["sync"]).await?.is_some());
    assert!(
        !api.enqueue_unless_pending(job(), family).await?,
        "running and locked: pending"
    );
    clock.advance(integrations::DEFAULT_JOB_LOCK + chrono::Duration::seconds(1));
    assert!(
        api.enqueue_unless_pending(job(), family).await?,
        "a lapsed lock is a dead process: a new request is queued"
    );
    Ok(())
}

/// A job that can never succeed as it is — its connection has no credentials, its payload does
/// not parse, its connection is gone — fails once with its reason recorded and is not retried.
#[tokio::test]
async fn jobs_that_cannot_succeed_fail_once_and_are_not_retried() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = active_tenant(&test_db, "hubspot").await?;
        let clock = ManualClock::new();
        let keyring = Arc::new(Keyring::parse(&SecretString::from(
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ))?);
        let credentials = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring);
        let factory = Arc::new(MockFactory {
            base_url: "http://127.0.0.1:9".to_owned(),
            clock: clock.clone(),
        });
        let worker = Worker::new(
            test_db.db.clone(),
            clock.clone(),
            credentials,
            factory,
            "worker",
        );
        let queue = JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer");
        // No credentials were ever stored for this connection.
        queue
            .enqueue(NewJob::new(Job::Sync {
                connection_id: tenant.connection_id,
                object_type: "contacts".to_owned(),
            }))
            .await?;
        // A connection that does not exist.
        queue
            .enqueue(NewJob::new(Job::Validate {
                connection_id: uuid::Uuid::from_u128(7),
            }))
            .await?;
        // A payload that does not parse (written by hand, as a broken producer would).
        queue
            .enqueue(NewJob::new(Job::HealthCheck {
                connection_id: tenant.connection_id,
            }))
            .await?;
        test_db
            .execute(
                "UPDATE job_queue SET payload = '{\"connection_id\": \"not a uuid\"}' WHERE kind = 'health_check'",
                vec![],
            )
            .await?;
        let mut outcomes = Vec::new();
        for _ in 0..3 {
            outcomes.push(worker.run_once().await?);
        }
        assert!(
            outcomes
                .iter()
                .all(|outcome| matches!(outcome, Some(JobOutcome::Failed { .. }))),
            "{backend:?}: {outcomes:?}"
        );
        // Long after any backoff, nothing comes back.
        clock.advance(chrono::Duration::days(1));
        assert_eq!(worker.run_once().await?, None, "{backend:?}");
        for (kind, reason) in [
            ("sync", "%credentials%not found%"),
            ("validate", "%connection%not found%"),
            ("health_check", "%does not parse%"),
        ] {
            assert_eq!(
                test_db
                    .count(
                        "SELECT count(*) FROM job_queue WHERE kind = $1 AND status = 'failed'
                         AND attempts = 1 AND finished_at IS NOT NULL AND last_error LIKE $2",
                        vec![v(kind), v(reason)],
                    )
                    .await?,
                1,
                "{backend:?}: {kind}"
            );
        }
    }
    Ok(())
}

/// 25 Stripe key connections, each with its validation and webhook registration queued, run by
/// five workers at once (50 jobs, the provider answering slowly so they overlap): every
/// connection keeps both keys the jobs write, and the key it was connected with.
#[tokio::test]
async fn fifty_concurrent_validate_and_register_jobs_keep_every_metadata_key() -> anyhow::Result<()>
{
    use integrations::ConnectionManager;
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let clock = ManualClock::new();
        let keyring = Arc::new(Keyring::parse(&SecretString::from(
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ))?);
        let manager = ConnectionManager::new(test_db.db.clone(), clock.clone(), keyring.clone());
        for _ in 0..25 {
            let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
            manager
                .connect_with_api_key(
                    tenant.workspace_id,
                    tenant.user_id,
                    "stripe",
                    &SecretString::from("rk_test_51Nv0FGQ9RKHgCVdKabcdef"),
                )
                .await?;
        }
        test_db
            .execute("DELETE FROM job_queue WHERE kind = 'sync'", vec![])
            .await?;
        let server = MockServer::start().await;
        let slow = Duration::from_millis(30);
        Mock::given(method("POST"))
            .and(path("/v1/webhook_endpoints"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(
                        json!({"id": "we_1", "object": "webhook_endpoint", "secret": "whsec_x"}),
                    )
                    .set_delay(slow),
            )
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "acct_1", "object": "account"}))
                    .set_delay(slow),
            )
            .mount(&server)
            .await;
        let credentials = CredentialStore::new(test_db.db.clone(), clock.clone(), keyring);
        let factory = Arc::new(MockFactory {
            base_url: server.uri(),
            clock: clock.clone(),
        });
        let mut workers = tokio::task::JoinSet::new();
        for index in 0..5 {
            let worker = Worker::new(
                test_db.db.clone(),
                clock.clone(),
                credentials.clone(),
                factory.clone(),
                format!("worker-{index}"),
            )
            .with_public_base_url("https://platform.example.com");
            workers.spawn(async move {
                let mut outcomes = Vec::new();
                while let Some(outcome) = worker.run_once().await? {
                    outcomes.push(outcome);
                }
                anyhow::Ok(outcomes)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = workers.join_next().await {
            outcomes.extend(done??);
        }
        assert_eq!(outcomes.len(), 50, "{backend:?}: {outcomes:?}");
        assert!(
            outcomes
                .iter()
                .all(|outcome| matches!(outcome, JobOutcome::Succeeded { .. })),
            "{backend:?}: {outcomes:?}"
        );
        let complete = test_db
            .count(
                "SELECT count(*) FROM integration_connections
                 WHERE connection_metadata ->> 'external_account_id' = 'acct_1'
                   AND connection_metadata ->> 'webhook_id' = 'we_1'
                   AND connection_metadata ->> 'auth_mode' = 'api_key'",
                vec![],
            )
            .await?;
        assert_eq!(complete, 25, "{backend:?}: every key survived");
    }
    Ok(())
}

/// The cleanup job removes attribute history older than its retention and keeps the rest.
#[tokio::test]
async fn the_cleanup_job_keeps_attribute_history_for_its_retention() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let clock = ManualClock::new();
        let now = {
            use providers::Clock as _;
            clock.now()
        };
        for (days_ago, label) in [(40_i64, "old"), (10, "recent")] {
            let at = now - chrono::Duration::days(days_ago);
            let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(at.timestamp())?,
                0,
            ));
            test_db
                .execute(
                    "INSERT INTO entity_attribute_history (id, workspace_id, entity_id, attribute_id,
                     new_value, source_type, changed_at) VALUES ($1, $2, $3, $4, $5, 'INTEGRATION', $6)",
                    vec![
                        v(id),
                        v(tenant.workspace_id),
                        v(tenant.entity_id),
                        v(tenant.attribute_id),
                        v(json!(label)),
                        v(at.fixed_offset()),
                    ],
                )
                .await?;
        }
        let keyring = Arc::new(Keyring::parse(&SecretString::from(
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ))?);
        let worker = Worker::new(
            test_db.db.clone(),
            clock.clone(),
            CredentialStore::new(test_db.db.clone(), clock.clone(), keyring),
            Arc::new(MockFactory {
                base_url: "http://127.0.0.1:9".to_owned(),
                clock: clock.clone(),
            }),
            "worker",
        )
        .with_attribute_history_days(30);
        JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer")
            .enqueue(NewJob::new(Job::Cleanup))
            .await?;
        assert!(matches!(
            worker.run_once().await?,
            Some(JobOutcome::Succeeded { .. })
        ));
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM entity_attribute_history", vec![])
                .await?,
            1,
            "{backend:?}"
        );
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM entity_attribute_history WHERE new_value = $1",
                    vec![v(json!("recent"))]
                )
                .await?,
            1,
            "{backend:?}: the recent row stays"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_workers_sync_request_budget_reaches_its_syncs() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = active_tenant(&test_db, "hubspot").await?;
    let clock = ManualClock::new();
    let credentials = live_credentials(&test_db, &clock, tenant.connection_id).await?;
    let server = MockServer::start().await;
    // A search that always has another page: only the budget ends the run.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{"id": "1", "properties": {"email": "ada@example.com", "lastmodifieddate": "2026-11-01T10:00:00.000Z"}}],
            "paging": {"next": {"after": "1"}}
        })))
        .mount(&server)
        .await;
    let factory = Arc::new(MockFactory {
        base_url: server.uri(),
        clock: clock.clone(),
    });
    let worker = Worker::new(
        test_db.db.clone(),
        clock.clone(),
        credentials,
        factory,
        "worker-1",
    )
    .with_sync_request_budget(3);
    JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer")
        .enqueue(NewJob::new(Job::Sync {
            connection_id: tenant.connection_id,
            object_type: "contacts".to_owned(),
        }))
        .await?;
    let outcome = worker.run_once().await?;
    assert!(
        matches!(&outcome, Some(JobOutcome::Failed { kind, .. }) if kind == "sync"),
        "{outcome:?}"
    );
    let calls = server.received_requests().await.unwrap_or_default().len();
    assert_eq!(calls, 3, "the worker's budget of 3 calls bounds the run");
    Ok(())
}

/// Serves HubSpot contact search pages in call order, one contact each: page `n` holds contact
/// `n` and points at a next page until `pages` were served (`usize::MAX`: pages forever).
struct SearchPages {
    pages: usize,
    served: std::sync::atomic::AtomicUsize,
}

impl SearchPages {
    fn new(pages: usize) -> Self {
        Self {
            pages,
            served: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl wiremock::Respond for SearchPages {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let n = self
            .served
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let mut body = json!({"results": [{"id": n.to_string(), "properties": {
            "email": format!("c{n}@example.com"),
            "lastmodifieddate": "2026-11-01T10:00:00.000Z"
        }}]});
        if n < self.pages {
            body["paging"] = json!({"next": {"after": n.to_string()}});
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// A worker whose syncs yield after `pages` pages.
fn slicing_worker(
    test_db: &TestDb,
    clock: &Arc<ManualClock>,
    credentials: CredentialStore,
    base_url: String,
    pages: u32,
) -> Worker {
    let factory = Arc::new(MockFactory {
        base_url,
        clock: clock.clone(),
    });
    Worker::new(
        test_db.db.clone(),
        clock.clone(),
        credentials,
        factory,
        "worker-1",
    )
    .with_slice(integrations::SyncSlice {
        pages,
        time: chrono::Duration::seconds(60),
    })
}

fn sync_job(connection_id: uuid::Uuid, object_type: &str) -> NewJob {
    NewJob::new(Job::Sync {
        connection_id,
        object_type: object_type.to_owned(),
    })
}

#[tokio::test]
async fn a_sync_yields_after_its_slice_and_other_work_due_first_runs_before_its_next_slice()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let big = active_tenant(&test_db, "hubspot").await?;
        let clock = ManualClock::new();
        let credentials = live_credentials(&test_db, &clock, big.connection_id).await?;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/crm/v3/objects/contacts/search"))
            .respond_with(SearchPages::new(5))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/crm/v3/objects/contacts"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&server)
            .await;
        let worker = slicing_worker(&test_db, &clock, credentials, server.uri(), 2);
        let queue = JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer");
        // The big sync is due first; other work (the cleanup) is due a moment later.
        queue
            .enqueue(
                sync_job(big.connection_id, "contacts").at((providers::Clock::now(&*clock)
                    - chrono::Duration::seconds(2))
                .fixed_offset()),
            )
            .await?;
        queue.enqueue(NewJob::new(Job::Cleanup)).await?;
        clock.advance(chrono::Duration::seconds(1));

        let yielded = Some(JobOutcome::Yielded {
            kind: "sync".to_owned(),
        });
        assert_eq!(worker.run_once().await?, yielded, "{backend:?}");
        let entities = "SELECT count(*) FROM entities WHERE source_external_id LIKE '_'";
        assert_eq!(test_db.count(entities, vec![]).await?, 2, "{backend:?}");
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM integration_sync_states WHERE sync_status = 'syncing'",
                    vec![]
                )
                .await?,
            1,
            "{backend:?}: the run goes on"
        );
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM job_queue WHERE kind = 'sync' AND status = 'queued' AND attempts = 0", vec![])
                .await?,
            1,
            "{backend:?}: queued again without spending an attempt"
        );
        assert_eq!(
            worker.run_once().await?,
            Some(JobOutcome::Succeeded {
                kind: "cleanup".to_owned()
            }),
            "{backend:?}: the work due before the next slice runs first"
        );
        assert_eq!(worker.run_once().await?, yielded, "{backend:?}");
        assert_eq!(
            worker.run_once().await?,
            Some(JobOutcome::Succeeded {
                kind: "sync".to_owned()
            }),
            "{backend:?}"
        );
        assert_eq!(test_db.count(entities, vec![]).await?, 5, "{backend:?}");
        // One run across three slices, its calls counted once each.
        let calls = server.received_requests().await.unwrap_or_default().len();
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM sync_runs WHERE status = 'succeeded' AND created = 5 AND api_calls = $1",
                    vec![v(i64::try_from(calls)?)]
                )
                .await?,
            1,
            "{backend:?}: one run of {calls} calls"
        );
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM sync_runs", vec![])
                .await?,
            1
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_runs_request_budget_spans_its_slices() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = active_tenant(&test_db, "hubspot").await?;
    let clock = ManualClock::new();
    let credentials = live_credentials(&test_db, &clock, tenant.connection_id).await?;
    let server = MockServer::start().await;
    // Pages forever: only the run's budget ends it, however it is sliced.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(SearchPages::new(usize::MAX))
        .mount(&server)
        .await;
    let worker =
        slicing_worker(&test_db, &clock, credentials, server.uri(), 2).with_sync_request_budget(5);
    JobQueue::new(test_db.db.clone(), clock.clone(), "enqueuer")
        .enqueue(sync_job(tenant.connection_id, "contacts"))
        .await?;
    let mut outcomes = Vec::new();
    while let Some(outcome) = worker.run_once().await? {
        let failed = matches!(outcome, JobOutcome::Failed { .. });
        outcomes.push(outcome);
        if failed || outcomes.len() > 10 {
            break;
        }
    }
    let yielded = JobOutcome::Yielded {
        kind: "sync".to_owned(),
    };
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert_eq!(outcomes[..2], [yielded.clone(), yielded], "{outcomes:?}");
    assert!(
        matches!(&outcomes[2], JobOutcome::Failed { error, .. } if error.contains("budget")),
        "{outcomes:?}"
    );
    let calls = server.received_requests().await.unwrap_or_default().len();
    assert_eq!(
        calls, 5,
        "the run's budget of 5 calls bounds all its slices"
    );
    assert_eq!(
        test_db
            .count(
                "SELECT count(*) FROM sync_runs WHERE status = 'failed' AND api_calls = 5",
                vec![]
            )
            .await?,
        1
    );
    Ok(())
}
