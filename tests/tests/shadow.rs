//! Shadow values for all six providers, through their real readers against mocks in their
//! documented shapes: a sync, a user override, a sync bringing a newer provider value (kept under
//! the override, listed as a conflict), then `clear_override` restores the provider's value and
//! its provenance at once, with no provider call. Intercom, whose reader skips unchanged records,
//! included. On PostgreSQL and SQLite.

use std::sync::Arc;

use integrations::{AttributeEditor, SyncEngine};
use providers::secrecy::SecretString;
use providers::{HttpCore, ProviderClient, ProviderKind, ProviderSpec, ReadOptions, RetryPolicy};
use serde_json::{Value, json};
use tests::fixtures::{active_connection, v};
use tests::{Backend, ManualClock, NoWait, TestDb};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// One provider's case: its object, the attribute overridden, and the mocks of the first and
/// second sync (the second sends `provider_value`).
struct Case {
    kind: ProviderKind,
    object: &'static str,
    external_id: &'static str,
    key: &'static str,
    first_value: Value,
    provider_value: Value,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            kind: ProviderKind::HubSpot,
            object: "contacts",
            external_id: "101",
            key: "email",
            first_value: json!("ada@example.com"),
            provider_value: json!("ada@provider.example"),
        },
        Case {
            kind: ProviderKind::Salesforce,
            object: "Contact",
            external_id: "003xx000004TmiQAAS",
            key: "email",
            first_value: json!("ada@example.com"),
            provider_value: json!("ada@provider.example"),
        },
        Case {
            kind: ProviderKind::Stripe,
            object: "customers",
            external_id: "cus_Q1aXbYcZ",
            key: "name",
            first_value: json!("Ada Lovelace"),
            provider_value: json!("Ada King"),
        },
        Case {
            kind: ProviderKind::Zendesk,
            object: "tickets",
            external_id: "35436",
            key: "subject",
            first_value: json!("Help, my printer is on fire!"),
            provider_value: json!("Printer fire (resolved)"),
        },
        Case {
            kind: ProviderKind::Intercom,
            object: "contacts",
            external_id: "6329bd9ffe4e1a5c4e7d9a20",
            key: "name",
            first_value: json!("Ada Lovelace"),
            provider_value: json!("Ada King"),
        },
        Case {
            kind: ProviderKind::Gmail,
            object: "messages",
            external_id: "18c1a0000000a001",
            key: "subject",
            first_value: json!("Thursday"),
            provider_value: json!("Thursday (moved)"),
        },
    ]
}

