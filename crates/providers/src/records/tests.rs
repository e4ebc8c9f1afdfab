//! Timestamps in the providers' formats parse; untrusted cursors and payload bytes never panic.

use proptest::prelude::*;
use serde_json::json;

use super::{Cursor, parse_time};
use crate::{ProviderError, ProviderKind, ReadOptions};

#[test]
fn provider_timestamp_formats_parse_to_the_same_instant() {
    let expected = chrono::DateTime::parse_from_rfc3339("2026-05-21T10:15:42Z")
        .map(|time| time.timestamp())
        .ok();
    for value in [
        json!("2026-05-21T10:15:42Z"),
        json!("2026-05-21T10:15:42.000Z"),
        json!("2026-05-21T10:15:42.000+0000"),
        json!("2026-05-21T12:15:42+02:00"),
        json!(1_779_358_542),
        json!(1_779_358_542_000_i64),
        json!("1779358542000"),
    ] {
        assert_eq!(
            parse_time(&value).map(|time| time.timestamp()),
            expected,
            "{value}"
        );
    }
    assert_eq!(parse_time(&json!(null)), None);
    assert_eq!(parse_time(&json!("yesterday")), None);
}

proptest! {
    #[test]
    fn any_text_as_a_time_or_cursor_is_an_answer_not_a_panic(text in ".*", number in any::<i64>()) {
        let _ = parse_time(&json!(text));
        let _ = parse_time(&json!(number));
        let cursor = Cursor::from_stored(text);
        let _ = Cursor::state::<serde_json::Value>(Some(&cursor), ProviderKind::Zendesk);
    }

    #[test]
    fn any_bytes_as_a_provider_response_are_an_answer_not_a_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        static CLIENT: std::sync::OnceLock<crate::ProviderClient> = std::sync::OnceLock::new();
        let client = CLIENT.get_or_init(|| crate::test_support::api_client(ProviderKind::Stripe, "http://127.0.0.1:9"));
        let _ = client.decode_for_test(&body);
    }
}

/// `Cursor::since` starts every provider but Gmail at a time its watermark reads back; a
/// provider's cursor given to another provider is a decode error, never a silent restart.
#[tokio::test]
async fn cursors_start_at_a_time_and_refuse_other_providers() {
    use crate::test_support::api_client;
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-01T08:30:00Z")
        .map(|time| time.to_utc())
        .unwrap_or_default();
    let timed = [
        ProviderKind::HubSpot,
        ProviderKind::Salesforce,
        ProviderKind::Stripe,
        ProviderKind::Zendesk,
        ProviderKind::Intercom,
    ];
    let mut cursors = Vec::new();
    for kind in timed {
        let object = crate::objects(kind)[0];
        let cursor =
            Cursor::since(kind, object, since).unwrap_or_else(|error| panic!("{kind}: {error}"));
        assert_eq!(cursor.watermark(kind).ok().flatten(), Some(since), "{kind}");
        cursors.push((kind, cursor));
    }
    assert!(matches!(
        Cursor::since(ProviderKind::HubSpot, "tickets", since),
        Err(ProviderError::Misconfigured { .. })
    ));
    assert!(matches!(
        Cursor::since(ProviderKind::Gmail, "messages", since),
        Err(ProviderError::Misconfigured { .. })
    ));
    let gmail = Cursor::gmail_history("987654").unwrap_or_default();
    assert_eq!(
        gmail.gmail_history_id().ok().flatten().as_deref(),
        Some("987654")
    );
    assert!(Cursor::gmail_history("98x").is_err());
    cursors.push((ProviderKind::Gmail, gmail));

    // Every provider refuses every other provider's cursor before any request.
    let server = wiremock::MockServer::start().await;
    for (owner, cursor) in &cursors {
        for kind in ProviderKind::ALL {
            if kind == *owner {
                continue;
            }
            let object = crate::objects(kind)[0];
            let outcome = api_client(kind, &server.uri())
                .read_page(object, Some(cursor), &ReadOptions::default())
                .await;
            assert!(
                matches!(&outcome, Err(ProviderError::Decode { provider, .. }) if *provider == kind),
                "{owner}'s cursor read by {kind}: {outcome:?}"
            );
        }
    }
    assert!(
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}
