//! The engine's inbox, queue and cache on a fresh database: exactly-once webhook intake, jobs that
//! run once across workers, retries with backoff, and cleanup of expired rows.

use std::collections::HashSet;
use std::sync::Arc;

use integrations::{
    BatchingInbox, EngineError, Intake, IntegrationCache, Job, JobQueue, NewJob, WebhookInbox,
};
use providers::{Clock as _, ProviderKind, VerifiedEvent};
use serde_json::json;
use tests::fixtures::{Tenant, v};
use tests::{Backend, ManualClock, TestDb};

fn hubspot_event(event_id: u32) -> VerifiedEvent {
    VerifiedEvent {
        provider: ProviderKind::HubSpot,
        dedupe_key: format!("hubspot:62515:7:{event_id}"),
        account_id: Some("62515".to_owned()),
        event_type: "contact.propertyChange".to_owned(),
        object_type: Some("contact".to_owned()),
        object_id: Some("101".to_owned()),
        occurred_at: None,
        payload: json!({"eventId": event_id, "portalId": 62515, "objectId": 101}),
    }
}

/// Follow-up syncs the inbox queued (one per connection, object and 10-second bucket).
async fn webhook_jobs(test_db: &TestDb) -> anyhow::Result<i64> {
    test_db
        .count(
            "SELECT count(*) FROM job_queue WHERE kind = 'sync' AND job_key LIKE '%:webhook:%'",
            vec![],
        )
        .await
}

async fn routed_tenant(test_db: &TestDb) -> anyhow::Result<Tenant> {
    let tenant = Tenant::create(test_db, "OWNER", "hubspot").await?;
    test_db
        .execute(
            "UPDATE integration_connections SET connection_metadata = '{\"external_account_id\": \"62515\"}' WHERE id = $1",
            vec![v(tenant.connection_id)],
        )
        .await?;
    Ok(tenant)
}

