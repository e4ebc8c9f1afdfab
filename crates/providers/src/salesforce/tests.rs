//! Salesforce's reader against a mock: the `queryAll` chain to its end, deletes from `IsDeleted`,
//! resuming from a stored cursor, the next sync's watermark, restarts after an expired query
//! locator (including a batch of identical timestamps), quota errors and bad input.

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param, query_param_contains};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{api_client, test_data};
use crate::{Cursor, Page, ProviderError, ProviderKind, ReadOptions};

const QUERY_ALL: &str = "/services/data/v62.0/queryAll";
const LOCATOR: &str = "/services/data/v62.0/query/01gxx0000004ABCAAA-2";
const ACCOUNT_FIELDS: &str =
    "Id, Name, IsDeleted, SystemModstamp, LastModifiedDate, Website, Industry, Phone";

fn body(file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        test_data(ProviderKind::Salesforce, &format!("api/{file}")),
        "application/json",
    )
}

fn error(status: u16, file: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        test_data(ProviderKind::Salesforce, &format!("api/{file}")),
        "application/json",
    )
}

fn soql(filter: &str) -> String {
    format!("SELECT {ACCOUNT_FIELDS} FROM Account{filter} ORDER BY SystemModstamp ASC, Id ASC")
}

/// The first sync's query (no filter) and its second batch.
async fn mount_accounts(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param("q", soql("")))
        .respond_with(body("account_query_page1.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(LOCATOR))
        .respond_with(body("account_query_page2.json"))
        .mount(server)
        .await;
}

async fn read_all(
    server: &MockServer,
    cursor: Option<Cursor>,
) -> Result<(Vec<Page>, Cursor), ProviderError> {
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    crate::test_support::read_all(&client, "Account", cursor).await
}

fn ids(pages: &[Page]) -> Vec<(&str, bool)> {
    pages
        .iter()
        .flat_map(|page| page.records.iter())
        .map(|record| (record.external_id.as_str(), record.deleted))
        .collect()
}

fn state(cursor: &Cursor) -> Value {
    serde_json::from_str(cursor.as_str()).unwrap_or_default()
}

#[tokio::test]
async fn a_first_sync_follows_next_records_url_to_done_with_deletes() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_accounts(&server).await;
    let (pages, cursor) = read_all(&server, None).await?;
    assert_eq!(pages.len(), 2);
    assert_eq!(
        ids(&pages),
        vec![
            ("001xx000003DGb1AAG", false),
            ("001xx000003DGb2AAG", false),
            ("001xx000003DGb3AAG", false),
            ("001xx000003DGa9AAG", true),
        ]
    );
    let muller = &pages[0].records[1];
    assert_eq!(muller.object_type, "Account");
    assert_eq!(
        muller.fields.get("Name"),
        Some(&json!("Müller & Söhne GmbH — 東京支店"))
    );
    assert_eq!(
        muller.fields.get("Website"),
        Some(&Value::Null),
        "nulls are kept"
    );
    assert!(
        !muller.fields.contains_key("Phone"),
        "missing stays missing"
    );
    assert!(!muller.fields.contains_key("attributes"));
    assert_eq!(
        muller.fields.get("LastModifiedDate"),
        Some(&json!("2026-11-02T11:29:58.000+0000")),
        "values are kept as Salesforce sent them"
    );
    assert_eq!(
        muller.updated_at.map(|time| time.to_rfc3339()),
        Some("2026-11-02T11:30:00+00:00".to_owned())
    );
    assert_eq!(
        muller.source_url,
        Some(format!("{}/001xx000003DGb2AAG", server.uri()))
    );
    assert_eq!(
        state(&cursor),
        json!({
            "watermark": "2026-11-03T08:15:00Z",
            "next_records_url": null, "query_from": null, "query_after_id": null,
            "seen_stamp": null, "seen_id": null,
            // Deletes are read from when the first query began.
            "deleted_from": "2026-11-22T12:00:00Z", "deletes_due": false,
        })
    );
    Ok(())
}

