//! Timestamps in the providers' formats parse; untrusted cursors and payload bytes never panic.

use proptest::prelude::*;
use serde_json::json;

use super::{Cursor, parse_time};
use crate::ProviderKind;

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
