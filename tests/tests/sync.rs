//! The sync engine end to end: a mocked HubSpot answering in its documented shapes, the real
//! adapter, and a fresh database per test on PostgreSQL and SQLite.

use std::sync::Arc;
use std::time::Duration;

use integrations::{EngineError, SyncEngine};
use providers::secrecy::SecretString;
use providers::{HttpCore, ProviderClient, ProviderKind, ProviderSpec, ReadOptions, RetryPolicy};
use serde_json::{Value, json};
use tests::fixtures::{definition_id, new_id, v};
use tests::{Backend, ManualClock, NoWait, TestDb};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

struct World {
    test_db: TestDb,
    clock: Arc<ManualClock>,
    connection_id: uuid::Uuid,
    workspace_id: uuid::Uuid,
}

impl World {
    async fn new(backend: Backend) -> anyhow::Result<Self> {
        let test_db = TestDb::migrated(backend).await?;
        let workspace_id = new_id();
        let connection_id = new_id();
        let hubspot = definition_id(&test_db, "hubspot").await?;
        test_db
            .execute(
                "INSERT INTO workspaces (id, name) VALUES ($1, 'Acme')",
                vec![v(workspace_id)],
            )
            .await?;
        test_db
            .execute(
                "INSERT INTO integration_connections (id, workspace_id, integration_id, status, connection_status)
                 VALUES ($1, $2, $3, 'ACTIVE', 'connected')",
                vec![v(connection_id), v(workspace_id), v(hubspot)],
            )
            .await?;
        Ok(Self {
            test_db,
            clock: ManualClock::new(),
            connection_id,
            workspace_id,
        })
    }

    /// A PostgreSQL world with `statements` run on its database first (triggers that inject faults).
    async fn postgres_with(statements: &[&str]) -> anyhow::Result<Self> {
        let world = Self::new(Backend::Postgres).await?;
        for sql in statements {
            world.test_db.execute(sql, vec![]).await?;
        }
        Ok(world)
    }

    fn engine(&self) -> SyncEngine {
        SyncEngine::new(self.test_db.db.clone(), self.clock.clone(), "test-worker")
    }

    fn client(&self, server: &MockServer) -> anyhow::Result<ProviderClient> {
        let spec =
            ProviderSpec::for_provider(ProviderKind::HubSpot).with_api_base_url(&server.uri())?;
        let http = HttpCore::new(
            ProviderKind::HubSpot,
            RetryPolicy::default(),
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        Ok(ProviderClient::new(spec, http, SecretString::from("token")))
    }

    async fn sync(&self, server: &MockServer) -> anyhow::Result<integrations::SyncReport> {
        let claim = self
            .engine()
            .claim(self.connection_id, "contacts")
            .await?
            .ok_or_else(|| anyhow::anyhow!("not claimed"))?;
        Ok(self
            .engine()
            .run(claim, &self.client(server)?, &ReadOptions::default())
            .await?)
    }

    async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        self.test_db.count(sql, vec![]).await
    }

