//! HubSpot's reader against a mock: the search chain to its end, deletes from the archived list,
//! resuming from a stored cursor, the next sync's watermark, and the 10,000-result window.

use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{api_client, test_data};
use crate::{Cursor, Page, ProviderError, ProviderKind, ReadOptions};

fn body(file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        test_data(ProviderKind::HubSpot, &format!("api/{file}")),
        "application/json",
    )
}

async fn mount_contacts(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"after": "2"})))
        .respond_with(body("contacts_search_page2.json"))
        .mount(server)
        .await;
    Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [], "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]})))
        .respond_with(body("contacts_search_page1.json")).mount(server).await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("archived", "true"))
        .respond_with(body("contacts_archived.json"))
        .mount(server)
        .await;
}

async fn read_all(
    server: &MockServer,
    cursor: Option<Cursor>,
) -> Result<(Vec<Page>, Cursor), ProviderError> {
    let client = api_client(ProviderKind::HubSpot, &server.uri()).with_account_id("62515");
    crate::test_support::read_all(&client, "contacts", cursor).await
}

#[tokio::test]
async fn a_first_sync_reads_the_search_chain_then_archived_records_as_deletes()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_contacts(&server).await;
    let (pages, _) = read_all(&server, None).await?;
    let records: Vec<_> = pages.iter().flat_map(|page| page.records.iter()).collect();
    let ids: Vec<_> = records
        .iter()
        .map(|record| (record.external_id.as_str(), record.deleted))
        .collect();
    assert_eq!(
        ids,
        vec![("101", false), ("102", false), ("103", false), ("90", true)]
    );
    let jose = records[2];
    assert_eq!(jose.fields.get("firstname"), Some(&json!("José Müller")));
    assert_eq!(jose.fields.get("lastname"), Some(&json!("山田")));
    assert_eq!(
        jose.fields.get("email"),
        Some(&serde_json::Value::Null),
        "nulls are kept"
    );
    assert!(!jose.fields.contains_key("phone"), "missing stays missing");
    assert_eq!(
        jose.source_url.as_deref(),
        Some("https://app.hubspot.com/contacts/62515/record/0-1/103")
    );
    assert_eq!(
        jose.updated_at.map(|time| time.to_rfc3339()),
        Some("2026-11-03T08:15:00+00:00".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn a_stored_cursor_resumes_at_the_next_page() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_contacts(&server).await;
    let client = api_client(ProviderKind::HubSpot, &server.uri());
    let first = client
        .read_page("contacts", None, &ReadOptions::default())
        .await?;
    // As the engine does: store the text, read it back later in another process.
    let stored = Cursor::from_stored(first.cursor.as_str().to_owned());
    let second = client
        .read_page("contacts", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        second
            .records
            .iter()
            .map(|record| record.external_id.as_str())
            .collect::<Vec<_>>(),
        vec!["103"]
    );
    Ok(())
}

#[tokio::test]
async fn the_next_sync_searches_from_the_newest_modification_seen() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_contacts(&server).await;
    let (_, cursor) = read_all(&server, None).await?;
    let newest_ms = chrono::DateTime::parse_from_rfc3339("2026-11-03T08:15:00Z")
        .map(|time| time.timestamp_millis())
        .unwrap_or_default();
    let incremental = MockServer::start().await;
    Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": newest_ms.to_string()}]}]})))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"total":0,"results":[]}"#))
        .expect(1).mount(&incremental).await;
    // Archived records already reported are not reported again.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(body("contacts_archived.json"))
        .mount(&incremental)
        .await;
    let (pages, _) = read_all(&incremental, Some(cursor)).await?;
    assert!(
        pages.iter().all(|page| page.records.is_empty()),
        "{pages:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_window_that_would_pass_ten_thousand_results_restarts_at_the_newest_value()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let page = json!({
        "total": 25000,
        "results": [{"id": "7", "properties": {"lastmodifieddate": "2026-11-05T00:00:00.000Z"}, "updatedAt": "2026-11-05T00:00:00.000Z"}],
        "paging": {"next": {"after": "9900"}}
    });
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page))
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::HubSpot, &server.uri());
    let stored = Cursor::from_stored(r#"{"since_ms":1762300800000,"after":"9700"}"#);
    let next = client
        .read_page("contacts", Some(&stored), &ReadOptions::default())
        .await?;
    let state: serde_json::Value = serde_json::from_str(next.cursor.as_str()).unwrap_or_default();
    let newest_ms = chrono::DateTime::parse_from_rfc3339("2026-11-05T00:00:00Z")
        .map(|time| time.timestamp_millis())
        .unwrap_or_default();
    assert_eq!(state["since_ms"], json!(newest_ms));
    assert_eq!(
        state["after"],
        serde_json::Value::Null,
        "the new window starts without an offset"
    );
    assert!(next.has_more);
    Ok(())
}