#[tokio::test]
async fn the_same_webhook_delivered_a_hundred_times_at_once_is_processed_once() -> anyhow::Result<()>
{
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = routed_tenant(&test_db).await?;
        let inbox = WebhookInbox::new(test_db.db.clone(), ManualClock::new());
        let mut deliveries = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let inbox = inbox.clone();
            deliveries.spawn(async move { inbox.take(&hubspot_event(1), None).await });
        }
        let mut outcomes = Vec::new();
        while let Some(outcome) = deliveries.join_next().await {
            outcomes.push(outcome??);
        }
        let accepted = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Intake::Accepted { .. }))
            .count();
        let duplicates = outcomes
            .iter()
            .filter(|outcome| **outcome == Intake::Duplicate)
            .count();
        assert_eq!((accepted, duplicates), (1, 99), "{backend:?}");
        assert!(outcomes.contains(&Intake::Accepted {
            connection_id: tenant.connection_id
        }));
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM webhook_events", vec![])
                .await?,
            1
        );
        assert_eq!(webhook_jobs(&test_db).await?, 1, "{backend:?}");
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_deliveries_share_transactions_and_each_event_is_taken_exactly_once()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = routed_tenant(&test_db).await?;
        let inbox = BatchingInbox::spawn(WebhookInbox::new(test_db.db.clone(), ManualClock::new()));
        // 300 requests, 200 distinct events: every third request repeats the event of the request
        // two before it (racing it), every fiftieth carries its event twice, every tenth also
        // carries an event of an account no connection has.
        let mut deliveries = tokio::task::JoinSet::new();
        for request in 0..300_u32 {
            let inbox = inbox.clone();
            let mut events = vec![hubspot_event(if request % 3 == 2 {
                1000 + request - 2
            } else {
                1000 + request
            })];
            if request % 50 == 0 {
                events.push(events[0].clone());
            }
            if request % 10 == 0 {
                let mut stranger = hubspot_event(5000 + request);
                stranger.account_id = Some("99999".to_owned());
                events.push(stranger);
            }
            deliveries.spawn(async move { inbox.take_all(events, None).await });
        }
        let mut outcomes = Vec::new();
        while let Some(outcome) = deliveries.join_next().await {
            outcomes.extend(outcome?.map_err(|error| anyhow::anyhow!("{error}"))?);
        }
        let count = |wanted: fn(&Intake) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
        let n_accepted = count(|o| matches!(o, Intake::Accepted { .. }));
        let n_duplicates = count(|o| *o == Intake::Duplicate);
        let n_unknown = count(|o| *o == Intake::UnknownAccount);
        assert_eq!(
            (n_accepted, n_duplicates, n_unknown),
            (200, 100 + 6, 30),
            "{backend:?}"
        );
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM webhook_events WHERE connection_id = $1",
                    vec![v(tenant.connection_id)]
                )
                .await?,
            200,
            "{backend:?}"
        );
        assert_eq!(
            webhook_jobs(&test_db).await?,
            1,
            "{backend:?}: 200 events of one object in one bucket cost one sync"
        );
        // A second burst of the same deliveries is all duplicates and stores nothing more.
        let again = inbox
            .take_all(
                (0..300)
                    .filter(|r| r % 3 != 2)
                    .map(|r| hubspot_event(1000 + r))
                    .collect(),
                None,
            )
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        assert!(
            again.iter().all(|o| *o == Intake::Duplicate),
            "{backend:?} {again:?}"
        );
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM webhook_events", vec![])
                .await?,
            200
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_webhook_for_an_unknown_account_is_acknowledged_and_not_stored() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    routed_tenant(&test_db).await?;
    let inbox = WebhookInbox::new(test_db.db.clone(), ManualClock::new());
    let mut stranger = hubspot_event(2);
    stranger.account_id = Some("99999".to_owned());
    assert_eq!(inbox.take(&stranger, None).await?, Intake::UnknownAccount);
    assert_eq!(
        test_db
            .count("SELECT count(*) FROM webhook_events", vec![])
            .await?,
        0
    );
    assert_eq!(
        test_db
            .count("SELECT count(*) FROM job_queue", vec![])
            .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn expired_webhook_keys_and_cache_rows_are_cleaned_and_fresh_ones_kept() -> anyhow::Result<()>
{
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = routed_tenant(&test_db).await?;
        let clock = ManualClock::new();
        let inbox = WebhookInbox::new(test_db.db.clone(), clock.clone());
        let cache = IntegrationCache::new(test_db.db.clone(), clock.clone());
        inbox.take(&hubspot_event(1), None).await?;
        cache
            .put(
                tenant.connection_id,
                "account_info",
                json!({"portalId": 62515}),
                chrono::Duration::hours(1),
            )
            .await?;
        assert_eq!(
            cache.get(tenant.connection_id, "account_info").await?,
            Some(json!({"portalId": 62515}))
        );

        clock.advance(chrono::Duration::hours(2));
        assert_eq!(
            cache.get(tenant.connection_id, "account_info").await?,
            None,
            "{backend:?}: expired is a miss"
        );
        inbox.take(&hubspot_event(2), None).await?;
        clock.advance(chrono::Duration::days(30) - chrono::Duration::hours(1));
        assert_eq!(
            inbox.cleanup_expired().await?,
            1,
            "{backend:?}: only the first key is past 30 days"
        );
        assert_eq!(cache.cleanup_expired().await?, 1);
        assert_eq!(
            test_db
                .count("SELECT count(*) FROM webhook_events", vec![])
                .await?,
            1
        );
        assert_eq!(
            inbox.take(&hubspot_event(2), None).await?,
            Intake::Duplicate,
            "{backend:?}: the kept key still dedupes"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_cache_refuses_anything_that_looks_like_a_credential() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Sqlite).await?;
    let tenant = routed_tenant(&test_db).await?;
    let cache = IntegrationCache::new(test_db.db.clone(), ManualClock::new());
    for value in [
        json!({"access_token": "x"}),
        json!({"account": {"Refresh_Token": "x"}}),
        json!([{"api_key": "x"}]),
    ] {
        let refused = cache
            .put(
                tenant.connection_id,
                "k",
                value.clone(),
                chrono::Duration::hours(1),
            )
            .await;
        assert!(
            matches!(refused, Err(EngineError::InvalidInput(_))),
            "{value}"
        );
    }
    assert_eq!(
        test_db
            .count("SELECT count(*) FROM integration_cache", vec![])
            .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn jobs_enqueued_by_several_instances_run_once_each_across_workers() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let clock = ManualClock::new();
    let instance_a = JobQueue::new(test_db.db.clone(), clock.clone(), "instance-a");
    let instance_b = JobQueue::new(test_db.db.clone(), clock.clone(), "instance-b");
    // The same cron tick fired by two replicas is one job.
    for tick in 0..50 {
        let job = || {
            NewJob::new(Job::Sync {
                connection_id: uuid::Uuid::nil(),
                object_type: "contacts".to_owned(),
            })
            .with_key(format!("sync:hubspot:2026-11-22T12:{tick:02}"))
        };
        let from_a = instance_a.enqueue(job()).await?;
        let from_b = instance_b.enqueue(job()).await?;
        assert!(from_a && !from_b, "tick {tick}");
    }
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let queue = JobQueue::new(
            test_db.db.clone(),
            clock.clone(),
            format!("worker-{worker}"),
        );
        workers.spawn(async move {
            let mut done = Vec::new();
            while let Some(job) = queue.claim(&["sync"]).await? {
                queue.complete(&job).await?;
                done.push(job.id);
            }
            anyhow::Ok(done)
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done??);
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(
        (all.len(), distinct.len()),
        (50, 50),
        "every job ran exactly once"
    );
    assert_eq!(
        test_db
            .count(
                "SELECT count(*) FROM job_queue WHERE status = 'succeeded' AND attempts = 1",
                vec![]
            )
            .await?,
        50
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_job_backs_off_then_fails_and_a_dead_workers_job_is_taken_over()
-> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let clock = ManualClock::new();
        let queue = JobQueue::new(test_db.db.clone(), clock.clone(), "worker");
        let mut job = NewJob::new(Job::HealthCheck {
            connection_id: uuid::Uuid::nil(),
        });
        job.max_attempts = 2;
        queue.enqueue(job).await?;
        let first = queue
            .claim(&["health_check"])
            .await?
            .ok_or_else(|| anyhow::anyhow!("due"))?;
        queue
            .fail(&first, "HubSpot: unavailable (HTTP 503)", None)
            .await?;
        assert!(
            queue.claim(&["health_check"]).await?.is_none(),
            "{backend:?}: backing off"
        );
        clock.advance(chrono::Duration::seconds(61));
        let second = queue
            .claim(&["health_check"])
            .await?
            .ok_or_else(|| anyhow::anyhow!("retry due"))?;
        assert_eq!(second.attempts, 2);
        queue
            .fail(&second, "still down", Some(chrono::Duration::minutes(10)))
            .await?;
        assert_eq!(test_db.count("SELECT count(*) FROM job_queue WHERE status = 'failed' AND last_error = 'still down'", vec![]).await?, 1, "{backend:?}");

        queue.enqueue(NewJob::new(Job::Cleanup)).await?;
        let crashed = JobQueue::new(test_db.db.clone(), clock.clone(), "crashed")
            .with_lock(chrono::Duration::minutes(5));
        assert!(crashed.claim(&["cleanup"]).await?.is_some());
        assert!(
            queue.claim(&["cleanup"]).await?.is_none(),
            "{backend:?}: locked"
        );
        clock.advance(chrono::Duration::minutes(6));
        let taken = queue
            .claim(&["cleanup"])
            .await?
            .ok_or_else(|| anyhow::anyhow!("lock expired"))?;
        assert_eq!(taken.locked_by.as_deref(), Some("worker"));
    }
    let _ = Arc::new(());
    Ok(())
}

/// Dedupe keys are per tenant: one event delivered to two workspaces is taken once by each, on
/// per-connection endpoints and through an app-level endpoint routed by account; repeats are
/// duplicates for each; a disconnected connection takes nothing.
#[tokio::test]
async fn the_same_event_reaches_two_workspaces_once_each() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let first = routed_tenant(&test_db).await?;
        let second = routed_tenant(&test_db).await?;
        let inbox = WebhookInbox::new(test_db.db.clone(), ManualClock::new());
        // Per-connection endpoints: the same provider key at both.
        for tenant in [&first, &second] {
            for attempt in 0..2 {
                let intake = inbox
                    .take(&hubspot_event(7), Some(tenant.connection_id))
                    .await?;
                let expected = if attempt == 0 {
                    Intake::Accepted {
                        connection_id: tenant.connection_id,
                    }
                } else {
                    Intake::Duplicate
                };
                assert_eq!(intake, expected, "{backend:?} attempt {attempt}");
            }
        }
        // App-level: one delivery for the shared account reaches both connections.
        let intake = inbox.take(&hubspot_event(8), None).await?;
        assert!(matches!(intake, Intake::Accepted { .. }), "{intake:?}");
        assert_eq!(
            inbox.take(&hubspot_event(8), None).await?,
            Intake::Duplicate
        );
        for tenant in [&first, &second] {
            let rows = test_db
                .count(
                    "SELECT count(*) FROM webhook_events WHERE connection_id = $1",
                    vec![v(tenant.connection_id)],
                )
                .await?;
            assert_eq!(rows, 2, "{backend:?}: events 7 and 8 once each");
        }
        assert_eq!(
            webhook_jobs(&test_db).await?,
            2,
            "{backend:?}: one sync per connection"
        );
        // A disconnected connection is no longer a route.
        test_db
            .execute(
                "UPDATE integration_connections SET status = 'DISCONNECTED' WHERE id = $1",
                vec![v(second.connection_id)],
            )
            .await?;
        assert_eq!(
            inbox.take(&hubspot_event(9), None).await?,
            Intake::Accepted {
                connection_id: first.connection_id
            }
        );
        assert_eq!(webhook_jobs(&test_db).await?, 2, "{backend:?}");
    }
    Ok(())
}

/// Routes are read once and kept (on PostgreSQL), but every batch is checked against the
/// database in its own statement: a workspace connecting an account already routed elsewhere gets
/// the next event too, a disconnected connection and a changed account id get nothing, and an
/// account first unknown is routed once it is connected.
#[tokio::test]
async fn a_kept_route_follows_connections_made_and_disconnected() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let inbox = WebhookInbox::new(test_db.db.clone(), ManualClock::new());
        let stored_for = async |tenant: &Tenant, event: u32| {
            test_db
                .count(
                    "SELECT count(*) FROM webhook_events WHERE connection_id = $1 AND event_id LIKE $2",
                    vec![v(tenant.connection_id), v(format!("%:{event}"))],
                )
                .await
        };
        assert_eq!(
            inbox.take(&hubspot_event(1), None).await?,
            Intake::UnknownAccount,
            "{backend:?}: nothing is connected yet"
        );
        let first = routed_tenant(&test_db).await?;
        assert_eq!(
            inbox.take(&hubspot_event(2), None).await?,
            Intake::Accepted {
                connection_id: first.connection_id
            },
            "{backend:?}"
        );
        let second = routed_tenant(&test_db).await?;
        assert!(matches!(
            inbox.take(&hubspot_event(3), None).await?,
            Intake::Accepted { .. }
        ));
        assert_eq!(
            (stored_for(&first, 3).await?, stored_for(&second, 3).await?),
            (1, 1),
            "{backend:?}: the account's new connection takes the event too"
        );
        test_db
            .execute(
                "UPDATE integration_connections SET status = 'DISCONNECTED' WHERE id = $1",
                vec![v(first.connection_id)],
            )
            .await?;
        assert_eq!(
            inbox.take(&hubspot_event(4), None).await?,
            Intake::Accepted {
                connection_id: second.connection_id
            },
            "{backend:?}"
        );
        assert_eq!(stored_for(&first, 4).await?, 0, "{backend:?}");
        test_db
            .execute(
                "UPDATE integration_connections SET connection_metadata = '{\"external_account_id\": \"777\"}' WHERE id = $1",
                vec![v(second.connection_id)],
            )
            .await?;
        assert_eq!(
            inbox.take(&hubspot_event(5), None).await?,
            Intake::UnknownAccount,
            "{backend:?}: the account is no longer connected"
        );
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM webhook_events WHERE event_id LIKE '%:5'",
                    vec![]
                )
                .await?,
            0,
            "{backend:?}"
        );
    }
    Ok(())
}

