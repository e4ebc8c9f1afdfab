//! Gmail's reader against a mock: the backfill chain then history from the profile's id, resuming
//! from a stored cursor, the next sync reading only history, deletes, the full resync after an
//! expired history id, and bad input.

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{api_client, test_data};
use crate::{Cursor, Page, ProviderError, ProviderKind, ReadOptions};

const PROFILE: &str = "/gmail/v1/users/me/profile";
const MESSAGES: &str = "/gmail/v1/users/me/messages";
const HISTORY: &str = "/gmail/v1/users/me/history";

fn body(file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        test_data(ProviderKind::Gmail, &format!("api/{file}")),
        "application/json",
    )
}

fn not_found() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_raw(
        test_data(ProviderKind::Gmail, "api/not_found.json"),
        "application/json",
    )
}

/// `messages.get` of `id` in full format (headers and body parts).
async fn mount_message(server: &MockServer, id: &str, response: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(format!("{MESSAGES}/{id}")))
        .and(query_param("format", "full"))
        .respond_with(response)
        .mount(server)
        .await;
}

/// The mailbox listing: two pages, the third message gone by the time it is fetched.
async fn mount_backfill(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .and(query_param("maxResults", "100"))
        .and(query_param_is_missing("pageToken"))
        .respond_with(body("messages_page1.json"))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(MESSAGES))
        .and(query_param("pageToken", "07482019288746151462"))
        .respond_with(body("messages_page2.json"))
        .mount(server)
        .await;
    mount_message(server, "18c1a0000000a001", body("message_a001.json")).await;
    mount_message(server, "18c1a0000000a002", body("message_a002.json")).await;
    mount_message(server, "18c1a0000000a003", not_found()).await;
}

async fn read_all(
    server: &MockServer,
    cursor: Option<Cursor>,
) -> Result<(Vec<Page>, Cursor), ProviderError> {
    let client = api_client(ProviderKind::Gmail, &server.uri());
    crate::test_support::read_all(&client, "messages", cursor).await
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
async fn a_first_sync_backfills_then_reads_history_from_the_id_recorded_before()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(PROFILE))
        .respond_with(body("profile.json"))
        .expect(1)
        .mount(&server)
        .await;
    mount_backfill(&server).await;
    // Changes made during the backfill are read from the id the profile gave before it began.
    Mock::given(method("GET"))
        .and(path(HISTORY))
        .and(query_param("startHistoryId", "987654"))
        .respond_with(body("history_empty.json"))
        .expect(1)
        .mount(&server)
        .await;

    let (pages, cursor) = read_all(&server, None).await?;
    assert_eq!(
        pages.iter().map(|page| page.has_more).collect::<Vec<_>>(),
        vec![true, true, false]
    );
    assert_eq!(
        ids(&pages),
        vec![
            ("18c1a0000000a001", false),
            ("18c1a0000000a002", false),
            ("18c1a0000000a003", true),
        ],
        "a message gone between listing and fetching is a delete"
    );
    assert_eq!(
        state(&cursor),
        json!({"phase": "history", "history_id": "987700", "page_token": null})
    );

    let first = &pages[0].records[0];
    assert_eq!(first.object_type, "messages");
    assert_eq!(
        first.updated_at.map(|time| time.to_rfc3339()),
        Some("2026-11-22T09:00:00+00:00".to_owned()),
        "from internalDate"
    );
    assert_eq!(
        first.source_url.as_deref(),
        Some("https://mail.google.com/mail/u/0/#all/18c1a0000000a001")
    );
    let expected: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "threadId": "18c1a0000000a001",
        "labelIds": ["INBOX", "UNREAD", "CATEGORY_PERSONAL"],
        "snippet": "Are we still on for Thursday?",
        "internalDate": "1795338000000",
        "sizeEstimate": 5123,
        "From": "Grace Hopper <grace@example.com>",
        "To": "Ada Lovelace <ada@example.com>",
        "Subject": "Thursday",
        "Date": "Sun, 22 Nov 2026 09:00:00 +0000",
        // The text/plain part, decoded; the HTML alternative is not used when plain text exists.
        "body": "Are we still on for Thursday?\r\nI can bring the café notes.\r\n",
    }))
    .unwrap_or_default();
    assert_eq!(first.fields, expected);

    let reply = &pages[0].records[1];
    assert_eq!(
        reply.fields.get("Subject"),
        Some(&json!("Re: Thursday — Grüße aus 東京 ✉"))
    );
    assert_eq!(
        reply.fields.get("From"),
        Some(&json!("José Müller <jose@example.com>")),
        "header names match in any case"
    );
    assert_eq!(
        reply.fields.get("snippet"),
        Some(&Value::Null),
        "nulls are kept"
    );
    assert!(
        !reply.fields.contains_key("To"),
        "a missing header stays missing"
    );

    let gone = &pages[1].records[0];
    assert_eq!(gone.source_url, None);
    assert!(gone.fields.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_stored_backfill_cursor_resumes_at_the_next_listing_page() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(path(PROFILE))
        .respond_with(body("profile.json"))
        .expect(0)
        .mount(&server)
        .await;
    mount_backfill(&server).await;
    let client = api_client(ProviderKind::Gmail, &server.uri());
    let stored = Cursor::from_stored(
        r#"{"phase":"backfill","history_id":"987654","page_token":"07482019288746151462"}"#,
    );
    let page = client
        .read_page("messages", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        ids(std::slice::from_ref(&page)),
        vec![("18c1a0000000a003", true)]
    );
    assert!(page.has_more, "history since the backfill began is next");
    assert_eq!(
        state(&page.cursor),
        json!({"phase": "history", "history_id": "987654", "page_token": null})
    );
    Ok(())
}