    /// The id of the entity synced from the record with external id `external_id`.
    async fn entity_id(&self, external_id: &str) -> anyhow::Result<uuid::Uuid> {
        use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
        Ok(entity::entities::Entity::find()
            .filter(entity::entities::Column::SourceExternalId.eq(external_id))
            .one(&self.test_db.db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no entity for record {external_id}"))?
            .id)
    }

    /// The stored value of `key` for the contact with external id `external_id`.
    async fn value(&self, external_id: &str, key: &str) -> anyhow::Result<Value> {
        use sea_orm::ConnectionTrait as _;
        let row = self
            .test_db
            .db
            .query_one_raw(self.test_db.statement(
                "SELECT v.value FROM entity_attribute_values v
                 JOIN entities e ON e.id = v.entity_id
                 JOIN attribute_definitions a ON a.id = v.attribute_id
                 WHERE e.source_external_id = $1 AND a.key = $2",
                vec![v(external_id), v(key)],
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no value {external_id}.{key}"))?;
        Ok(row.try_get_by_index::<Value>(0)?)
    }
}

/// One page of a HubSpot contacts search: `ids` modified on day `index + 1`, chained to `next`.
fn search_page(index: usize, ids: &[&str], next: Option<&str>) -> Value {
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            contact(
                id,
                &format!("{id}@example.com"),
                "N",
                &format!("2026-11-0{}T10:00:00.000Z", index + 1),
            )
        })
        .collect();
    let mut body = json!({"results": results});
    if let Some(next) = next {
        body["paging"] = json!({"next": {"after": next}});
    }
    body
}

fn contact(id: &str, email: &str, first: &str, modified: &str) -> Value {
    json!({"id": id, "properties": {"email": email, "firstname": first, "lastname": "Doe", "lastmodifieddate": modified}, "updatedAt": modified, "archived": false})
}

/// A HubSpot whose contacts search serves `pages` in order (chained by `after`), with no archived
/// contacts.
async fn hubspot(pages: Vec<Vec<Value>>) -> MockServer {
    let server = MockServer::start().await;
    let n_pages = pages.len();
    for (index, results) in pages.into_iter().enumerate().rev() {
        let mut body = json!({"total": 0, "results": results});
        if index + 1 < n_pages {
            body["paging"] = json!({"next": {"after": (index + 1).to_string()}});
        }
        let mut mock = Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"));
        if index > 0 {
            mock = mock.and(body_partial_json(json!({"after": index.to_string()})));
        }
        mock.respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_full_sync_then_an_incremental_one_count_created_and_updated_right() -> anyhow::Result<()>
{
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let first = hubspot(vec![
            vec![
                contact("1", "ada@example.com", "Ada", "2026-11-01T10:00:00.000Z"),
                contact(
                    "2",
                    "grace@example.com",
                    "Grace",
                    "2026-11-02T10:00:00.000Z",
                ),
            ],
            vec![contact(
                "3",
                "jose@example.com",
                "José",
                "2026-11-03T10:00:00.000Z",
            )],
        ])
        .await;
        let report = world.sync(&first).await?;
        assert_eq!(
            (report.created, report.updated, report.pages),
            (3, 0, 3),
            "{backend:?}"
        );
        assert_eq!(world.count("SELECT count(*) FROM entities WHERE source_type = 'INTEGRATION' AND sync_version = 1").await?, 3);
        assert_eq!(world.count("SELECT count(*) FROM entity_attribute_provenance WHERE source_type = 'INTEGRATION'").await?, 9);
        assert_eq!(world.value("3", "first_name").await?, json!("José"));
        // The entity's name and link are plain text (or SQL NULL), as a user's would be.
        assert_eq!(world.count("SELECT count(*) FROM entities WHERE source_external_id = '3' AND display_name = 'José Doe' AND (source_url IS NULL OR source_url LIKE 'https://%')").await?, 1, "{backend:?}");
        assert_eq!(world.count("SELECT count(*) FROM integration_sync_states WHERE sync_status = 'idle' AND last_sync_created = 3 AND sync_cursor IS NOT NULL").await?, 1);
        assert_eq!(world.count("SELECT count(*) FROM integration_connections WHERE sync_status = 'idle' AND last_sync_created = 3").await?, 1);

        let second = hubspot(vec![vec![
            contact("3", "jose@example.com", "José", "2026-11-03T10:00:00.000Z"),
            contact(
                "2",
                "grace.hopper@example.com",
                "Grace",
                "2026-11-04T10:00:00.000Z",
            ),
            contact("4", "alan@example.com", "Alan", "2026-11-05T10:00:00.000Z"),
        ]])
        .await;
        let report = world.sync(&second).await?;
        assert_eq!(
            (report.created, report.updated, report.unchanged),
            (1, 1, 1),
            "{backend:?}"
        );
        assert_eq!(world.count("SELECT count(*) FROM entities").await?, 4);
        assert_eq!(world.count("SELECT count(*) FROM entities WHERE source_external_id = '2' AND sync_version = 2").await?, 1);
        assert_eq!(world.count("SELECT count(*) FROM entities WHERE source_external_id = '3' AND sync_version = 1").await?, 1, "unchanged keeps its version");
        assert_eq!(
            world.value("2", "email").await?,
            json!("grace.hopper@example.com")
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_user_override_survives_the_next_sync_and_clearing_it_lets_the_sync_win()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        world
            .sync(
                &hubspot(vec![vec![contact(
                    "1",
                    "ada@example.com",
                    "Ada",
                    "2026-11-01T10:00:00.000Z",
                )]])
                .await,
            )
            .await?;
        let pin = "UPDATE entity_attribute_values SET value = '\"ada@mine.example\"' WHERE attribute_id IN (SELECT id FROM attribute_definitions WHERE key = 'email')";
        world.test_db.execute(pin, vec![]).await?;
        world.test_db.execute(
            "UPDATE entity_attribute_provenance SET override_by_user = TRUE, override_at = CURRENT_TIMESTAMP, source_type = 'USER_OVERRIDE'
             WHERE attribute_id IN (SELECT id FROM attribute_definitions WHERE key = 'email')", vec![]).await?;

        let changed = hubspot(vec![vec![contact(
            "1",
            "ada@provider.example",
            "Ada",
            "2026-11-06T10:00:00.000Z",
        )]])
        .await;
        let report = world.sync(&changed).await?;
        assert_eq!(report.conflicts, 1, "{backend:?}");
        assert_eq!(
            world.value("1", "email").await?,
            json!("ada@mine.example"),
            "{backend:?}: the override held"
        );
        assert_eq!(world.count("SELECT count(*) FROM entity_attribute_provenance WHERE override_by_user AND source_type = 'USER_OVERRIDE'").await?, 1);

        world.test_db.execute("UPDATE entity_attribute_provenance SET override_by_user = FALSE, override_at = NULL", vec![]).await?;
        let report = world.sync(&changed).await?;
        assert_eq!((report.conflicts, report.updated), (0, 1), "{backend:?}");
        assert_eq!(
            world.value("1", "email").await?,
            json!("ada@provider.example"),
            "{backend:?}: the sync won once cleared"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_crash_after_page_two_resumes_without_duplicates() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"after": "2"})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(search_page(2, &["5", "6"], None))
                    .set_delay(Duration::from_secs(20)),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"after": "2"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(search_page(
                2,
                &["5", "6"],
                None,
            )))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"after": "1"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(search_page(
                1,
                &["3", "4"],
                Some("2"),
            )))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(search_page(
                0,
                &["1", "2"],
                Some("1"),
            )))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&server)
            .await;