/// A webhook queues the sync of its object, due at the end of its 10-second bucket: events in
/// one bucket share it, an event after the bucket's sync was queued gets the next one, and an
/// event naming no synced object (Gmail's push) syncs every object.
#[tokio::test]
async fn webhooks_queue_their_objects_sync_at_the_end_of_their_bucket() -> anyhow::Result<()> {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = routed_tenant(&test_db).await?;
        let clock = ManualClock::new();
        let inbox = WebhookInbox::new(test_db.db.clone(), clock.clone());
        let start = clock.now().timestamp();
        // To the start of a bucket, so the next 9 seconds are the same bucket.
        clock.advance(chrono::Duration::seconds(10 - start.rem_euclid(10)));
        inbox.take(&hubspot_event(1), None).await?;
        clock.advance(chrono::Duration::seconds(9));
        inbox.take(&hubspot_event(2), None).await?;
        clock.advance(chrono::Duration::seconds(1));
        inbox.take(&hubspot_event(3), None).await?;
        let mut company = hubspot_event(4);
        company.object_type = Some("company".to_owned());
        inbox.take(&company, None).await?;
        let mut unnamed = hubspot_event(5);
        unnamed.object_type = None;
        inbox.take(&unnamed, None).await?;
        let mut objects = Vec::new();
        for object in ["companies", "contacts", "deals"] {
            let n = test_db
                .count(
                    "SELECT count(*) FROM job_queue WHERE kind = 'sync'
                     AND payload ->> 'connection_id' = $1 AND payload ->> 'object_type' = $2",
                    vec![v(tenant.connection_id.to_string()), v(object)],
                )
                .await?;
            objects.push((object, n));
        }
        assert_eq!(
            objects,
            [("companies", 1), ("contacts", 2), ("deals", 1)],
            "{backend:?}: contacts once per bucket; the unnamed event's syncs share the bucket's"
        );
        // The first bucket's sync is due now, the second's when its bucket ends.
        let worker_queue = JobQueue::new(test_db.db.clone(), clock.clone(), "w");
        let mut due = 0;
        while worker_queue.claim(&["sync"]).await?.is_some() {
            due += 1;
        }
        assert_eq!(due, 1, "{backend:?}");
        clock.advance(chrono::Duration::seconds(10));
        while worker_queue.claim(&["sync"]).await?.is_some() {
            due += 1;
        }
        assert_eq!(due, 4, "{backend:?}");
        // A repeat in a later bucket is a duplicate and asks for no sync.
        clock.advance(chrono::Duration::seconds(30));
        assert_eq!(
            inbox.take(&hubspot_event(1), None).await?,
            Intake::Duplicate
        );
        assert_eq!(webhook_jobs(&test_db).await?, 4, "{backend:?}");
    }
    Ok(())
}