#[tokio::test]
async fn a_stored_cursor_resumes_at_the_next_batch() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_accounts(&server).await;
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    let first = client
        .read_page("Account", None, &ReadOptions::default())
        .await?;
    assert!(first.has_more);
    assert_eq!(
        state(&first.cursor)["watermark"],
        Value::Null,
        "the watermark is committed only when the query is done"
    );
    let stored = Cursor::from_stored(first.cursor.as_str().to_owned());
    let second = client
        .read_page("Account", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        ids(std::slice::from_ref(&second)),
        vec![("001xx000003DGb3AAG", false), ("001xx000003DGa9AAG", true)]
    );
    assert!(!second.has_more);
    Ok(())
}

#[tokio::test]
async fn the_next_sync_asks_only_for_changes_since_the_newest_modstamp() -> Result<(), ProviderError>
{
    let server = MockServer::start().await;
    mount_accounts(&server).await;
    let (_, cursor) = read_all(&server, None).await?;

    let incremental = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param(
            "q",
            soql(" WHERE SystemModstamp >= 2026-11-03T08:15:00Z"),
        ))
        .respond_with(body("account_query_empty.json"))
        .expect(1)
        .mount(&incremental)
        .await;
    let (pages, next) = read_all(&incremental, Some(cursor.clone())).await?;
    assert!(pages.iter().all(|page| page.records.is_empty()));
    assert_eq!(next, cursor, "nothing new keeps the watermark");
    Ok(())
}

#[tokio::test]
async fn an_expired_query_locator_restarts_the_query_where_it_stopped() -> Result<(), ProviderError>
{
    for status in [400, 404] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(QUERY_ALL))
            .and(query_param("q", soql("")))
            .respond_with(body("account_query_page1.json"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(LOCATOR))
            .respond_with(error(status, "invalid_query_locator.json"))
            .expect(1)
            .mount(&server)
            .await;
        // Inclusive, so records sharing the last timestamp seen are read again, not skipped.
        Mock::given(method("GET"))
            .and(path(QUERY_ALL))
            .and(query_param(
                "q",
                soql(" WHERE SystemModstamp >= 2026-11-02T11:30:00Z"),
            ))
            .respond_with(body("account_query_restarted.json"))
            .expect(1)
            .mount(&server)
            .await;
        let (pages, cursor) = read_all(&server, None).await?;
        assert_eq!(
            ids(&pages),
            vec![
                ("001xx000003DGb1AAG", false),
                ("001xx000003DGb2AAG", false),
                ("001xx000003DGb2AAG", false),
                ("001xx000003DGb3AAG", false),
            ],
            "HTTP {status}"
        );
        assert_eq!(state(&cursor)["watermark"], json!("2026-11-03T08:15:00Z"));
    }
    Ok(())
}

#[tokio::test]
async fn an_interrupted_query_resumed_later_reads_again_rather_than_skips()
-> Result<(), ProviderError> {
    // A sync stopped after one batch of an incremental query, and its locator has since expired.
    let stored = Cursor::from_stored(
        json!({
            "watermark": "2026-10-30T00:00:00Z",
            "next_records_url": LOCATOR,
            "query_from": "2026-10-30T00:00:00Z",
            "seen_stamp": "2026-11-02T11:30:00Z",
            "seen_id": "001xx000003DGb2AAG",
        })
        .to_string(),
    );
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(LOCATOR))
        .respond_with(error(400, "invalid_query_locator.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param(
            "q",
            soql(" WHERE SystemModstamp >= 2026-11-02T11:30:00Z"),
        ))
        .respond_with(body("account_query_restarted.json"))
        .expect(1)
        .mount(&server)
        .await;
    let (pages, cursor) = read_all(&server, Some(stored)).await?;
    assert_eq!(
        ids(&pages),
        vec![("001xx000003DGb2AAG", false), ("001xx000003DGb3AAG", false)],
        "the last record delivered before the interruption is read again"
    );
    assert_eq!(state(&cursor)["watermark"], json!("2026-11-03T08:15:00Z"));
    Ok(())
}