/// 10,450 contacts share one millisecond (a bulk import): the window that saturates on it reads
/// that millisecond by object id, query after query, then moves past it. Nothing is skipped.
#[tokio::test]
async fn a_millisecond_holding_more_than_the_cap_is_read_by_object_id() -> Result<(), ProviderError>
{
    let server = MockServer::start().await;
    // 2026-11-05T00:00:00Z.
    let ms = 1_793_836_800_000_i64;
    let at = "2026-11-05T00:00:00.000Z";
    let contact = |id: u64| json!({"id": id.to_string(), "properties": {"lastmodifieddate": at, "hs_object_id": id.to_string()}, "updatedAt": at});
    let eq = json!({"propertyName": "lastmodifieddate", "operator": "EQ", "value": ms.to_string()});
    let by_id = json!([{"propertyName": "hs_object_id", "direction": "ASCENDING"}]);
    // The watermark window: page 50 of 200, all in that millisecond, and more behind the cap.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": ms.to_string()}
        ]}], "after": "9800"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total": 10450, "results": [contact(9_901), contact(9_950)], "paging": {"next": {"after": "10000"}}
        })))
        .mount(&server)
        .await;
    // (Mounted first: a partial match of the filter list would also take the next query.)
    // By id, after 10,000: the remaining 450, and the end.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [
            eq.clone(),
            {"propertyName": "hs_object_id", "operator": "GT", "value": "10000"}
        ]}], "sorts": by_id.clone()})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total": 450, "results": [contact(10_001), contact(10_450)]
        })))
        .expect(1)
        .mount(&server)
        .await;
    // By id, from the lowest: its last page before the cap ends at id 10,000.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [eq]}], "sorts": by_id})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "total": 10450, "results": [contact(9_999), contact(10_000)], "paging": {"next": {"after": "9900"}}
        })))
        .mount(&server)
        .await;
    // Then the window continues one millisecond later.
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(body_partial_json(json!({"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": (ms + 1).to_string()}
        ]}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"total": 0, "results": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&server)
        .await;
    let stored = Cursor::from_stored(format!(r#"{{"since_ms":{ms},"after":"9800"}}"#));
    let (pages, _) = read_all(&server, Some(stored)).await?;
    let ids: Vec<&str> = pages
        .iter()
        .flat_map(|page| page.records.iter())
        .map(|record| record.external_id.as_str())
        .collect();
    assert_eq!(ids, vec!["9901", "9950", "9999", "10000", "10001", "10450"]);
    server.verify().await;

    // An object id that is not a number cannot be tie-broken: a typed error, not a skip.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [{"id": "abc", "properties": {"lastmodifieddate": at}}]
        })))
        .mount(&server)
        .await;
    let tied = Cursor::from_stored(format!(r#"{{"since_ms":{ms},"tie_ms":{ms}}}"#));
    let outcome = api_client(ProviderKind::HubSpot, &server.uri())
        .read_page("contacts", Some(&tied), &ReadOptions::default())
        .await;
    assert!(
        matches!(
            outcome,
            Err(ProviderError::Decode {
                provider: ProviderKind::HubSpot,
                ..
            })
        ),
        "{outcome:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_input_is_a_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(r#"{"results": [{"properties": {}}]}"#),
        )
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::HubSpot, &server.uri());
    let error = client
        .read_page("contacts", None, &ReadOptions::default())
        .await
        .expect_err("no id");
    assert!(
        matches!(&error, ProviderError::Decode { reason, .. } if reason.contains("id")),
        "{error}"
    );
    let error = client
        .read_page("tickets", None, &ReadOptions::default())
        .await
        .expect_err("not a HubSpot object");
    assert!(matches!(error, ProviderError::Misconfigured { .. }));
    let error = client
        .read_page(
            "contacts",
            Some(&Cursor::from_stored("{not json")),
            &ReadOptions::default(),
        )
        .await
        .expect_err("bad cursor");
    assert!(matches!(error, ProviderError::Decode { .. }));
}
