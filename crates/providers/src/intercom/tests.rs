//! Intercom's reader against a mock: the contact search chain to its end, resuming, the next
//! sync's day-aligned overlap and its client-side filter, conversations, the companies scroll
//! (and its restart when the scroll expired), and bad answers.

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::test_support::{api_client, read_all, test_data};
use crate::{Cursor, Page, ProviderError, ProviderKind, ReadOptions};

const APP_ID: &str = "this_is_an_id_that_should_be_at_least_40";
const PAGE2_AFTER: &str = "WzE3OTUxMDAwMDAwMDAsIjY3NjJmMGRkIiwyXQ==";
const SCROLL: &str = "25b649f7-4d33-4ef6-88f5-60e5b8244309";
/// 2026-11-20T00:00:00Z.
const NOV_20: i64 = 1_795_132_800;

fn body(file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        test_data(ProviderKind::Intercom, &format!("api/{file}")),
        "application/json",
    )
}

fn error_body(status: u16, file: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        test_data(ProviderKind::Intercom, &format!("api/{file}")),
        "application/json",
    )
}

fn state(cursor: &Cursor) -> Value {
    serde_json::from_str(cursor.as_str()).unwrap_or_default()
}

fn ids(pages: &[Page]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page.records.iter())
        .map(|record| record.external_id.clone())
        .collect()
}

/// Matches a search request without `pagination.starting_after` (a new pass).
fn first_search_page(request: &Request) -> bool {
    serde_json::from_slice::<Value>(&request.body)
        .is_ok_and(|body| body.pointer("/pagination/starting_after").is_none())
}

async fn mount_contacts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(body_partial_json(json!({
            "query": {"field": "updated_at", "operator": ">", "value": 0},
            "pagination": {"per_page": 150},
            "sort": {"field": "updated_at", "order": "ascending"}
        })))
        .and(first_search_page)
        .respond_with(body("contacts_search_page1.json"))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(body_partial_json(json!({
            "query": {"field": "updated_at", "operator": ">", "value": 0},
            "pagination": {"per_page": 150, "starting_after": PAGE2_AFTER}
        })))
        .respond_with(body("contacts_search_page2.json"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_first_sync_reads_the_contact_search_chain_to_its_end() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_contacts(&server).await;
    let client = api_client(ProviderKind::Intercom, &server.uri()).with_account_id(APP_ID);
    let (pages, cursor) = read_all(&client, "contacts", None).await?;
    assert_eq!(
        ids(&pages),
        vec![
            "6762f0dd1bb69f9f2193bb83",
            "6762f0dd1bb69f9f2193bb84",
            "6762f0dd1bb69f9f2193bb85"
        ]
    );
    assert_eq!(
        pages.iter().map(|page| page.has_more).collect::<Vec<_>>(),
        vec![true, false]
    );
    assert_eq!(state(&cursor), json!({"since": 1_795_200_000}));
    let francoise = &pages[0].records[0];
    assert!(!francoise.deleted);
    assert_eq!(
        francoise.fields.get("name"),
        Some(&json!("Françoise Lefèvre"))
    );
    assert_eq!(
        francoise.fields.get("phone"),
        Some(&Value::Null),
        "nulls are kept"
    );
    assert_eq!(
        francoise
            .fields
            .get("location")
            .and_then(|location| location.get("region")),
        Some(&json!("Île-de-France")),
        "nested objects stay as the provider sent them"
    );
    assert_eq!(
        francoise.updated_at.map(|time| time.timestamp()),
        Some(1_795_000_000)
    );
    assert_eq!(
        francoise.source_url.as_deref(),
        Some(
            "https://app.intercom.com/a/apps/this_is_an_id_that_should_be_at_least_40/users/6762f0dd1bb69f9f2193bb83"
        )
    );
    let lead = &pages[0].records[1];
    assert_eq!(lead.fields.get("name"), Some(&json!("李小龙")));
    assert!(!lead.fields.contains_key("phone"), "missing stays missing");
    Ok(())
}

#[tokio::test]
async fn a_stored_cursor_resumes_at_the_next_page() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_contacts(&server).await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    let first = client
        .read_page("contacts", None, &ReadOptions::default())
        .await?;
    let stored = Cursor::from_stored(first.cursor.as_str().to_owned());
    assert_eq!(
        state(&stored),
        json!({"starting_after": PAGE2_AFTER, "pass_max": 1_795_100_000})
    );
    let second = client
        .read_page("contacts", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        ids(std::slice::from_ref(&second)),
        vec!["6762f0dd1bb69f9f2193bb85"]
    );
    assert_eq!(second.records[0].source_url, None, "no app id, no link");
    Ok(())
}