        let claim = world
            .engine()
            .claim(world.connection_id, "contacts")
            .await?
            .ok_or_else(|| anyhow::anyhow!("claim"))?;
        let engine = world.engine();
        let client = world.client(&server)?;
        let running =
            tokio::spawn(async move { engine.run(claim, &client, &ReadOptions::default()).await });
        // Wait (bounded) until page two is checkpointed, then kill the run mid-page-three.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while world.count("SELECT count(*) FROM entities").await? < 4 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend:?}: pages one and two never landed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        running.abort();
        let _ = running.await;
        assert_eq!(world.count("SELECT count(*) FROM integration_sync_states WHERE sync_status = 'syncing' AND last_sync_created = 4").await?, 1);

        // The dead worker's lease runs out; the next run takes over from the checkpoint.
        world.clock.advance(chrono::Duration::minutes(11));
        let report = world.sync(&server).await?;
        assert_eq!(
            (report.created, report.pages),
            (2, 2),
            "{backend:?}: resumed at page three"
        );
        assert_eq!(world.count("SELECT count(*) FROM entities").await?, 6);
        assert_eq!(
            world
                .count("SELECT count(DISTINCT source_external_id) FROM entities")
                .await?,
            6
        );
    }
    Ok(())
}

#[tokio::test]
async fn concurrent_claims_let_one_sync_run_and_a_stuck_one_is_reclaimed() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let (engine_a, engine_b) = (world.engine(), world.engine());
        let (first, second) = tokio::join!(
            engine_a.claim(world.connection_id, "contacts"),
            engine_b.claim(world.connection_id, "contacts"),
        );
        let claims: Vec<_> = [first?, second?].into_iter().flatten().collect();
        assert_eq!(claims.len(), 1, "{backend:?}");
        assert!(
            world
                .engine()
                .claim(world.connection_id, "contacts")
                .await?
                .is_none(),
            "held until the lease ends"
        );

        world.clock.advance(chrono::Duration::minutes(11));
        let taken_over = world
            .engine()
            .claim(world.connection_id, "contacts")
            .await?;
        assert!(
            taken_over.is_some(),
            "{backend:?}: a stuck sync is reclaimed"
        );
        // The stale claim can no longer write.
        let server = hubspot(vec![vec![contact(
            "1",
            "a@example.com",
            "A",
            "2026-11-01T10:00:00.000Z",
        )]])
        .await;
        let stale = claims
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("claim"))?;
        let outcome = world
            .engine()
            .run(stale, &world.client(&server)?, &ReadOptions::default())
            .await;
        assert!(
            matches!(outcome, Err(EngineError::LeaseLost)),
            "{backend:?}: {outcome:?}"
        );
        assert_eq!(world.count("SELECT count(*) FROM entities").await?, 0);
    }
    Ok(())
}

#[tokio::test]
async fn bad_input_is_a_typed_error_that_changes_nothing() -> anyhow::Result<()> {
    let world = World::new(Backend::Sqlite).await?;
    let unknown = world.engine().claim(new_id(), "contacts").await;
    assert!(
        matches!(unknown, Err(EngineError::NotFound(_))),
        "{unknown:?}"
    );
    let not_synced = world.engine().claim(world.connection_id, "tickets").await;
    assert!(
        matches!(not_synced, Err(EngineError::InvalidInput(_))),
        "{not_synced:?}"
    );
    world.test_db.execute("UPDATE integration_connections SET property_mappings = '{\"contacts\": {\"x\": \"not a key\"}}'", vec![]).await?;
    let bad_mapping = world.engine().claim(world.connection_id, "contacts").await;
    assert!(
        matches!(bad_mapping, Err(EngineError::InvalidInput(_))),
        "{bad_mapping:?}"
    );
    world
        .test_db
        .execute(
            "UPDATE integration_connections SET property_mappings = NULL, status = 'PAUSED'",
            vec![],
        )
        .await?;
    let paused = world.engine().claim(world.connection_id, "contacts").await;
    assert!(
        matches!(paused, Err(EngineError::Conflict(_))),
        "{paused:?}"
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_sync_states")
            .await?,
        0
    );
    let _ = world.workspace_id;
    Ok(())
}