#[tokio::test]
async fn a_batch_of_identical_timestamps_cannot_restart_forever() -> Result<(), ProviderError> {
    // The query began at the timestamp every record it delivered shares; an inclusive restart
    // would deliver the same batch again, so it continues after the last Id.
    let stored = Cursor::from_stored(
        json!({
            "watermark": "2026-11-02T11:30:00Z",
            "next_records_url": LOCATOR,
            "query_from": "2026-11-02T11:30:00Z",
            "seen_stamp": "2026-11-02T11:30:00Z",
            "seen_id": "001xx000003DGb2AAG",
        })
        .to_string(),
    );
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(LOCATOR))
        .respond_with(error(404, "invalid_query_locator.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param(
            "q",
            soql(
                " WHERE (SystemModstamp > 2026-11-02T11:30:00Z OR \
                 (SystemModstamp = 2026-11-02T11:30:00Z AND Id > '001xx000003DGb2AAG'))",
            ),
        ))
        .respond_with(body("account_query_page2.json"))
        .expect(1)
        .mount(&server)
        .await;
    let (pages, _) = read_all(&server, Some(stored)).await?;
    assert_eq!(
        ids(&pages),
        vec![("001xx000003DGb3AAG", false), ("001xx000003DGa9AAG", true)]
    );
    Ok(())
}

#[tokio::test]
async fn a_locator_from_a_replaced_session_restarts_but_a_dead_token_still_surfaces()
-> Result<(), ProviderError> {
    let stored = Cursor::from_stored(
        json!({"next_records_url": LOCATOR, "seen_stamp": "2026-11-02T11:30:00Z", "seen_id": "001xx000003DGb2AAG"})
            .to_string(),
    );
    let unauthorized = ResponseTemplate::new(401).set_body_json(
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
    );
    let server = MockServer::start().await;
    Mock::given(path(LOCATOR))
        .respond_with(unauthorized.clone())
        .mount(&server)
        .await;
    Mock::given(path(QUERY_ALL))
        .respond_with(body("account_query_restarted.json"))
        .expect(1)
        .mount(&server)
        .await;
    let (pages, _) = read_all(&server, Some(stored.clone())).await?;
    assert_eq!(pages[0].records.len(), 2);

    let expired = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(unauthorized)
        .mount(&expired)
        .await;
    let error = read_all(&expired, Some(stored))
        .await
        .expect_err("the token is refused");
    assert_eq!(
        error,
        ProviderError::Unauthorized {
            provider: ProviderKind::Salesforce
        }
    );
    Ok(())
}

#[tokio::test]
async fn request_limit_exceeded_is_quota_exhausted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(error(403, "request_limit_exceeded.json"))
        .mount(&server)
        .await;
    let error = read_all(&server, None)
        .await
        .expect_err("the org's quota is used up");
    assert!(
        matches!(
            &error,
            ProviderError::QuotaExhausted { provider: ProviderKind::Salesforce, detail, .. }
                if detail.contains("TotalRequests")
        ),
        "{error}"
    );
}