#[tokio::test]
async fn the_next_sync_reads_only_history_with_adds_label_changes_and_deletes()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    for listing in [PROFILE, MESSAGES] {
        Mock::given(path(listing))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(HISTORY))
        .and(query_param("startHistoryId", "987700"))
        .and(query_param("historyTypes", "messageDeleted"))
        .and(query_param_is_missing("pageToken"))
        .respond_with(body("history_page1.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(HISTORY))
        .and(query_param("startHistoryId", "987700"))
        .and(query_param("pageToken", "15034879432984"))
        .respond_with(body("history_page2.json"))
        .expect(1)
        .mount(&server)
        .await;
    mount_message(&server, "18c1a0000000a004", body("message_a004.json")).await;
    mount_message(
        &server,
        "18c1a0000000a001",
        body("message_a001_trashed.json"),
    )
    .await;
    // Added and deleted within one page: reported as deleted, never fetched.
    Mock::given(path(format!("{MESSAGES}/18c1a0000000a005")))
        .respond_with(not_found())
        .expect(0)
        .mount(&server)
        .await;

    let stored = Cursor::from_stored(r#"{"phase":"history","history_id":"987700"}"#);
    let (pages, cursor) = read_all(&server, Some(stored)).await?;
    assert_eq!(
        ids(&pages),
        vec![
            ("18c1a0000000a004", false),
            ("18c1a0000000a001", false),
            ("18c1a0000000a002", true),
            ("18c1a0000000a005", true),
        ]
    );
    assert_eq!(
        state(&pages[0].cursor),
        json!({"phase": "history", "history_id": "987700", "page_token": "15034879432984"}),
        "paging keeps the start id until the read is complete"
    );
    assert_eq!(
        state(&cursor),
        json!({"phase": "history", "history_id": "988000", "page_token": null})
    );
    let records: Vec<_> = pages.iter().flat_map(|page| &page.records).collect();
    assert_eq!(
        records[0].fields.get("To"),
        Some(&json!("ada@example.com, grace@example.com")),
        "a repeated header keeps every value"
    );
    assert_eq!(
        records[1].fields.get("labelIds"),
        Some(&json!(["TRASH", "CATEGORY_PERSONAL"])),
        "trashing is a label change, not a delete"
    );
    let deleted = records[2];
    assert_eq!(
        deleted.fields.get("threadId"),
        Some(&json!("18c1a0000000a001"))
    );
    assert_eq!(deleted.updated_at, None);
    Ok(())
}

#[tokio::test]
async fn an_expired_history_id_restarts_the_backfill_transparently() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(HISTORY))
        .and(query_param("startHistoryId", "12"))
        .respond_with(not_found())
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(PROFILE))
        .respond_with(body("profile.json"))
        .expect(1)
        .mount(&server)
        .await;
    mount_backfill(&server).await;
    let client = api_client(ProviderKind::Gmail, &server.uri());
    let stored = Cursor::from_stored(r#"{"phase":"history","history_id":"12"}"#);
    let page = client
        .read_page("messages", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        ids(std::slice::from_ref(&page)),
        vec![("18c1a0000000a001", false), ("18c1a0000000a002", false)],
        "the first page of a new backfill"
    );
    assert!(page.has_more);
    assert_eq!(
        state(&page.cursor),
        json!({"phase": "backfill", "history_id": "987654", "page_token": "07482019288746151462", "resync": true})
    );
    Ok(())
}