/// The provider's answers for one sync, the record carrying `value` modified at `at` (RFC 3339).
async fn mount(server: &MockServer, case: &Case, value: &Value, at: &str, second: bool) {
    server.reset().await;
    let epoch = chrono::DateTime::parse_from_rfc3339(at)
        .map(|time| time.timestamp())
        .unwrap_or_default();
    let ok = |body: Value| ResponseTemplate::new(200).set_body_json(body);
    match case.kind {
        ProviderKind::HubSpot => {
            Mock::given(method("POST"))
                .and(path("/crm/v3/objects/contacts/search"))
                .respond_with(ok(json!({"total": 1, "results": [{"id": case.external_id,
                    "properties": {"email": value, "firstname": "Ada", "lastmodifieddate": at},
                    "updatedAt": at, "archived": false}]})))
                .mount(server)
                .await;
            Mock::given(method("GET"))
                .and(path("/crm/v3/objects/contacts"))
                .respond_with(ok(json!({"results": []})))
                .mount(server)
                .await;
        }
        ProviderKind::Salesforce => {
            Mock::given(method("GET"))
                .and(path("/services/data/v62.0/queryAll"))
                .respond_with(ok(json!({"totalSize": 1, "done": true, "records": [{
                    "attributes": {"type": "Contact", "url": format!("/services/data/v62.0/sobjects/Contact/{}", case.external_id)},
                    "Id": case.external_id, "Name": "Ada Lovelace", "IsDeleted": false,
                    "SystemModstamp": at, "LastModifiedDate": at, "FirstName": "Ada",
                    "LastName": "Lovelace", "Email": value, "Phone": null, "AccountId": null}]})))
                .mount(server)
                .await;
            Mock::given(method("GET"))
                .and(path("/services/data/v62.0/sobjects/Contact/deleted/"))
                .respond_with(ok(json!({"deletedRecords": [],
                    "earliestDateAvailable": "2026-10-20T00:00:00.000+0000",
                    "latestDateCovered": at})))
                .mount(server)
                .await;
        }
        ProviderKind::Stripe => {
            let customer = json!({"id": case.external_id, "object": "customer", "created": 1_790_000_000,
                "email": "ada@example.com", "name": value, "phone": null, "description": null,
                "livemode": false, "metadata": {}});
            Mock::given(method("GET"))
                .and(path("/v1/customers"))
                .respond_with(ok(json!({"object": "list", "url": "/v1/customers", "has_more": false, "data": [customer.clone()]})))
                .mount(server)
                .await;
            let events = if second {
                vec![
                    json!({"id": "evt_1", "object": "event", "api_version": providers::STRIPE_API_VERSION,
                    "created": epoch, "type": "customer.updated", "livemode": false, "pending_webhooks": 0,
                    "request": {"id": null, "idempotency_key": null},
                    "data": {"object": customer, "previous_attributes": {"name": "Ada Lovelace"}}}),
                ]
            } else {
                Vec::new()
            };
            Mock::given(method("GET"))
                .and(path("/v1/events"))
                .respond_with(ok(json!({"object": "list", "url": "/v1/events", "has_more": false, "data": events})))
                .mount(server)
                .await;
        }
        ProviderKind::Zendesk => {
            Mock::given(method("GET"))
                .and(path("/api/v2/incremental/tickets/cursor.json"))
                .respond_with(ok(json!({"tickets": [{"id": 35436, "url": "https://acme.zendesk.com/api/v2/tickets/35436.json",
                    "subject": value, "status": "open", "priority": "high", "requester_id": 20978392,
                    "updated_at": at, "created_at": "2026-10-01T00:00:00Z"}],
                    "after_url": null, "after_cursor": format!("cursor-{epoch}"), "before_cursor": null, "end_of_stream": true})))
                .mount(server)
                .await;
        }
        ProviderKind::Intercom => {
            Mock::given(method("POST"))
                .and(path("/contacts/search"))
                .respond_with(ok(json!({"type": "list", "total_count": 1, "data": [{
                    "type": "contact", "id": case.external_id, "role": "user", "email": "ada@example.com",
                    "name": value, "phone": null, "updated_at": epoch, "created_at": 1_790_000_000}],
                    "pages": {"type": "pages", "page": 1, "per_page": 150, "total_pages": 1}})))
                .mount(server)
                .await;
        }
        ProviderKind::Gmail => {
            Mock::given(method("GET"))
                .and(path("/gmail/v1/users/me/profile"))
                .respond_with(ok(json!({"emailAddress": "ada@example.com", "messagesTotal": 1, "historyId": "1000"})))
                .mount(server)
                .await;
            Mock::given(method("GET"))
                .and(path("/gmail/v1/users/me/messages"))
                .respond_with(ok(json!({"messages": [{"id": case.external_id, "threadId": case.external_id}], "resultSizeEstimate": 1})))
                .mount(server)
                .await;
            Mock::given(method("GET"))
                .and(path(format!("/gmail/v1/users/me/messages/{}", case.external_id)))
                .respond_with(ok(json!({"id": case.external_id, "threadId": case.external_id,
                    "labelIds": ["INBOX"], "snippet": "Are we still on?", "internalDate": (epoch * 1000).to_string(),
                    "payload": {"mimeType": "text/plain", "filename": "", "headers": [{"name": "Subject", "value": value}],
                        "body": {"size": 0}}})))
                .mount(server)
                .await;
            let history = if second {
                json!({"history": [{"id": "1001", "labelsAdded": [{"message": {"id": case.external_id, "threadId": case.external_id}, "labelIds": ["STARRED"]}]}], "historyId": "1002"})
            } else {
                json!({"historyId": "1000"})
            };
            Mock::given(method("GET"))
                .and(path("/gmail/v1/users/me/history"))
                .respond_with(ok(history))
                .mount(server)
                .await;
        }
    }
}

struct World {
    test_db: TestDb,
    clock: Arc<ManualClock>,
    connection_id: uuid::Uuid,
}

impl World {
    async fn new(backend: Backend, kind: ProviderKind) -> anyhow::Result<Self> {
        let test_db = TestDb::migrated(backend).await?;
        let (_, connection_id) = active_connection(&test_db, kind.slug()).await?;
        Ok(Self {
            test_db,
            clock: ManualClock::new(),
            connection_id,
        })
    }

