//! The real server binary killed mid-sync (`kill -9`) and started again: the sync resumes by
//! itself within a minute of the restart (its job lock and sync lease lapse, nobody touches
//! anything) and ends with every record once, none missing, none twice.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integrations::{CredentialKind, CredentialStore, Job, JobQueue, NewJob};
use providers::secrecy::SecretString;
use providers::{Keyring, SystemClock, TokenSet};
use serde_json::{Value, json};
use tests::fixtures::{Tenant, v};
use tests::{Backend, TestDb};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TEST_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(database_url: &str, provider: &str) -> anyhow::Result<Running> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(Running(
        Command::new(tests::workspace_binary("server")?)
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("TOKEN_ENCRYPTION_KEYS", TEST_KEYS)
            .env("AUTH_JWT_SECRET", "crash-test-secret-of-at-least-32-bytes")
            .env("HUBSPOT_CLIENT_ID", "client")
            .env("HUBSPOT_CLIENT_SECRET", "secret")
            .env("HUBSPOT_API_BASE_URL", provider)
            .env("BACKGROUND_WORKERS", "1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    ))
}

fn contacts(from: usize, to: usize) -> Vec<Value> {
    (from..to)
        .map(|n| {
            json!({"id": n.to_string(), "properties": {"email": format!("p{n}@example.com"),
                "lastmodifieddate": "2026-11-01T10:00:00.000Z"}, "updatedAt": "2026-11-01T10:00:00.000Z", "archived": false})
        })
        .collect()
}

/// Polls `sql` (a count) until it reaches `want`, at most `limit`; the time it took.
async fn until(
    test_db: &TestDb,
    sql: &str,
    want: i64,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let n = test_db.count(sql, vec![]).await?;
        if n == want {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{sql} stayed at {n}, not {want}, for {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A PostgreSQL database with an active HubSpot connection, a queued contacts sync, and a mock
/// HubSpot of two pages of 50 whose second page hangs the first time it is asked for.
async fn world() -> anyhow::Result<(TestDb, MockServer)> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    test_db
        .execute("DELETE FROM entity_attribute_provenance", vec![])
        .await?;
    test_db
        .execute("DELETE FROM entity_attribute_values", vec![])
        .await?;
    test_db.execute("DELETE FROM entities", vec![]).await?;
    test_db
        .execute(
            "UPDATE integration_connections SET status = 'ACTIVE', connection_status = 'connected' WHERE id = $1",
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
    // Page two hangs the first time (the process is killed while waiting for it), then answers.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"after": "1"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total": 0, "results": contacts(50, 100)}))
                .set_delay(Duration::from_secs(600)),
        )
        .up_to_n_times(1)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"after": "1"})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"total": 0, "results": contacts(50, 100)})),
        )
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"total": 0, "results": contacts(0, 50), "paging": {"next": {"after": "1"}}}),
        ))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&provider)
        .await;
    JobQueue::new(test_db.db.clone(), Arc::new(SystemClock), "test")
        .enqueue(NewJob::new(Job::Sync {
            connection_id: tenant.connection_id,
            object_type: "contacts".to_owned(),
        }))
        .await?;

    Ok((test_db, provider))
}

#[tokio::test]
async fn a_sync_killed_mid_run_resumes_by_itself_within_a_minute_of_the_restart()
-> anyhow::Result<()> {
    let (test_db, provider) = world().await?;
    let entities = "SELECT count(*) FROM entities WHERE source_type = 'INTEGRATION'";
    let first = start(&test_db.url, &provider.uri())?;
    until(&test_db, entities, 50, Duration::from_secs(30)).await?;
    drop(first); // SIGKILL: no shutdown, the lease and the job lock stay behind
    assert_eq!(
        test_db.count(entities, vec![]).await?,
        50,
        "page two never committed"
    );

    let _second = start(&test_db.url, &provider.uri())?;
    let resumed_in = until(&test_db, entities, 100, Duration::from_secs(90)).await?;
    println!("the sync resumed and finished {resumed_in:?} after the restart");
    assert!(resumed_in <= Duration::from_secs(60), "took {resumed_in:?}");
    let distinct = test_db
        .count(
            "SELECT count(DISTINCT source_external_id) FROM entities WHERE source_type = 'INTEGRATION'",
            vec![],
        )
        .await?;
    assert_eq!(distinct, 100, "no record twice, none missing");
    Ok(())
}

