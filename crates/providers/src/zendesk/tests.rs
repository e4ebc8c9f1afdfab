//! Zendesk's reader against a mock: the cursor-based ticket export to its end (keeping the last
//! `after_cursor`), resuming, the next sync, users who are deactivated, the time-based
//! organization export, and bad answers.

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{api_client, read_all, test_data};
use crate::{Cursor, Page, ProviderError, ProviderKind, ReadOptions};

const TICKETS_PATH: &str = "/api/v2/incremental/tickets/cursor.json";
const PAGE1_CURSOR: &str = "MTc5NTE3MjQwMC4wfHwzNTQzN3w=";
const PAGE2_CURSOR: &str = "MTc5NTI0OTgwMC4wfHwzNTQzOHw=";

fn body(file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        test_data(ProviderKind::Zendesk, &format!("api/{file}")),
        "application/json",
    )
}

fn state(cursor: &Cursor) -> Value {
    serde_json::from_str(cursor.as_str()).unwrap_or_default()
}

fn ids(pages: &[Page]) -> Vec<(String, bool)> {
    pages
        .iter()
        .flat_map(|page| page.records.iter())
        .map(|record| (record.external_id.clone(), record.deleted))
        .collect()
}

async fn mount_tickets(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(TICKETS_PATH))
        .and(query_param("start_time", "0"))
        .and(query_param("per_page", "1000"))
        .and(query_param_is_missing("cursor"))
        .respond_with(body("tickets_cursor_page1.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(TICKETS_PATH))
        .and(query_param("cursor", PAGE1_CURSOR))
        .and(query_param_is_missing("start_time"))
        .respond_with(body("tickets_cursor_page2.json"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_ticket_export_reads_to_the_end_of_stream_and_keeps_the_last_cursor()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_tickets(&server).await;
    let client = api_client(ProviderKind::Zendesk, &server.uri()).with_account_id("acme");
    let (pages, cursor) = read_all(&client, "tickets", None).await?;
    assert_eq!(
        ids(&pages),
        vec![
            ("35436".to_owned(), false),
            ("35437".to_owned(), true),
            ("35438".to_owned(), false),
        ],
        "a ticket with status `deleted` is a delete"
    );
    assert_eq!(
        pages.iter().map(|page| page.has_more).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert_eq!(state(&cursor), json!({"after_cursor": PAGE2_CURSOR}));

    let fire = &pages[0].records[0];
    assert_eq!(fire.object_type, "tickets");
    assert_eq!(
        fire.fields.get("subject"),
        Some(&json!("Imprimante en feu — ça brûle !"))
    );
    assert_eq!(
        fire.fields.get("description"),
        Some(&json!("Der Drucker brennt. プリンターが燃えています。"))
    );
    assert_eq!(
        fire.fields.get("assignee_id"),
        Some(&Value::Null),
        "nulls are kept"
    );
    assert_eq!(
        fire.fields.get("tags"),
        Some(&json!(["enterprise", "größe"]))
    );
    assert_eq!(
        fire.updated_at.map(|time| time.to_rfc3339()),
        Some("2026-11-20T10:15:00+00:00".to_owned())
    );
    assert_eq!(
        fire.source_url.as_deref(),
        Some("https://acme.zendesk.com/agent/tickets/35436")
    );
    let russian = &pages[1].records[0];
    assert!(
        !russian.fields.contains_key("assignee_id"),
        "missing stays missing"
    );
    assert_eq!(
        russian.fields.get("subject"),
        Some(&json!("Заказ не пришёл"))
    );
    Ok(())
}

#[tokio::test]
async fn a_stored_cursor_resumes_at_the_next_page() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_tickets(&server).await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    let first = client
        .read_page("tickets", None, &ReadOptions::default())
        .await?;
    let stored = Cursor::from_stored(first.cursor.as_str().to_owned());
    assert_eq!(state(&stored), json!({"after_cursor": PAGE1_CURSOR}));
    let second = client
        .read_page("tickets", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        ids(std::slice::from_ref(&second)),
        vec![("35438".to_owned(), false)]
    );
    assert_eq!(
        second.records[0].source_url, None,
        "without a Zendesk host or an account id there is no link"
    );
    Ok(())
}

#[tokio::test]
async fn the_next_sync_continues_from_the_kept_cursor_and_an_empty_end_keeps_it()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_tickets(&server).await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    let (_, cursor) = read_all(&client, "tickets", None).await?;

    let next = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(TICKETS_PATH))
        .and(query_param("cursor", PAGE2_CURSOR))
        .and(query_param_is_missing("start_time"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "tickets": [], "after_url": null, "after_cursor": null,
            "before_url": null, "before_cursor": null, "end_of_stream": true
        })))
        .expect(1)
        .mount(&next)
        .await;
    let client = api_client(ProviderKind::Zendesk, &next.uri());
    let (pages, after) = read_all(&client, "tickets", Some(cursor)).await?;
    assert!(pages.iter().all(|page| page.records.is_empty()));
    assert_eq!(state(&after), json!({"after_cursor": PAGE2_CURSOR}));
    Ok(())
}