#[tokio::test]
async fn the_next_sync_searches_from_the_day_before_and_keeps_only_later_changes()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    // 2026-11-20T15:30:00Z.
    let watermark = NOV_20 + 15 * 3600 + 30 * 60;
    Mock::given(method("POST"))
        .and(path("/contacts/search"))
        .and(body_partial_json(json!({
            "query": {"field": "updated_at", "operator": ">", "value": NOV_20 - 86_400},
            "sort": {"field": "updated_at", "order": "ascending"}
        })))
        .and(first_search_page)
        .respond_with(body("contacts_search_overlap.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    let stored = Cursor::from_stored(format!(r#"{{"since":{watermark}}}"#));
    let (pages, cursor) = read_all(&client, "contacts", Some(stored)).await?;
    assert_eq!(
        ids(&pages),
        vec!["c-after"],
        "records at or before the watermark are dropped"
    );
    assert_eq!(
        pages[0].records[0].fields.get("name"),
        Some(&json!("Después"))
    );
    assert_eq!(state(&cursor), json!({"since": 1_795_190_000}));
    Ok(())
}

#[tokio::test]
async fn a_pass_with_nothing_new_keeps_the_watermark() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/conversations/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "type": "conversation.list", "conversations": [], "total_count": 0,
            "pages": {"type": "pages", "page": 1, "per_page": 150, "total_pages": 0}
        })))
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    let stored = Cursor::from_stored(r#"{"since":1795188600}"#);
    let (_, cursor) = read_all(&client, "conversations", Some(stored)).await?;
    assert_eq!(state(&cursor), json!({"since": 1_795_188_600}));
    Ok(())
}