#[tokio::test]
async fn a_provider_delete_archives_the_entity_and_keeps_its_provenance() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        world
            .sync(
                &hubspot(vec![vec![contact(
                    "9",
                    "gone@example.com",
                    "Gone",
                    "2026-11-01T10:00:00.000Z",
                )]])
                .await,
            )
            .await?;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&server)
            .await;
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [
            {"id": "9", "properties": {"email": "gone@example.com"}, "archived": true, "archivedAt": "2026-11-10T00:00:00.000Z"}
        ]}))).mount(&server).await;
        let report = world.sync(&server).await?;
        assert_eq!(report.deleted, 1, "{backend:?}");
        assert_eq!(world.count("SELECT count(*) FROM entities WHERE archived_at IS NOT NULL AND sync_version = 2").await?, 1);
        assert_eq!(
            world
                .count("SELECT count(*) FROM entity_attribute_provenance")
                .await?,
            3,
            "provenance is kept"
        );
    }
    Ok(())
}

#[tokio::test]
async fn user_edits_use_the_sync_version_and_win_over_syncs_until_cleared() -> anyhow::Result<()> {
    use integrations::AttributeEditor;
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        world
            .sync(
                &hubspot(vec![vec![contact(
                    "1",
                    "ada@example.com",
                    "Ada",
                    "2026-11-01T10:00:00.000Z",
                )]])
                .await,
            )
            .await?;
        let entity_id = world.entity_id("1").await?;
        let editor = AttributeEditor::new(world.test_db.db.clone(), world.clock.clone());
        let stale = editor
            .update_attribute(entity_id, "email", json!("x@example.com"), 0)
            .await;
        assert!(
            matches!(stale, Err(EngineError::Conflict(_))),
            "{backend:?}: {stale:?}"
        );
        assert_eq!(
            world.value("1", "email").await?,
            json!("ada@example.com"),
            "a stale edit changed nothing"
        );
        let version = editor
            .update_attribute(entity_id, "email", json!("ada@mine.example"), 1)
            .await?;
        assert_eq!(version, 2);
        let bad_key = editor
            .update_attribute(entity_id, "not a key", json!(1), 2)
            .await;
        assert!(matches!(bad_key, Err(EngineError::InvalidInput(_))));
        let missing = editor
            .update_attribute(new_id(), "email", json!(1), 0)
            .await;
        assert!(matches!(missing, Err(EngineError::NotFound(_))));

        let changed = hubspot(vec![vec![contact(
            "1",
            "ada@provider.example",
            "Ada",
            "2026-11-06T10:00:00.000Z",
        )]])
        .await;
        assert_eq!(world.sync(&changed).await?.conflicts, 1);
        assert_eq!(
            world.value("1", "email").await?,
            json!("ada@mine.example"),
            "{backend:?}"
        );
        let version = editor.clear_override(entity_id, "email", 2).await?;
        assert_eq!(version, 3);
        // The provider's value the sync kept under the override is back at once.
        assert_eq!(
            world.value("1", "email").await?,
            json!("ada@provider.example"),
            "{backend:?}"
        );
        assert_eq!(world.count("SELECT count(*) FROM entity_attribute_provenance WHERE source_type = 'INTEGRATION' AND NOT override_by_user AND source_external_field = 'email' AND observed_value IS NOT NULL").await?, 1, "{backend:?}: with its provenance");
        let again = world.sync(&changed).await?;
        assert_eq!(
            (again.updated, again.unchanged),
            (0, 1),
            "{backend:?}: nothing left to write"
        );
        assert!(matches!(
            editor.clear_override(entity_id, "email", 3).await,
            Err(EngineError::NotFound(_))
        ));
    }
    Ok(())
}

/// A record read again unchanged is not planned from its values while its entity carries the
/// record's fingerprint at its current version: a value changed underneath without a version step
/// stays (the read was skipped). A user edit steps the version, so the next sync plans the record
/// in full and counts its conflict, every time while the conflict lasts.
#[tokio::test]
async fn a_record_read_again_unchanged_skips_its_values_until_an_edit_moves_its_entity()
-> anyhow::Result<()> {
    use integrations::AttributeEditor;
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let provider = hubspot(vec![vec![contact(
            "1",
            "ada@example.com",
            "Ada",
            "2026-11-01T10:00:00.000Z",
        )]])
        .await;
        world.sync(&provider).await?;
        let sealed = "SELECT count(*) FROM entities WHERE length(sync_fingerprint) = 24";
        assert_eq!(world.count(sealed).await?, 1, "{backend:?}");
        let underneath = "UPDATE entity_attribute_values SET value = '\"under@example.com\"' WHERE attribute_id IN (SELECT id FROM attribute_definitions WHERE key = 'email')";
        world.test_db.execute(underneath, vec![]).await?;
        let again = world.sync(&provider).await?;
        assert_eq!((again.updated, again.unchanged), (0, 1), "{backend:?}");
        assert_eq!(
            world.value("1", "email").await?,
            json!("under@example.com"),
            "{backend:?}: the values were not read"
        );

        let entity_id = world.entity_id("1").await?;
        let editor = AttributeEditor::new(world.test_db.db.clone(), world.clock.clone());
        editor
            .update_attribute(entity_id, "email", json!("ada@mine.example"), 1)
            .await?;
        for _ in 0..2 {
            let report = world.sync(&provider).await?;
            assert_eq!(
                (report.conflicts, report.unchanged),
                (1, 1),
                "{backend:?}: the edit moved the version, so the record was planned"
            );
            assert_eq!(
                world.count(sealed).await?,
                0,
                "{backend:?}: no fingerprint under a conflict"
            );
        }
        editor.clear_override(entity_id, "email", 2).await?;
        let report = world.sync(&provider).await?;
        assert_eq!(
            (report.conflicts, report.updated, report.unchanged),
            (0, 0, 1),
            "{backend:?}"
        );
        assert_eq!(world.count(sealed).await?, 1, "{backend:?}: sealed again");
        assert_eq!(world.value("1", "email").await?, json!("ada@example.com"));
    }
    Ok(())
}

