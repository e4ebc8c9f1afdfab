//! Intercom `X-Hub-Signature` (HMAC-SHA1 of the body): notifications verify and dedupe on their
//! id; tampering, wrong secrets, missing and malformed headers are rejected.

#![allow(clippy::unwrap_used)]

use chrono::DateTime;
use http::HeaderMap;

use super::IntercomVerifier;
use crate::ProviderKind;
use crate::test_support::webhooks::{headers, hmac_sha1, now, now_plus, post, rejection, secret};
use crate::webhooks::WebhookRejection;

const SECRET: &str = "intercom-client-secret-4e8a";
const NOTIFICATION: &[u8] =
    include_bytes!("../../../test_data/intercom/webhooks/contact_user_created.json");

fn verifier() -> IntercomVerifier {
    IntercomVerifier::new(secret(SECRET))
}

fn signed(key: &str, body: &[u8]) -> HeaderMap {
    let signature = format!("sha1={}", hex::encode(hmac_sha1(key, body)));
    headers(&[("X-Hub-Signature", &signature)])
}

#[test]
fn a_signed_notification_dedupes_on_its_id_with_the_app_as_account() {
    let headers = signed(SECRET, NOTIFICATION);
    let events = verifier()
        .verify(&post(&headers, NOTIFICATION), now())
        .unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.provider, ProviderKind::Intercom);
    assert_eq!(
        event.dedupe_key,
        "intercom:notif_8f3b2c1a-0d9e-4f7a-b6c5-d4e3f2a1b0c9"
    );
    assert_eq!(event.account_id.as_deref(), Some("abc123xy"));
    assert_eq!(event.event_type, "contact.user.created");
    assert_eq!(event.object_type.as_deref(), Some("contact"));
    assert_eq!(event.object_id.as_deref(), Some("6643a2f0e3b2c1a0d9f8e7b6"));
    assert_eq!(
        event.occurred_at,
        DateTime::from_timestamp(1_780_000_001, 0)
    );
}

#[test]
fn without_a_timestamp_a_replay_verifies_and_only_the_dedupe_key_stops_it() {
    let headers = signed(SECRET, NOTIFICATION);
    let first = verifier()
        .verify(&post(&headers, NOTIFICATION), now())
        .unwrap();
    let a_day_later = verifier()
        .verify(&post(&headers, NOTIFICATION), now_plus(86_400))
        .unwrap();
    assert_eq!(first[0].dedupe_key, a_day_later[0].dedupe_key);
}

#[test]
fn a_tampered_body_is_a_signature_mismatch() {
    let headers = signed(SECRET, NOTIFICATION);
    let tampered = String::from_utf8(NOTIFICATION.to_vec())
        .unwrap()
        .replace("\"role\":\"user\"", "\"role\":\"admin\"");
    let result = verifier().verify(&post(&headers, tampered.as_bytes()), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let headers = signed("old-hub-secret", NOTIFICATION);
    let result = verifier().verify(&post(&headers, NOTIFICATION), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_missing_signature_header_is_named() {
    let result = verifier().verify(&post(&HeaderMap::new(), NOTIFICATION), now());
    assert_eq!(
        rejection(result),
        WebhookRejection::MissingHeader("X-Hub-Signature")
    );
}

#[test]
fn header_names_are_matched_in_any_case() {
    let value = format!("sha1={}", hex::encode(hmac_sha1(SECRET, NOTIFICATION)));
    for name in ["x-hub-signature", "X-HUB-SIGNATURE"] {
        let headers = headers(&[(name, &value)]);
        assert!(
            verifier()
                .verify(&post(&headers, NOTIFICATION), now())
                .is_ok()
        );
    }
}

#[test]
fn a_signature_without_the_sha1_prefix_or_hex_is_malformed() {
    let sha256_style = format!("sha256={}", hex::encode(hmac_sha1(SECRET, NOTIFICATION)));
    for value in [sha256_style.as_str(), "sha1=zz", "deadbeef"] {
        let headers = headers(&[("X-Hub-Signature", value)]);
        assert_eq!(
            rejection(verifier().verify(&post(&headers, NOTIFICATION), now())),
            WebhookRejection::MalformedHeader {
                header: "X-Hub-Signature",
                problem: "not sha1=<hex>"
            },
            "{value}"
        );
    }
}

#[test]
fn a_truncated_signature_does_not_match() {
    let full = hex::encode(hmac_sha1(SECRET, NOTIFICATION));
    let headers = headers(&[("X-Hub-Signature", &format!("sha1={}", &full[..20]))]);
    let result = verifier().verify(&post(&headers, NOTIFICATION), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_signed_notification_without_a_topic_is_malformed() {
    let body = br#"{"type":"notification_event","id":"notif_1","app_id":"abc123xy"}"#;
    let headers = signed(SECRET, body);
    assert_eq!(
        rejection(verifier().verify(&post(&headers, body), now())),
        WebhookRejection::MalformedPayload("notification has no topic".to_owned())
    );
}