/// SIGTERM mid-sync: the process stops the sync at its page boundary (abandoning the hanging read
/// of the next page), releases the lease, puts the job back, and exits within `SHUTDOWN_GRACE`;
/// the next process resumes at once, with no lease to wait out.
#[tokio::test]
async fn sigterm_stops_a_sync_at_a_page_boundary_and_the_next_process_resumes_at_once()
-> anyhow::Result<()> {
    let (test_db, provider) = world().await?;
    let entities = "SELECT count(*) FROM entities WHERE source_type = 'INTEGRATION'";
    let mut first = start(&test_db.url, &provider.uri())?;
    until(&test_db, entities, 50, Duration::from_secs(30)).await?;
    let terminated = Command::new("kill")
        .arg("-TERM")
        .arg(first.0.id().to_string())
        .status()?;
    assert!(terminated.success());
    let asked = Instant::now();
    let exited = loop {
        if let Some(status) = first.0.try_wait()? {
            break status;
        }
        anyhow::ensure!(
            asked.elapsed() < Duration::from_secs(15),
            "no exit 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("exited {:?} after SIGTERM ({exited})", asked.elapsed());
    assert!(exited.success(), "{exited}");
    assert!(
        asked.elapsed() < Duration::from_secs(11),
        "past SHUTDOWN_GRACE"
    );
    let released = test_db
        .count(
            "SELECT count(*) FROM integration_sync_states WHERE sync_status = 'syncing' AND lease_expires_at < now()",
            vec![],
        )
        .await?;
    assert_eq!(released, 1, "the lease was released, the run kept");
    let requeued = test_db
        .count(
            "SELECT count(*) FROM job_queue WHERE kind = 'sync' AND status = 'queued'
             AND last_error LIKE '%page boundary%'",
            vec![],
        )
        .await?;
    assert_eq!(requeued, 1, "the job went back to the queue");
    let _second = start(&test_db.url, &provider.uri())?;
    let resumed_in = until(&test_db, entities, 100, Duration::from_secs(60)).await?;
    println!("resumed and finished {resumed_in:?} after the restart");
    assert!(
        resumed_in < Duration::from_secs(20),
        "took {resumed_in:?}: a lease was waited out"
    );
    Ok(())
}

/// Two replicas: the one holding the sync's lease is killed (`kill -9`) while the other keeps
/// running. The survivor takes the sync over by itself within a minute of the kill (the dead
/// replica's job lock and lease lapse; no manual step) and ends with every record once.
#[tokio::test]
async fn the_surviving_replica_resumes_a_killed_replicas_sync_within_a_minute() -> anyhow::Result<()>
{
    let (test_db, provider) = world().await?;
    let entities = "SELECT count(*) FROM entities WHERE source_type = 'INTEGRATION'";
    let holder = start(&test_db.url, &provider.uri())?;
    until(&test_db, entities, 50, Duration::from_secs(30)).await?;
    // The holder is stuck reading page two; the survivor runs beside it, and its workers find
    // the job locked by the holder.
    let _survivor = start(&test_db.url, &provider.uri())?;
    drop(holder); // SIGKILL
    let resumed_in = until(&test_db, entities, 100, Duration::from_secs(90)).await?;
    println!("the survivor finished the sync {resumed_in:?} after the kill");
    assert!(resumed_in <= Duration::from_secs(60), "took {resumed_in:?}");
    let distinct = test_db
        .count(
            "SELECT count(DISTINCT source_external_id) FROM entities WHERE source_type = 'INTEGRATION'",
            vec![],
        )
        .await?;
    assert_eq!(distinct, 100, "no record twice, none missing");
    Ok(())
}