#[tokio::test]
async fn an_older_snapshot_on_a_later_page_does_not_overwrite_a_newer_one() -> anyhow::Result<()> {
    let world = World::new(Backend::Postgres).await?;
    let report = world
        .sync(
            &hubspot(vec![
                vec![contact(
                    "1",
                    "new@example.com",
                    "Ada",
                    "2026-11-05T10:00:00.000Z",
                )],
                vec![contact(
                    "1",
                    "old@example.com",
                    "Ada",
                    "2026-11-01T10:00:00.000Z",
                )],
            ])
            .await,
        )
        .await?;
    assert_eq!(report.created, 1);
    assert_eq!(world.value("1", "email").await?, json!("new@example.com"));
    Ok(())
}

/// Shutdown stops a sync at a page boundary: the page in hand commits, the rest is not read,
/// the checkpoint stays and the lease is released, so another worker resumes at once and
/// finishes without duplicates.
#[tokio::test]
async fn a_stop_ends_the_run_at_a_page_boundary_and_another_worker_resumes_at_once()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_partial_json(json!({"after": "1"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(search_page(
                1,
                &["3", "4"],
                None,
            )))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(search_page(
                0,
                &["1", "2"],
                Some("1"),
            )))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
            .mount(&server)
            .await;
        let (stop, stopped) = tokio::sync::watch::channel(true);
        let stopping = world.engine().with_stop(stopped);
        let claim = stopping
            .claim(world.connection_id, "contacts")
            .await?
            .ok_or_else(|| anyhow::anyhow!("claim"))?;
        let client = world.client(&server)?;
        let outcome = stopping.run(claim, &client, &ReadOptions::default()).await;
        assert!(
            matches!(outcome, Err(EngineError::Stopped)),
            "{backend:?}: {outcome:?}"
        );
        drop(stop);
        let entities =
            "SELECT count(*) FROM entities WHERE source_external_id IN ('1', '2', '3', '4')";
        assert_eq!(
            world.test_db.count(entities, vec![]).await?,
            2,
            "{backend:?}: the first page only"
        );
        // No wait for a lease: the next worker claims now and finishes from the checkpoint.
        let resumed = world
            .engine()
            .claim(world.connection_id, "contacts")
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!("{backend:?}: the stopped run's lease was not released")
            })?;
        world
            .engine()
            .run(resumed, &client, &ReadOptions::default())
            .await?;
        assert_eq!(
            world.test_db.count(entities, vec![]).await?,
            4,
            "{backend:?}"
        );
    }
    Ok(())
}

/// A database failure in a run says which step failed and why, in the error and in the sync
/// state's last error.
#[tokio::test]
async fn a_database_failure_names_the_step_that_failed() -> anyhow::Result<()> {
    let world = World::new(Backend::Sqlite).await?;
    let server = hubspot(vec![vec![contact(
        "1",
        "ada@example.com",
        "Ada",
        "2026-11-01T10:00:00.000Z",
    )]])
    .await;
    world
        .test_db
        .execute("DROP TABLE entity_attribute_provenance", vec![])
        .await?;
    let error = world
        .sync(&server)
        .await
        .err()
        .map(|error| error.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("upserting attribute values") && error.contains("no such table"),
        "{error}"
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_sync_states WHERE sync_status = 'error' AND last_error_message LIKE 'upserting attribute values: %no such table%'")
            .await?,
        1
    );
    Ok(())
}