#[tokio::test]
async fn a_deactivated_user_is_not_a_delete() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/incremental/users/cursor.json"))
        .and(query_param("start_time", "0"))
        .and(query_param("per_page", "250"))
        .respond_with(body("users_cursor.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri()).with_account_id("acme");
    let options = ReadOptions {
        page_size: Some(250),
        ..ReadOptions::default()
    };
    let page = client.read_page("users", None, &options).await?;
    assert!(!page.has_more);
    let renee = &page.records[0];
    assert!(!renee.deleted);
    assert_eq!(renee.fields.get("active"), Some(&json!(false)));
    assert_eq!(renee.fields.get("name"), Some(&json!("Renée Ångström")));
    assert_eq!(renee.fields.get("phone"), Some(&Value::Null));
    assert_eq!(
        renee.source_url.as_deref(),
        Some("https://acme.zendesk.com/agent/users/35436")
    );
    assert_eq!(
        state(&page.cursor),
        json!({"after_cursor": "MTc5NTA4MjczMi4wfHwzNTQzNnw="})
    );
    Ok(())
}

#[tokio::test]
async fn organizations_page_by_end_time_and_report_deleted_at_as_deletes()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let export = "/api/v2/incremental/organizations.json";
    Mock::given(method("GET"))
        .and(path(export))
        .and(query_param("start_time", "0"))
        .respond_with(body("organizations_page1.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(export))
        .and(query_param("start_time", "1794474000"))
        .respond_with(body("organizations_page2.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri()).with_account_id("acme");
    let (pages, cursor) = read_all(&client, "organizations", None).await?;
    assert_eq!(
        ids(&pages),
        vec![
            ("509974".to_owned(), false),
            ("509975".to_owned(), true),
            ("509976".to_owned(), false),
        ]
    );
    let sge = &pages[0].records[0];
    assert_eq!(
        sge.fields.get("name"),
        Some(&json!("Société Générale d'Électricité"))
    );
    assert_eq!(sge.fields.get("deleted_at"), Some(&Value::Null));
    assert_eq!(
        sge.source_url.as_deref(),
        Some("https://acme.zendesk.com/agent/organizations/509974")
    );
    assert_eq!(state(&cursor), json!({"start_time": 1_795_240_800}));

    // The next sync asks only for what changed after the last page's end time.
    let next = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(export))
        .and(query_param("start_time", "1795240800"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "organizations": [], "next_page": null, "count": 0,
            "end_time": null, "end_of_stream": true
        })))
        .expect(1)
        .mount(&next)
        .await;
    let client = api_client(ProviderKind::Zendesk, &next.uri());
    let (_, after) = read_all(&client, "organizations", Some(cursor)).await?;
    assert_eq!(state(&after), json!({"start_time": 1_795_240_800}));
    Ok(())
}

async fn error_for(object_type: &str, answer: ResponseTemplate) -> ProviderError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Zendesk, &server.uri());
    match client
        .read_page(object_type, None, &ReadOptions::default())
        .await
    {
        Ok(page) => panic!("a bad answer was read as {page:?}"),
        Err(error) => error,
    }
}

fn is_zendesk_decode(error: &ProviderError, needle: &str) -> bool {
    matches!(error, ProviderError::Decode { provider: ProviderKind::Zendesk, reason, .. } if reason.contains(needle))
}

#[tokio::test]
async fn bad_answers_are_decode_errors_naming_zendesk() {
    let malformed = error_for(
        "tickets",
        ResponseTemplate::new(200).set_body_string(r#"{"tickets": [{"id": 1"#),
    )
    .await;
    assert!(is_zendesk_decode(&malformed, ""), "{malformed}");
    assert!(malformed.to_string().starts_with("Zendesk"), "{malformed}");

    let no_id = error_for(
        "tickets",
        ResponseTemplate::new(200).set_body_json(json!({
            "tickets": [{"subject": "Ünïcödé", "status": "open"}],
            "after_cursor": "x", "end_of_stream": true
        })),
    )
    .await;
    assert!(is_zendesk_decode(&no_id, "id"), "{no_id}");

    let wrong_key = error_for(
        "users",
        ResponseTemplate::new(200)
            .set_body_json(json!({"tickets": [], "after_cursor": "x", "end_of_stream": true})),
    )
    .await;
    assert!(is_zendesk_decode(&wrong_key, "users"), "{wrong_key}");

    let no_cursor = error_for(
        "tickets",
        ResponseTemplate::new(200)
            .set_body_json(json!({"tickets": [], "after_cursor": null, "end_of_stream": false})),
    )
    .await;
    assert!(is_zendesk_decode(&no_cursor, "after_cursor"), "{no_cursor}");

    let no_end = error_for(
        "organizations",
        ResponseTemplate::new(200).set_body_json(json!({"organizations": []})),
    )
    .await;
    assert!(is_zendesk_decode(&no_end, "end_of_stream"), "{no_end}");
}