/// Keys stored before the per-tenant migration are prefixed with their connection, on both back
/// ends (SQLite keeps UUIDs as blobs), and a redelivery of such an event is still a duplicate.
#[tokio::test]
async fn existing_webhook_keys_migrate_to_per_tenant_keys() -> anyhow::Result<()> {
    use migration::MigratorTrait as _;
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let test_db = TestDb::empty(backend).await?;
        let names: Vec<String> = migration::Migrator::migrations()
            .iter()
            .map(|migration| migration.name().to_owned())
            .collect();
        let position = names
            .iter()
            .position(|name| name == "m20261201_000002_webhook_keys_per_connection")
            .ok_or_else(|| anyhow::anyhow!("no per-tenant key migration"))?;
        migration::Migrator::up(&test_db.db, Some(u32::try_from(position)?)).await?;
        let tenant = routed_tenant(&test_db).await?;
        test_db
            .execute(
                "INSERT INTO webhook_events (id, event_id, provider, connection_id, expires_at)
                 VALUES ($1, 'hubspot:62515:7:1', 'hubspot', $2, CURRENT_TIMESTAMP)",
                vec![v(uuid::Uuid::now_v7()), v(tenant.connection_id)],
            )
            .await?;
        migration::Migrator::up(&test_db.db, None).await?;
        let expected = format!("{}:hubspot:62515:7:1", tenant.connection_id);
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM webhook_events WHERE event_id = $1",
                    vec![v(expected)],
                )
                .await?,
            1,
            "{backend:?}"
        );
        let inbox = WebhookInbox::new(test_db.db.clone(), ManualClock::new());
        assert_eq!(
            inbox.take(&hubspot_event(1), None).await?,
            Intake::Duplicate
        );
        migration::Migrator::down(&test_db.db, Some(u32::try_from(names.len() - position)?))
            .await?;
        assert_eq!(
            test_db
                .count(
                    "SELECT count(*) FROM webhook_events WHERE event_id = 'hubspot:62515:7:1'",
                    vec![],
                )
                .await?,
            1,
            "{backend:?}: down strips the prefix"
        );
    }
    Ok(())
}