/// Every sync run has a row (counts, outcome, the cursor it started from); each value a run
/// writes appends old -> new to the attribute's history and names the run in its provenance; a
/// re-sync of unchanged records writes no history.
#[tokio::test]
async fn runs_are_recorded_and_history_has_every_change_and_nothing_else() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        let first = hubspot(vec![vec![contact(
            "1",
            "ada@example.com",
            "Ada",
            "2026-11-01T10:00:00.000Z",
        )]])
        .await;
        world.sync(&first).await?;
        let written = world
            .count("SELECT count(*) FROM entity_attribute_history WHERE old_value IS NULL AND source_type = 'INTEGRATION' AND sync_run_id IS NOT NULL")
            .await?;
        assert_eq!(written, 3, "{backend:?}: email, first name, last name");
        assert_eq!(world.count("SELECT count(*) FROM sync_runs WHERE status = 'succeeded' AND created = 1 AND cursor_from IS NULL AND finished_at IS NOT NULL").await?, 1, "{backend:?}");

        world.clock.advance(chrono::Duration::minutes(1));
        world.sync(&first).await?;
        assert_eq!(
            world
                .count("SELECT count(*) FROM entity_attribute_history")
                .await?,
            3,
            "{backend:?}: an unchanged re-sync writes no history"
        );
        assert_eq!(
            world
                .count("SELECT count(*) FROM entities WHERE last_synced_at = first_synced_at AND updated_at = created_at AND sync_version = 1")
                .await?,
            1,
            "{backend:?}: an unchanged re-sync leaves the entity row as it was (a minute later)"
        );
        assert_eq!(world.count("SELECT count(*) FROM sync_runs WHERE status = 'succeeded' AND cursor_from IS NOT NULL").await?, 1, "{backend:?}: the second run started from the first's cursor");

        let changed = hubspot(vec![vec![contact(
            "1",
            "ada@provider.example",
            "Ada",
            "2026-11-02T10:00:00.000Z",
        )]])
        .await;
        world.sync(&changed).await?;
        assert_eq!(
            world
                .count("SELECT count(*) FROM entities WHERE last_synced_at > first_synced_at AND sync_version = 2")
                .await?,
            1,
            "{backend:?}: a changed record moves its entity's sync time and version"
        );
        assert_eq!(world.count("SELECT count(*) FROM entity_attribute_history h JOIN attribute_definitions a ON a.id = h.attribute_id
            WHERE a.key = 'email' AND h.source_external_field = 'email'").await?, 2, "{backend:?}");
        // The newest email change names the run that wrote the current provenance.
        assert_eq!(world.count("SELECT count(*) FROM entity_attribute_provenance p JOIN attribute_definitions a ON a.id = p.attribute_id
            JOIN sync_runs r ON r.id = p.sync_run_id
            JOIN entity_attribute_history h ON h.sync_run_id = r.id AND h.attribute_id = p.attribute_id
            WHERE a.key = 'email' AND r.updated = 1 AND h.old_value IS NOT NULL").await?, 1, "{backend:?}");
        assert_eq!(world.count("SELECT count(*) FROM sync_runs").await?, 3);
    }
    Ok(())
}

#[tokio::test]
async fn a_null_value_is_stored_as_json_null_and_its_history_tells_none_from_null()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let world = World::new(backend).await?;
        // HubSpot sends an unset property as null.
        let mut first = contact("1", "ada@example.com", "Ada", "2026-11-01T10:00:00.123456Z");
        first["properties"]["firstname"] = Value::Null;
        world.sync(&hubspot(vec![vec![first]]).await).await?;
        assert_eq!(
            world.value("1", "first_name").await?,
            Value::Null,
            "{backend:?}"
        );
        assert_eq!(
            world
                .count(
                    "SELECT count(*) FROM entity_attribute_history h
                     JOIN attribute_definitions a ON a.id = h.attribute_id
                     WHERE a.key = 'first_name' AND h.old_value IS NULL AND h.new_value IS NOT NULL"
                )
                .await?,
            1,
            "{backend:?}: a first value has no old value, and its new value is a JSON null"
        );
        let second = contact("1", "ada@example.com", "Ada", "2026-11-02T10:00:00.000Z");
        world.sync(&hubspot(vec![vec![second]]).await).await?;
        assert_eq!(
            world.value("1", "first_name").await?,
            json!("Ada"),
            "{backend:?}"
        );
        assert_eq!(
            world
                .count(
                    "SELECT count(*) FROM entity_attribute_history h
                     JOIN attribute_definitions a ON a.id = h.attribute_id
                     WHERE a.key = 'first_name' AND h.old_value IS NOT NULL"
                )
                .await?,
            1,
            "{backend:?}: the change from null keeps null as its old value"
        );
    }
    Ok(())
}