#[tokio::test]
async fn extra_fields_are_read_as_extra_headers() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    Mock::given(path(PROFILE))
        .respond_with(body("profile.json"))
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES))
        .and(query_param("maxResults", "500"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"messages": [{"id": "18c1a0000000a009", "threadId": "18c1a0000000a009"}]}),
        ))
        .mount(&server)
        .await;
    Mock::given(path(format!("{MESSAGES}/18c1a0000000a009")))
        .and(query_param("format", "full"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "18c1a0000000a009",
            "payload": {"headers": [{"name": "List-ID", "value": "<rust.example.org>"}]}
        })))
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Gmail, &server.uri());
    let options = ReadOptions {
        page_size: Some(5000),
        extra_fields: vec!["List-Id".to_owned(), "subject".to_owned()],
    };
    let page = client.read_page("messages", None, &options).await?;
    let record = &page.records[0];
    assert_eq!(
        record.fields.get("List-Id"),
        Some(&json!("<rust.example.org>"))
    );
    assert_eq!(record.updated_at, None, "no internalDate, no time");
    Ok(())
}

#[tokio::test]
async fn bad_responses_are_decode_errors_naming_gmail() {
    let listing = |messages: Value| ResponseTemplate::new(200).set_body_json(messages);
    let cases = [
        (
            PROFILE,
            ResponseTemplate::new(200).set_body_string(r#"{"emailAddress": "ada@"#),
            "EOF",
        ),
        (
            PROFILE,
            listing(json!({"emailAddress": "ada@example.com"})),
            "historyId",
        ),
        (
            MESSAGES,
            listing(json!({"messages": [{"threadId": "1"}]})),
            "missing field `id`",
        ),
        (
            MESSAGES,
            listing(json!({"messages": [{"id": "../../x"}]})),
            "not alphanumeric",
        ),
        (
            MESSAGES,
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            "expected value",
        ),
    ];
    for (broken, response, expected) in cases {
        let server = MockServer::start().await;
        Mock::given(path(broken))
            .respond_with(response)
            .mount(&server)
            .await;
        Mock::given(path(PROFILE))
            .respond_with(body("profile.json"))
            .mount(&server)
            .await;
        Mock::given(path(MESSAGES))
            .respond_with(body("messages_page2.json"))
            .mount(&server)
            .await;
        // A fetched message without an id.
        Mock::given(path(format!("{MESSAGES}/18c1a0000000a003")))
            .respond_with(listing(json!({"threadId": "18c1a0000000a003"})))
            .mount(&server)
            .await;
        let client = api_client(ProviderKind::Gmail, &server.uri());
        let error = client
            .read_page("messages", None, &ReadOptions::default())
            .await
            .expect_err("a bad response");
        assert!(
            matches!(&error, ProviderError::Decode { provider: ProviderKind::Gmail, reason, .. } if reason.contains(expected)),
            "{expected}: {error}"
        );
        assert!(error.to_string().starts_with("Gmail"), "{error}");
    }

    let server = MockServer::start().await;
    Mock::given(path(PROFILE))
        .respond_with(body("profile.json"))
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES))
        .respond_with(body("messages_page2.json"))
        .mount(&server)
        .await;
    Mock::given(path(format!("{MESSAGES}/18c1a0000000a003")))
        .respond_with(listing(json!({"threadId": "18c1a0000000a003"})))
        .mount(&server)
        .await;
    Mock::given(path(HISTORY))
        .respond_with(listing(json!({"history": []})))
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Gmail, &server.uri());
    let error = client
        .read_page("messages", None, &ReadOptions::default())
        .await
        .expect_err("a message without an id");
    assert!(
        matches!(&error, ProviderError::Decode { reason, .. } if reason.contains("`id`")),
        "{error}"
    );
    let error = client
        .read_page(
            "messages",
            Some(&Cursor::from_stored(
                r#"{"phase":"history","history_id":"5"}"#,
            )),
            &ReadOptions::default(),
        )
        .await
        .expect_err("no historyId to continue from");
    assert!(
        matches!(&error, ProviderError::Decode { reason, .. } if reason.contains("historyId")),
        "{error}"
    );
    let error = client
        .read_page(
            "messages",
            Some(&Cursor::from_stored(r#"{"phase":"somewhere"}"#)),
            &ReadOptions::default(),
        )
        .await
        .expect_err("bad cursor");
    assert!(matches!(error, ProviderError::Decode { .. }), "{error}");
}

/// `messages.get` of one message answered with `payload`.
async fn read_one(payload: Value) -> Result<Page, ProviderError> {
    let server = MockServer::start().await;
    Mock::given(path(PROFILE))
        .respond_with(body("profile.json"))
        .mount(&server)
        .await;
    Mock::given(path(MESSAGES))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"messages": [{"id": "18c1a0000000b001", "threadId": "18c1a0000000b001"}]}),
        ))
        .mount(&server)
        .await;
    Mock::given(path(format!("{MESSAGES}/18c1a0000000b001")))
        .and(query_param("format", "full"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "18c1a0000000b001", "threadId": "18c1a0000000b001", "payload": payload}),
        ))
        .mount(&server)
        .await;
    api_client(ProviderKind::Gmail, &server.uri())
        .read_page("messages", None, &ReadOptions::default())
        .await
}

