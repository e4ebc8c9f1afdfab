//! Stripe's reader against a mock: the full list to its end, events passes with fixed upper
//! bounds, resuming an interrupted pass, the 30-day events horizon, deletes and bad answers.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::test_support::{FixedClock, RecordingSleeper, fixed_now};
use crate::test_support::{api_client, read_all, test_data};
use crate::{
    ConnectionConfig, Cursor, HttpCore, Page, ProviderClient, ProviderError, ProviderKind,
    ProviderSpec, ReadOptions, RetryPolicy,
};

/// `fixed_now()` as epoch seconds (2026-11-22T12:00:00Z).
const NOW: i64 = 1_795_348_800;
/// Where the first sync leaves the events: the backfill's start, one minute before `NOW`.
const FIRST_SYNC_SINCE: i64 = NOW - 60;

fn body(file: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        test_data(ProviderKind::Stripe, &format!("api/{file}")),
        "application/json",
    )
}

/// A Stripe client on the mock whose clock reads `now`.
fn client_at(server: &MockServer, now: DateTime<Utc>) -> ProviderClient {
    let spec = ProviderSpec::for_provider(ProviderKind::Stripe)
        .with_api_base_url(&server.uri())
        .and_then(|spec| spec.for_connection(&ConnectionConfig::default()))
        .unwrap_or_else(|error| panic!("{error}"));
    let http = HttpCore::new(
        ProviderKind::Stripe,
        RetryPolicy::default(),
        Arc::new(FixedClock(now)),
        Arc::new(RecordingSleeper::default()),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    ProviderClient::new(spec, http, SecretString::from("sk_test_key"))
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

async fn mount_customer_list(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(body("customers_page1.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("starting_after", "cus_Q2dEeFfG"))
        .respond_with(body("customers_page2.json"))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_first_sync_lists_every_customer_and_leaves_the_events_at_the_list_start()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_customer_list(&server).await;
    // With the clock standing still, no event can have settled since the list started.
    Mock::given(path("/v1/events"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    let (pages, cursor) = read_all(&client, "customers", None).await?;
    assert_eq!(
        ids(&pages),
        vec![
            ("cus_Q1aXbYcZ".to_owned(), false),
            ("cus_Q2dEeFfG".to_owned(), false),
            ("cus_Q3hHiIjJ".to_owned(), false),
        ]
    );
    assert_eq!(
        pages.iter().map(|page| page.has_more).collect::<Vec<_>>(),
        vec![true, true, false]
    );
    assert_eq!(state(&cursor), json!({"events_since": FIRST_SYNC_SINCE}));

    let jose = &pages[0].records[0];
    assert_eq!(jose.object_type, "customers");
    assert_eq!(jose.fields.get("name"), Some(&json!("José Müller")));
    assert_eq!(
        jose.fields.get("email"),
        Some(&Value::Null),
        "nulls are kept"
    );
    assert!(!jose.fields.contains_key("phone"), "missing stays missing");
    assert_eq!(jose.fields.get("metadata"), Some(&json!({"crm_id": "42"})));
    assert_eq!(
        jose.updated_at, None,
        "Stripe objects have no modification time"
    );
    assert_eq!(
        jose.source_url.as_deref(),
        Some("https://dashboard.stripe.com/test/customers/cus_Q1aXbYcZ")
    );
    let yamada = &pages[0].records[1];
    assert_eq!(yamada.fields.get("name"), Some(&json!("山田 太郎")));
    assert_eq!(
        yamada.source_url.as_deref(),
        Some("https://dashboard.stripe.com/customers/cus_Q2dEeFfG")
    );
    Ok(())
}

#[tokio::test]
async fn a_stored_backfill_cursor_resumes_after_the_last_listed_customer()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_customer_list(&server).await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    let first = client
        .read_page("customers", None, &ReadOptions::default())
        .await?;
    let stored = Cursor::from_stored(first.cursor.as_str().to_owned());
    assert_eq!(
        state(&stored),
        json!({"backfill": {"started": FIRST_SYNC_SINCE, "after": "cus_Q2dEeFfG"}})
    );
    let second = client
        .read_page("customers", Some(&stored), &ReadOptions::default())
        .await?;
    assert_eq!(
        ids(std::slice::from_ref(&second)),
        vec![("cus_Q3hHiIjJ".to_owned(), false)]
    );
    Ok(())
}

/// Mounts the two event pages of a pass over `(since, until]`.
async fn mount_customer_events(server: &MockServer, since: i64, until: i64) {
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("types[]", "customer.created"))
        .and(query_param("types[]", "customer.updated"))
        .and(query_param("types[]", "customer.deleted"))
        .and(query_param("created[gt]", since.to_string()))
        .and(query_param("created[lte]", until.to_string()))
        .and(query_param("limit", "100"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(body("events_customers_page1.json"))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("created[gt]", since.to_string()))
        .and(query_param("created[lte]", until.to_string()))
        .and(query_param("starting_after", "evt_1Q1updated"))
        .respond_with(body("events_customers_page2.json"))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_next_sync_reads_only_events_since_the_last_one_with_deletes()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let later = fixed_now() + Duration::hours(1);
    let until = later.timestamp() - 60;
    mount_customer_events(&server, FIRST_SYNC_SINCE, until).await;
    Mock::given(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = client_at(&server, later).with_account_id("acct_1Nv0FGQ9RKHgCVdK");
    let after_first_sync = Cursor::from_stored(format!(r#"{{"events_since":{FIRST_SYNC_SINCE}}}"#));
    let (pages, cursor) = read_all(&client, "customers", Some(after_first_sync)).await?;
    assert_eq!(
        ids(&pages),
        vec![
            ("cus_Q2dEeFfG".to_owned(), true),
            ("cus_Q1aXbYcZ".to_owned(), false),
            ("cus_Q4kKlLmM".to_owned(), false),
        ],
        "the older snapshot of cus_Q1aXbYcZ on the same page is dropped"
    );
    let jose = &pages[0].records[1];
    assert_eq!(jose.fields.get("name"), Some(&json!("José Müller-Ünal")));
    assert_eq!(jose.fields.get("phone"), Some(&Value::Null));
    assert_eq!(
        jose.updated_at.map(|time| time.timestamp()),
        Some(1_795_351_000),
        "an event record is dated by its event"
    );
    assert_eq!(
        pages[1].records[0].fields.get("name"),
        Some(&json!("Ärzte GmbH"))
    );
    assert_eq!(state(&cursor), json!({"events_since": until}));
    Ok(())
}

#[tokio::test]
async fn an_interrupted_events_pass_resumed_later_loses_no_event() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let pass_start = fixed_now() + Duration::hours(1);
    let until = pass_start.timestamp() - 60;
    mount_customer_events(&server, FIRST_SYNC_SINCE, until).await;
    let first_client = client_at(&server, pass_start);
    let after_first_sync = Cursor::from_stored(format!(r#"{{"events_since":{FIRST_SYNC_SINCE}}}"#));
    let first = first_client
        .read_page(
            "customers",
            Some(&after_first_sync),
            &ReadOptions::default(),
        )
        .await?;
    assert!(first.has_more);
    // The process stops here and comes back four hours later with the stored cursor: the pass
    // keeps its bounds (newer events would otherwise shift the pages under `starting_after`).
    let stored = Cursor::from_stored(first.cursor.as_str().to_owned());
    assert_eq!(
        state(&stored),
        json!({"events_since": FIRST_SYNC_SINCE, "pass_until": until, "pass_after": "evt_1Q1updated"})
    );
    let resumed_at = pass_start + Duration::hours(4);
    let resumed_client = client_at(&server, resumed_at);
    let (rest, cursor) = read_all(&resumed_client, "customers", Some(stored)).await?;
    assert_eq!(ids(&rest), vec![("cus_Q4kKlLmM".to_owned(), false)]);
    assert_eq!(state(&cursor), json!({"events_since": until}));

    // Events from the interruption are read by the next pass, from the old upper bound on.
    let next = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("created[gt]", until.to_string()))
        .and(query_param(
            "created[lte]",
            (resumed_at.timestamp() - 60).to_string(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "url": "/v1/events", "has_more": false, "data": []}),
        ))
        .expect(1)
        .mount(&next)
        .await;
    let (pages, _) = read_all(&client_at(&next, resumed_at), "customers", Some(cursor)).await?;
    assert!(pages.iter().all(|page| page.records.is_empty()));
    Ok(())
}

#[tokio::test]
async fn a_cursor_past_the_thirty_day_event_horizon_lists_everything_again()
-> Result<(), ProviderError> {
    let server = MockServer::start().await;
    mount_customer_list(&server).await;
    Mock::given(path("/v1/events"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    let stale = NOW - 31 * 24 * 60 * 60;
    // Even in the middle of a pass: its oldest events may already be gone.
    let stored = Cursor::from_stored(format!(
        r#"{{"events_since":{stale},"pass_until":{},"pass_after":"evt_x"}}"#,
        stale + 3600
    ));
    let (pages, cursor) = read_all(&client, "customers", Some(stored)).await?;
    assert_eq!(ids(&pages).len(), 3, "every customer is listed again");
    assert_eq!(state(&cursor), json!({"events_since": FIRST_SYNC_SINCE}));
    Ok(())
}

#[tokio::test]
async fn a_cursor_inside_the_event_horizon_reads_events() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let since = NOW - 20 * 24 * 60 * 60;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("created[gt]", since.to_string()))
        .and(query_param("created[lte]", FIRST_SYNC_SINCE.to_string()))
        .respond_with(body("events_customers_page2.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    let stored = Cursor::from_stored(format!(r#"{{"events_since":{since}}}"#));
    let (pages, _) = read_all(&client, "customers", Some(stored)).await?;
    assert_eq!(ids(&pages), vec![("cus_Q4kKlLmM".to_owned(), false)]);
    Ok(())
}

#[tokio::test]
async fn charge_events_link_to_payments_and_skip_foreign_objects() -> Result<(), ProviderError> {
    let server = MockServer::start().await;
    let since = NOW - 3600;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("types[]", "charge.refunded"))
        .and(query_param("types[]", "charge.updated"))
        .respond_with(body("events_charges.json"))
        .expect(1)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    let stored = Cursor::from_stored(format!(r#"{{"events_since":{since}}}"#));
    let page = client
        .read_page("charges", Some(&stored), &ReadOptions::default())
        .await?;
    let charge = &page.records[0];
    assert_eq!(charge.external_id, "ch_3Nabc");
    assert!(!charge.deleted);
    assert_eq!(charge.fields.get("description"), Some(&Value::Null));
    assert_eq!(
        charge.source_url.as_deref(),
        Some("https://dashboard.stripe.com/payments/ch_3Nabc")
    );
    Ok(())
}

async fn error_for(answer: ResponseTemplate, cursor: Option<&Cursor>) -> ProviderError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let client = api_client(ProviderKind::Stripe, &server.uri());
    match client
        .read_page("customers", cursor, &ReadOptions::default())
        .await
    {
        Ok(page) => panic!("a bad answer was read as {page:?}"),
        Err(error) => error,
    }
}

fn is_stripe_decode(error: &ProviderError, needle: &str) -> bool {
    matches!(error, ProviderError::Decode { provider: ProviderKind::Stripe, reason, .. } if reason.contains(needle))
}

#[tokio::test]
async fn bad_answers_are_decode_errors_naming_stripe() {
    let malformed = error_for(
        ResponseTemplate::new(200).set_body_string(r#"{"object":"list","data":[{"id":"#),
        None,
    )
    .await;
    assert!(is_stripe_decode(&malformed, ""), "{malformed}");
    assert!(malformed.to_string().starts_with("Stripe"), "{malformed}");

    let no_id = error_for(
        ResponseTemplate::new(200)
            .set_body_json(json!({"object": "list", "has_more": false, "data": [{"object": "customer", "name": "Ñoño"}]})),
        None,
    )
    .await;
    assert!(is_stripe_decode(&no_id, "id"), "{no_id}");

    let not_a_list = error_for(
        ResponseTemplate::new(200).set_body_json(json!({"object": "list"})),
        None,
    )
    .await;
    assert!(is_stripe_decode(&not_a_list, "data"), "{not_a_list}");

    let events = Cursor::from_stored(format!(r#"{{"events_since":{}}}"#, NOW - 3600));
    let event_without_object = error_for(
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false,
            "data": [{"id": "evt_1", "type": "customer.updated", "created": NOW - 100, "data": {}}]
        })),
        Some(&events),
    )
    .await;
    assert!(
        is_stripe_decode(&event_without_object, "object"),
        "{event_without_object}"
    );

    let bad_cursor = error_for(
        ResponseTemplate::new(200),
        Some(&Cursor::from_stored("{not json")),
    )
    .await;
    assert!(is_stripe_decode(&bad_cursor, ""), "{bad_cursor}");
}