/// `pg_class.reltuples` of `table`: -1 until the table is first analyzed (PostgreSQL 14+).
async fn reltuples(world: &World, table: &str) -> anyhow::Result<f64> {
    use sea_orm::ConnectionTrait as _;
    let row = world
        .test_db
        .db
        .query_one_raw(world.test_db.statement(
            "SELECT reltuples::float8 FROM pg_class WHERE relname = $1",
            vec![v(table)],
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no table {table}"))?;
    Ok(row.try_get_by_index::<f64>(0)?)
}

#[tokio::test]
async fn postgres_analyzes_the_tables_a_sync_grows_after_every_n_created_entities()
-> anyhow::Result<()> {
    let pages = || {
        vec![vec![
            contact("1", "ada@example.com", "Ada", "2026-11-01T10:00:00.000Z"),
            contact(
                "2",
                "grace@example.com",
                "Grace",
                "2026-11-02T10:00:00.000Z",
            ),
            contact("3", "jose@example.com", "José", "2026-11-03T10:00:00.000Z"),
        ]]
    };
    for (every, analyzed) in [(0, false), (2, true)] {
        let world = World::new(Backend::Postgres).await?;
        let autovacuum_off = world
            .count("SELECT count(*) FROM pg_settings WHERE name = 'autovacuum' AND setting = 'off'")
            .await?
            == 1;
        let server = hubspot(pages()).await;
        let engine = world
            .engine()
            .with_analyze(integrations::AnalyzeSchedule::every(every));
        let claim = engine
            .claim(world.connection_id, "contacts")
            .await?
            .ok_or_else(|| anyhow::anyhow!("not claimed"))?;
        engine
            .run(claim, &world.client(&server)?, &ReadOptions::default())
            .await?;
        for table in [
            "entities",
            "entity_attribute_values",
            "entity_attribute_history",
        ] {
            let mut tuples = reltuples(&world, table).await?;
            // The engine analyzes in its own task, so the sync does not wait for it: wait for it
            // here, at most 10 s.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while analyzed && tuples < 3.0 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                tuples = reltuples(&world, table).await?;
            }
            if analyzed {
                assert!(
                    tuples >= 3.0,
                    "every {every}: {table} has reltuples {tuples}"
                );
            } else if autovacuum_off {
                assert!(
                    tuples < 0.0,
                    "every {every}: {table} was analyzed ({tuples})"
                );
            }
        }
    }
    Ok(())
}

/// A trigger that fails the insert of the entity for record `poison`, once advisory lock 4242
/// is free (a test holds it to keep that page in flight).
const POISON: [&str; 2] = [
    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         IF NEW.source_external_id = 'poison' THEN
             PERFORM pg_advisory_xact_lock(4242);
             RAISE EXCEPTION 'poisoned record';
         END IF;
         RETURN NEW;
     END $$",
    "CREATE TRIGGER poison BEFORE INSERT ON entities FOR EACH ROW EXECUTE FUNCTION poison()",
];

/// On PostgreSQL two pages of a run are written at once, each in its own transaction, and
/// commit in page order. Here the first page is held in flight (its insert waits for a lock the
/// test holds) until the second has written its rows beside it; then the first fails. The second
/// rolls back with it: nothing is stored, the checkpoint stays where it was, and the run reports
/// the first page's error. A page that fails after the one before committed leaves that page
/// and its checkpoint in place.
#[tokio::test]
async fn a_page_written_beside_one_that_fails_rolls_back_with_it() -> anyhow::Result<()> {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
    let world = World::postgres_with(&POISON).await?;
    let held = world.test_db.db.begin().await?;
    held.execute_unprepared("SELECT pg_advisory_xact_lock(4242)")
        .await?;
    let day = "2026-11-01T10:00:00.000Z";
    let server = hubspot(vec![
        vec![
            contact("poison", "p@example.com", "P", day),
            contact("1", "a@example.com", "A", day),
        ],
        vec![
            contact("2", "b@example.com", "B", day),
            contact("3", "c@example.com", "C", day),
        ],
    ])
    .await;
    let (engine, client) = (world.engine(), world.client(&server)?);
    let claim = engine
        .claim(world.connection_id, "contacts")
        .await?
        .ok_or_else(|| anyhow::anyhow!("claim"))?;
    let run =
        tokio::spawn(async move { engine.run(claim, &client, &ReadOptions::default()).await });
    // The second page has written its rows (its history insert holds the table) while the first
    // waits in its entity insert, before its own history.
    let second_written = "SELECT count(*) FROM pg_locks
        WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND relation = 'entity_attribute_history'::regclass
          AND mode = 'RowExclusiveLock' AND granted";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while world.count(second_written).await? == 0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline && !run.is_finished(),
            "the second page was never written while the first was in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.commit().await?;
    let outcome = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| anyhow::anyhow!("the run hung (a lock cycle between its pages?)"))??;
    assert!(
        format!("{outcome:?}").contains("poisoned record"),
        "the first page's error: {outcome:?}"
    );
    assert_eq!(world.count("SELECT count(*) FROM entities").await?, 0);
    assert_eq!(
        world
            .count("SELECT count(*) FROM entity_attribute_history")
            .await?,
        0
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_sync_states WHERE sync_cursor IS NOT NULL")
            .await?,
        0,
        "no checkpoint moved"
    );

    // The second page fails: the first stays, with its checkpoint.
    let world = World::postgres_with(&POISON).await?;
    let server = hubspot(vec![
        vec![
            contact("1", "a@example.com", "A", day),
            contact("2", "b@example.com", "B", day),
        ],
        vec![
            contact("poison", "p@example.com", "P", day),
            contact("3", "c@example.com", "C", day),
        ],
    ])
    .await;
    let outcome = world.sync(&server).await;
    assert!(
        format!("{outcome:?}").contains("poisoned record"),
        "{outcome:?}"
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM entities WHERE source_external_id IN ('1', '2')")
            .await?,
        2
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM entities WHERE source_external_id IN ('3', 'poison')")
            .await?,
        0
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM integration_sync_states WHERE sync_cursor IS NOT NULL")
            .await?,
        1,
        "the first page's checkpoint"
    );
    Ok(())
}