fn b64(text: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn bodies_come_from_text_parts_and_attachments_are_metadata_only() -> Result<(), ProviderError>
{
    // HTML only, nested in multipart/mixed with a PDF attachment: text derived from the HTML.
    let html = "<html><head><style>p{color:red}</style></head><body><p>Invoice&nbsp;#42 is <b>due</b>.</p><script>track()</script><p>Thanks &amp; regards</p></body></html>";
    let page = read_one(json!({
        "mimeType": "multipart/mixed", "filename": "", "headers": [{"name": "Subject", "value": "Invoice"}],
        "body": {"size": 0},
        "parts": [
            {"mimeType": "multipart/alternative", "filename": "", "body": {"size": 0}, "parts": [
                {"mimeType": "text/html", "filename": "", "headers": [{"name": "Content-Type", "value": "text/html; charset=UTF-8"}],
                 "body": {"size": html.len(), "data": b64(html.as_bytes())}}
            ]},
            {"mimeType": "application/pdf", "filename": "invoice-42.pdf",
             "body": {"size": 48213, "attachmentId": "ANGjdJ8x"}}
        ]
    }))
    .await?;
    let fields = &page.records[0].fields;
    assert_eq!(
        fields["body"],
        json!("Invoice #42 is due.\n\nThanks & regards")
    );
    assert_eq!(
        fields["attachments"],
        json!([{"filename": "invoice-42.pdf", "mime_type": "application/pdf", "size": 48213}])
    );
    assert!(!fields.contains_key("body_truncated") && !fields.contains_key("body_charset"));

    // Latin-1 is decoded exactly; a huge body is capped and says so.
    let latin1: Vec<u8> = b"Gr\xfc\xdfe".to_vec();
    let page = read_one(json!({
        "mimeType": "text/plain", "filename": "",
        "headers": [{"name": "Content-Type", "value": "text/plain; charset=ISO-8859-1"}],
        "body": {"size": latin1.len(), "data": b64(&latin1)}
    }))
    .await?;
    assert_eq!(page.records[0].fields["body"], json!("Grüße"));
    let huge = "ü".repeat(super::reader::MAX_BODY_BYTES);
    let page = read_one(json!({
        "mimeType": "text/plain", "filename": "", "body": {"size": huge.len(), "data": b64(huge.as_bytes())}
    }))
    .await?;
    let fields = &page.records[0].fields;
    let text = fields["body"].as_str().unwrap_or_default();
    assert!(
        text.len() <= super::reader::MAX_BODY_BYTES
            && text.len() > super::reader::MAX_BODY_BYTES - 4
    );
    assert_eq!(fields["body_truncated"], json!(true));

    // An unsupported charset keeps replacement text and names it.
    let page = read_one(json!({
        "mimeType": "text/plain", "filename": "",
        "headers": [{"name": "Content-Type", "value": "text/plain; charset=\"Shift_JIS\""}],
        "body": {"size": 4, "data": b64(&[0x93, 0xfa, 0x96, 0x7b])}
    }))
    .await?;
    assert_eq!(page.records[0].fields["body_charset"], json!("shift_jis"));
    Ok(())
}

#[tokio::test]
async fn a_text_part_that_is_not_base64url_is_a_decode_error() {
    let outcome = read_one(json!({
        "mimeType": "text/plain", "filename": "", "body": {"size": 3, "data": "!!not base64!!"}
    }))
    .await;
    assert!(
        matches!(&outcome, Err(ProviderError::Decode { provider: ProviderKind::Gmail, reason, .. }) if reason.contains("base64url")),
        "{outcome:?}"
    );
}

proptest::proptest! {
    /// Any HTML, however broken, becomes text without a panic and without a tag left in it, and
    /// any text is capped at a character boundary within the limit.
    #[test]
    fn html_of_any_shape_becomes_text_and_caps_hold(html in "(<[a-z/!]{0,8}[^>&]{0,12}>?|[^<&]{0,16}){0,24}", limit in 0_usize..64) {
        let text = super::reader::html_to_text(&html);
        proptest::prop_assert!(!text.contains("<script") && !text.contains("<p>"));
        let (capped, cut) = super::reader::cap(text.clone(), limit);
        proptest::prop_assert!(capped.len() <= limit || !cut && capped == text);
        proptest::prop_assert!(text.starts_with(&capped));
    }
}