    async fn sync(
        &self,
        kind: ProviderKind,
        object: &str,
        server: &MockServer,
    ) -> anyhow::Result<integrations::SyncReport> {
        let spec = ProviderSpec::for_provider(kind).with_api_base_url(&server.uri())?;
        let http = HttpCore::new(
            kind,
            RetryPolicy::default(),
            self.clock.clone(),
            Arc::new(NoWait),
        )?;
        let client = ProviderClient::new(spec, http, SecretString::from("token"));
        let engine = SyncEngine::new(self.test_db.db.clone(), self.clock.clone(), "worker");
        let claim = engine
            .claim(self.connection_id, object)
            .await?
            .ok_or_else(|| anyhow::anyhow!("not claimed"))?;
        Ok(engine.run(claim, &client, &ReadOptions::default()).await?)
    }

    async fn value(&self, key: &str) -> anyhow::Result<Value> {
        use sea_orm::ConnectionTrait as _;
        let row = self
            .test_db
            .db
            .query_one_raw(self.test_db.statement(
                "SELECT v.value FROM entity_attribute_values v
                 JOIN attribute_definitions a ON a.id = v.attribute_id WHERE a.key = $1",
                vec![v(key)],
            ))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no value of {key}"))?;
        Ok(row.try_get_by_index::<Value>(0)?)
    }
}

#[tokio::test]
async fn clearing_an_override_restores_the_providers_latest_value_for_all_six() -> anyhow::Result<()>
{
    for backend in [Backend::Postgres, Backend::Sqlite] {
        for case in cases() {
            let label = format!("{backend:?} {}", case.kind);
            let world = World::new(backend, case.kind).await?;
            let server = MockServer::start().await;
            mount(
                &server,
                &case,
                &case.first_value,
                "2026-11-01T10:00:00Z",
                false,
            )
            .await;
            let first = world.sync(case.kind, case.object, &server).await?;
            assert_eq!(first.created, 1, "{label}");
            assert_eq!(world.value(case.key).await?, case.first_value, "{label}");

            let entity_id: uuid::Uuid = {
                use sea_orm::{EntityTrait as _, QuerySelect as _};
                entity::entities::Entity::find()
                    .select_only()
                    .column(entity::entities::Column::Id)
                    .into_tuple()
                    .one(&world.test_db.db)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("{label}: no entity"))?
            };
            let editor = AttributeEditor::new(world.test_db.db.clone(), world.clock.clone());
            editor
                .update_attribute(entity_id, case.key, json!("the user's word"), 1)
                .await?;

            // Later, the provider changes the value: the override holds, the value is kept.
            world.clock.advance(chrono::Duration::minutes(10));
            mount(
                &server,
                &case,
                &case.provider_value,
                "2026-11-22T12:05:00Z",
                true,
            )
            .await;
            let second = world.sync(case.kind, case.object, &server).await?;
            assert_eq!(second.conflicts, 1, "{label}: {second:?}");
            assert_eq!(
                world.value(case.key).await?,
                json!("the user's word"),
                "{label}"
            );
            let workspace_conflicts = {
                let workspace: uuid::Uuid = {
                    use sea_orm::{EntityTrait as _, QuerySelect as _};
                    entity::workspaces::Entity::find()
                        .select_only()
                        .column(entity::workspaces::Column::Id)
                        .into_tuple()
                        .one(&world.test_db.db)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no workspace"))?
                };
                integrations::conflicts(&world.test_db.db, workspace, 10, None).await?
            };
            assert_eq!(workspace_conflicts.len(), 1, "{label}");
            assert_eq!(workspace_conflicts[0].key, case.key);
            assert_eq!(
                workspace_conflicts[0].provider_value, case.provider_value,
                "{label}"
            );
            assert_eq!(workspace_conflicts[0].user_value, json!("the user's word"));

            // Clearing the override restores the provider's value at once, with no call.
            let calls_before = server.received_requests().await.unwrap_or_default().len();
            editor.clear_override(entity_id, case.key, 2).await?;
            assert_eq!(
                server.received_requests().await.unwrap_or_default().len(),
                calls_before,
                "{label}: no provider call"
            );
            assert_eq!(world.value(case.key).await?, case.provider_value, "{label}");
            assert_eq!(
                world
                    .test_db
                    .count(
                        "SELECT count(*) FROM entity_attribute_provenance WHERE source_type = 'INTEGRATION'
                         AND NOT override_by_user AND source_integration_id IS NOT NULL",
                        vec![],
                    )
                    .await?,
                world
                    .test_db
                    .count("SELECT count(*) FROM entity_attribute_provenance", vec![])
                    .await?,
                "{label}: every attribute has the integration's provenance again"
            );
        }
    }
    Ok(())
}