/// A page that shares a record with a page in flight is not looked up ahead: it waits for the
/// page before it to commit and reads the record as the earlier page left it. Here the first
/// page is held in flight (its insert of record `slow` waits for a lock the test holds) until the
/// reader has handed the sharing page over and gone on to the next; a sharing page read ahead
/// would miss record `2`'s uncommitted entity, plan it anew and fail on its foreign keys (or
/// deadlock, see below). The record is shared with the page right before, then with the page
/// two back (a page in between).
#[tokio::test]
async fn a_page_sharing_a_record_with_a_page_in_flight_reads_it_after_that_page_commits()
-> anyhow::Result<()> {
    let (day, later) = ("2026-11-01T10:00:00.000Z", "2026-11-02T10:00:00.000Z");
    let first = vec![
        contact("slow", "s@example.com", "S", day),
        contact("2", "before@example.com", "B", day),
    ];
    let sharing = vec![
        contact("2", "after@example.com", "B", later),
        contact("3", "c@example.com", "C", later),
    ];
    let last = vec![contact("4", "d@example.com", "D", later)];
    let between = vec![contact("5", "e@example.com", "E", later)];
    shared_record_waits(vec![first.clone(), sharing.clone(), last.clone()], 4).await?;
    shared_record_waits(vec![first, between, sharing, last], 5).await
}

/// Syncs `pages` with the first held in flight until the reader has read them all; the run must
/// end with `created` entities, one of them record `2` with page-later's email.
async fn shared_record_waits(pages: Vec<Vec<Value>>, created: u32) -> anyhow::Result<()> {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
    let world = World::postgres_with(&[
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.source_external_id = 'slow' THEN
                 PERFORM pg_advisory_xact_lock(4243);
             END IF;
             RETURN NEW;
         END $$",
        "CREATE TRIGGER slow BEFORE INSERT ON entities FOR EACH ROW EXECUTE FUNCTION slow()",
    ])
    .await?;
    let held = world.test_db.db.begin().await?;
    held.execute_unprepared("SELECT pg_advisory_xact_lock(4243)")
        .await?;
    let n_pages = pages.len();
    let server = hubspot(pages).await;
    let (engine, client) = (world.engine(), world.client(&server)?);
    let claim = engine
        .claim(world.connection_id, "contacts")
        .await?
        .ok_or_else(|| anyhow::anyhow!("claim"))?;
    let run =
        tokio::spawn(async move { engine.run(claim, &client, &ReadOptions::default()).await });
    // The last page's read means the pages before it were handed to the writer.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let searches = server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|request| request.method.as_str() == "POST")
            .count();
        if searches >= n_pages {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline && !run.is_finished(),
            "the reader never reached the last page"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.commit().await?;
    // Were the sharing page written beside the first, it could insert record `2`'s row first;
    // the first would wait for it while it waits, in the engine, for the first's commit.
    let report = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| anyhow::anyhow!("the run hung (a lock cycle between its pages?)"))???;
    assert_eq!((report.created, report.updated), (created, 1), "{report:?}");
    assert_eq!(world.value("2", "email").await?, json!("after@example.com"));
    assert_eq!(
        world
            .count("SELECT count(*) FROM entities WHERE source_external_id = '2'")
            .await?,
        1
    );
    Ok(())
}

/// Each write depth (`SYNC_PAGES_IN_FLIGHT`) syncs the same pages to the same rows, a record
/// repeated on a later page included.
#[tokio::test]
async fn every_write_depth_syncs_the_same_rows() -> anyhow::Result<()> {
    let pages = || {
        vec![
            vec![contact(
                "1",
                "a@example.com",
                "A",
                "2026-11-01T10:00:00.000Z",
            )],
            vec![
                contact("2", "b@example.com", "B", "2026-11-02T10:00:00.000Z"),
                contact("3", "c@example.com", "C", "2026-11-02T10:00:00.000Z"),
            ],
            vec![contact(
                "4",
                "d@example.com",
                "D",
                "2026-11-03T10:00:00.000Z",
            )],
            vec![contact(
                "2",
                "b2@example.com",
                "B",
                "2026-11-04T10:00:00.000Z",
            )],
            vec![contact(
                "5",
                "e@example.com",
                "E",
                "2026-11-05T10:00:00.000Z",
            )],
        ]
    };
    for depth in [1, 2, 3, 5] {
        let world = World::new(Backend::Postgres).await?;
        let server = hubspot(pages()).await;
        let engine = world.engine().with_pages_in_flight(depth);
        let claim = engine
            .claim(world.connection_id, "contacts")
            .await?
            .ok_or_else(|| anyhow::anyhow!("not claimed"))?;
        let (client, options) = (world.client(&server)?, ReadOptions::default());
        let run = engine.run(claim, &client, &options);
        let report = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .map_err(|_| anyhow::anyhow!("depth {depth}: the run hung"))??;
        assert_eq!(
            (report.created, report.updated, report.pages),
            (5, 1, 6),
            "depth {depth}: {report:?} (5 pages and the archived list)"
        );
        assert_eq!(world.value("2", "email").await?, json!("b2@example.com"));
        assert_eq!(
            world
                .count("SELECT count(*) FROM entity_attribute_history")
                .await?,
            world
                .count("SELECT count(*) FROM entity_attribute_values")
                .await?
                + 1,
            "depth {depth}: one history row per value written, and one for the change"
        );
    }
    Ok(())
}