#[tokio::test]
async fn extra_fields_and_page_size_shape_the_query() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param_contains(
            "q",
            "SELECT Id, Name, IsDeleted, SystemModstamp, LastModifiedDate, FirstName, LastName, \
             Email, Phone, AccountId, Favorite_Color__c, Account.Name FROM Contact ",
        ))
        .and(header("Sforce-Query-Options", "batchSize=200"))
        .respond_with(body("account_query_empty.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    let options = ReadOptions {
        page_size: Some(50),
        extra_fields: vec![
            "Favorite_Color__c".to_owned(),
            "email".to_owned(),
            "Account.Name".to_owned(),
        ],
    };
    client.read_page("Contact", None, &options).await?;

    let options = ReadOptions {
        page_size: None,
        extra_fields: vec!["Name FROM User --".to_owned()],
    };
    let error = client
        .read_page("Contact", None, &options)
        .await
        .expect_err("not a field name");
    assert!(
        matches!(error, ProviderError::Misconfigured { .. }),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_responses_are_decode_errors_naming_salesforce() {
    let cases = [
        (
            ResponseTemplate::new(200).set_body_string(r#"{"done": true, "records": [{"Id": "#),
            "EOF",
        ),
        (
            ResponseTemplate::new(200).set_body_raw(
                test_data(
                    ProviderKind::Salesforce,
                    "api/contact_query_missing_id.json",
                ),
                "application/json",
            ),
            "`Id`",
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"totalSize": 0}"#),
            "missing field",
        ),
        (
            ResponseTemplate::new(200).set_body_string(r#"{"done": false, "records": []}"#),
            "nextRecordsUrl",
        ),
        (
            ResponseTemplate::new(200).set_body_string(
                r#"{"done": false, "records": [], "nextRecordsUrl": "https://evil.example/x"}"#,
            ),
            "not a path",
        ),
    ];
    for (response, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(response)
            .mount(&server)
            .await;
        let client = api_client(ProviderKind::Salesforce, &server.uri());
        let error = client
            .read_page("Contact", None, &ReadOptions::default())
            .await
            .expect_err("a bad response");
        assert!(
            matches!(&error, ProviderError::Decode { provider: ProviderKind::Salesforce, reason, .. } if reason.contains(expected)),
            "{expected}: {error}"
        );
        assert!(error.to_string().starts_with("Salesforce"), "{error}");
    }

    let server = MockServer::start().await;
    let client = api_client(ProviderKind::Salesforce, &server.uri());
    let error = client
        .read_page(
            "Account",
            Some(&Cursor::from_stored("{not json")),
            &ReadOptions::default(),
        )
        .await
        .expect_err("bad cursor");
    assert!(matches!(error, ProviderError::Decode { .. }));
    let error = client
        .read_page("contacts", None, &ReadOptions::default())
        .await
        .expect_err("not a Salesforce object");
    assert!(matches!(error, ProviderError::Misconfigured { .. }));
}

const DELETED: &str = "/services/data/v62.0/sobjects/Account/deleted/";

/// The next sync's query (nothing changed since the watermark).
async fn mount_no_changes(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param(
            "q",
            soql(" WHERE SystemModstamp >= 2026-11-20T10:00:00Z"),
        ))
        .respond_with(body("account_query_empty.json"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn hard_deletes_come_from_get_deleted_after_the_query_as_tombstones()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_no_changes(&server).await;
    Mock::given(method("GET"))
        .and(path(DELETED))
        .and(query_param("start", "2026-11-21T12:00:00+00:00"))
        .and(query_param("end", "2026-11-22T12:00:00+00:00"))
        .respond_with(body("account_deleted.json"))
        .expect(1)
        .mount(&server)
        .await;
    let cursor = Cursor::from_stored(
        json!({"watermark": "2026-11-20T10:00:00Z", "deleted_from": "2026-11-21T12:00:00Z"})
            .to_string(),
    );
    let (pages, cursor) = read_all(&server, Some(cursor)).await?;
    assert_eq!(pages.len(), 2, "the query, then the delete window");
    assert!(pages[0].records.is_empty() && pages[0].has_more);
    assert_eq!(
        ids(&pages),
        vec![("001xx000003DGb1AAG", true), ("001xx000003DGb9AAG", true)]
    );
    assert_eq!(
        pages[1].records[1].updated_at.map(|time| time.to_rfc3339()),
        Some("2026-11-22T09:30:00+00:00".to_owned())
    );
    assert!(!pages.iter().any(|page| page.restarted));
    let state = state(&cursor);
    assert_eq!(
        (&state["deleted_from"], &state["deletes_due"]),
        (&json!("2026-11-22T11:59:00Z"), &json!(false)),
        "latestDateCovered starts the next window"
    );
    server.verify().await;
    Ok(())
}

#[tokio::test]
async fn a_cursor_from_before_deletes_reads_them_from_its_watermark() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_no_changes(&server).await;
    Mock::given(method("GET"))
        .and(path(DELETED))
        .and(query_param("start", "2026-11-20T10:00:00+00:00"))
        .respond_with(body("account_deleted.json"))
        .expect(1)
        .mount(&server)
        .await;
    let cursor = Cursor::from_stored(json!({"watermark": "2026-11-20T10:00:00Z"}).to_string());
    let (pages, _) = read_all(&server, Some(cursor)).await?;
    assert_eq!(ids(&pages).len(), 2);
    server.verify().await;
    Ok(())
}

#[tokio::test]
async fn a_purged_delete_log_or_a_stale_window_starts_a_full_re_read() -> Result<(), ProviderError>
{
    // The log was purged after the window began: the tombstones it has, then everything again.
    let server = MockServer::start().await;
    mount_no_changes(&server).await;
    mount_accounts(&server).await;
    Mock::given(method("GET"))
        .and(path(DELETED))
        .respond_with(body("account_deleted_purged.json"))
        .expect(1)
        .mount(&server)
        .await;
    let cursor = Cursor::from_stored(
        json!({"watermark": "2026-11-20T10:00:00Z", "deleted_from": "2026-11-21T12:00:00Z"})
            .to_string(),
    );
    let (pages, cursor) = read_all(&server, Some(cursor)).await?;
    let restarted: Vec<bool> = pages.iter().map(|page| page.restarted).collect();
    assert_eq!(restarted, vec![false, true, false, false], "{pages:#?}");
    assert_eq!(pages[1].records.len(), 1, "the tombstone the log still had");
    assert!(
        pages[2].records.len() + pages[3].records.len() > 0,
        "the full query ran"
    );
    assert_eq!(
        state(&cursor)["deleted_from"],
        json!("2026-11-22T12:00:00Z")
    );
    server.verify().await;

    // A window older than the 15 days the log keeps is not asked for at all.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(QUERY_ALL))
        .and(query_param(
            "q",
            soql(" WHERE SystemModstamp >= 2026-11-01T10:00:00Z"),
        ))
        .respond_with(body("account_query_empty.json"))
        .mount(&server)
        .await;
    mount_accounts(&server).await;
    Mock::given(method("GET"))
        .and(path(DELETED))
        .respond_with(body("account_deleted.json"))
        .expect(0)
        .mount(&server)
        .await;
    let cursor = Cursor::from_stored(
        json!({"watermark": "2026-11-01T10:00:00Z", "deleted_from": "2026-11-01T10:00:00Z"})
            .to_string(),
    );
    let (pages, _) = read_all(&server, Some(cursor)).await?;
    assert!(pages[1].restarted && pages[1].records.is_empty());
    server.verify().await;
    Ok(())
}

#[tokio::test]
async fn a_refused_or_malformed_delete_window_is_a_typed_error() {
    let cursor = Cursor::from_stored(
        json!({"watermark": "2026-11-20T10:00:00Z", "deleted_from": "2026-11-21T12:00:00Z", "deletes_due": true})
            .to_string(),
    );
    let client_for = |server: &MockServer| api_client(ProviderKind::Salesforce, &server.uri());
    for (response, expected) in [
        (error(400, "invalid_replication_date.json"), "rejected"),
        (
            ResponseTemplate::new(200).set_body_json(json!({"latestDateCovered": "x"})),
            "decode",
        ),
        (
            ResponseTemplate::new(200).set_body_json(
                json!({"deletedRecords": [{"id": "001", "deletedDate": "yesterday"}]}),
            ),
            "decode",
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(DELETED))
            .respond_with(response)
            .mount(&server)
            .await;
        let outcome = client_for(&server)
            .read_page("Account", Some(&cursor), &ReadOptions::default())
            .await;
        let matched = match &outcome {
            Err(ProviderError::Rejected {
                status: 400,
                message,
                ..
            }) => expected == "rejected" && message.contains("startDate"),
            Err(ProviderError::Decode { provider, .. }) => {
                expected == "decode" && *provider == ProviderKind::Salesforce
            }
            _ => false,
        };
        assert!(matched, "{expected}: {outcome:?}");
    }
}