#[tokio::test]
async fn conversations_are_read_from_their_own_search() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/conversations/search"))
        .and(body_partial_json(json!({
            "query": {"field": "updated_at", "operator": ">", "value": 0},
            "pagination": {"per_page": 20}
        })))
        .respond_with(body("conversations_search.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri()).with_account_id(APP_ID);
    let options = ReadOptions {
        page_size: Some(20),
        ..ReadOptions::default()
    };
    let page = client.read_page("conversations", None, &options).await?;
    assert!(!page.has_more);
    let conversation = &page.records[0];
    assert_eq!(conversation.external_id, "1295");
    assert_eq!(conversation.object_type, "conversations");
    assert_eq!(
        conversation.fields.get("title"),
        Some(&json!("Réclamation — colis perdu"))
    );
    assert_eq!(conversation.fields.get("waiting_since"), Some(&Value::Null));
    assert!(conversation.source_url.is_some());
    Ok(())
}

async fn mount_scroll(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param_is_missing("scroll_param"))
        .respond_with(body("companies_scroll_page1.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param("scroll_param", SCROLL))
        .respond_with(body("companies_scroll_end.json"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_companies_scroll_reads_to_an_empty_page_and_the_next_pass_keeps_only_changes()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_scroll(&server).await;
    let client = api_client(ProviderKind::Intercom, &server.uri()).with_account_id(APP_ID);
    let (pages, cursor) = read_all(&client, "companies", None).await?;
    assert_eq!(
        ids(&pages),
        vec!["531ee472cce572a6ec000006", "531ee472cce572a6ec000007"]
    );
    let mueller = &pages[0].records[0];
    assert_eq!(
        mueller.fields.get("name"),
        Some(&json!("Müller & Söhne GmbH"))
    );
    assert_eq!(mueller.fields.get("size"), Some(&Value::Null));
    assert_eq!(
        mueller.source_url.as_deref(),
        Some(
            "https://app.intercom.com/a/apps/this_is_an_id_that_should_be_at_least_40/companies/531ee472cce572a6ec000006"
        )
    );
    assert_eq!(state(&cursor), json!({"since": 1_795_000_000}));

    // The scroll has no filter: the next pass reads everything and keeps nothing unchanged.
    let (pages, after) = read_all(&client, "companies", Some(cursor)).await?;
    assert!(ids(&pages).is_empty(), "{:?}", ids(&pages));
    assert_eq!(state(&after), json!({"since": 1_795_000_000}));
    Ok(())
}

#[tokio::test]
async fn an_expired_scroll_starts_over_instead_of_failing() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_scroll(&server).await;
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .and(query_param("scroll_param", "expired-scroll"))
        .respond_with(error_body(404, "scroll_not_found.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    let stored = Cursor::from_stored(
        r#"{"since":1784000000,"scroll_param":"expired-scroll","pass_max":1784500000}"#,
    );
    let page = client
        .read_page("companies", Some(&stored), &ReadOptions::default())
        .await?;
    assert!(page.has_more);
    assert_eq!(
        ids(std::slice::from_ref(&page)),
        vec!["531ee472cce572a6ec000006", "531ee472cce572a6ec000007"]
    );
    assert_eq!(
        state(&page.cursor),
        json!({"since": 1_784_000_000, "scroll_param": SCROLL, "pass_max": 1_795_000_000})
    );
    Ok(())
}

#[tokio::test]
async fn a_scroll_held_elsewhere_is_a_wait_not_a_failure() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/companies/scroll"))
        .respond_with(error_body(400, "scroll_exists.json"))
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    let error = client
        .read_page("companies", None, &ReadOptions::default())
        .await
        .expect_err("another scroll is open");
    assert_eq!(
        error,
        ProviderError::RateLimited {
            provider: ProviderKind::Intercom,
            wait: std::time::Duration::from_secs(60)
        }
    );
}

async fn error_for(object_type: &str, answer: ResponseTemplate) -> ProviderError {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(answer)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Intercom, &server.uri());
    match client
        .read_page(object_type, None, &ReadOptions::default())
        .await
    {
        Ok(page) => panic!("a bad answer was read as {page:?}"),
        Err(error) => error,
    }
}

fn is_intercom_decode(error: &ProviderError, needle: &str) -> bool {
    matches!(error, ProviderError::Decode { provider: ProviderKind::Intercom, reason, .. } if reason.contains(needle))
}

#[tokio::test]
async fn bad_answers_are_decode_errors_naming_intercom() {
    let malformed = error_for(
        "contacts",
        ResponseTemplate::new(200).set_body_string(r#"{"type":"list","data":[{"#),
    )
    .await;
    assert!(is_intercom_decode(&malformed, ""), "{malformed}");
    assert!(malformed.to_string().starts_with("Intercom"), "{malformed}");

    let no_id = error_for(
        "contacts",
        ResponseTemplate::new(200).set_body_json(json!({
            "type": "list", "data": [{"type": "contact", "name": "Ünknown", "updated_at": 1795000000}],
            "pages": {"type": "pages", "page": 1}
        })),
    )
    .await;
    assert!(is_intercom_decode(&no_id, "id"), "{no_id}");

    let wrong_key = error_for(
        "conversations",
        ResponseTemplate::new(200).set_body_json(json!({"type": "list", "data": []})),
    )
    .await;
    assert!(
        is_intercom_decode(&wrong_key, "conversations"),
        "{wrong_key}"
    );

    let scroll_without_data = error_for(
        "companies",
        ResponseTemplate::new(200).set_body_json(json!({"type": "list", "scroll_param": SCROLL})),
    )
    .await;
    assert!(
        is_intercom_decode(&scroll_without_data, "data"),
        "{scroll_without_data}"
    );
}
