//! Zendesk signatures over `timestamp + body`: event-subscription events dedupe on their id,
//! trigger webhooks on the invocation id; tampering, wrong secrets, old or future timestamps and
//! missing headers are rejected.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat};
use http::HeaderMap;
use serde_json::Value;

use super::ZendeskVerifier;
use crate::ProviderKind;
use crate::test_support::webhooks::{headers, hmac_sha256, now, now_plus, post, rejection, secret};
use crate::webhooks::WebhookRejection;

const SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
const EVENT: &[u8] = include_bytes!("../../../test_data/zendesk/webhooks/user_active_changed.json");
const INVOCATION_ID: &str = "01JX5V9Q2T0E8R7W6Y5U4I3O2P";

fn verifier() -> ZendeskVerifier {
    ZendeskVerifier::new(secret(SECRET))
}

/// Zendesk's timestamp format, `2026-05-28T20:26:20Z`, `seconds` from now.
fn timestamp(seconds: i64) -> String {
    now_plus(seconds).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The headers Zendesk sends, signed with `key` at `timestamp`, plus `extra`.
fn signed(key: &str, timestamp: &str, body: &[u8], extra: &[(&str, &str)]) -> HeaderMap {
    let signature = BASE64.encode(hmac_sha256(key, &[timestamp.as_bytes(), body]));
    let mut pairs = vec![
        ("X-Zendesk-Webhook-Signature", signature.as_str()),
        ("X-Zendesk-Webhook-Signature-Timestamp", timestamp),
    ];
    pairs.extend_from_slice(extra);
    headers(&pairs)
}

#[test]
fn a_signed_event_subscription_event_dedupes_on_its_id() {
    let headers = signed(
        SECRET,
        &timestamp(-20),
        EVENT,
        &[
            ("X-Zendesk-Webhook-Invocation-Id", INVOCATION_ID),
            ("X-Zendesk-Account-Id", "99999999"),
        ],
    );
    let events = verifier().verify(&post(&headers, EVENT), now()).unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.provider, ProviderKind::Zendesk);
    assert_eq!(
        event.dedupe_key,
        "zendesk:cbe4028c-7239-495d-b020-f22348516046"
    );
    // The payload's account id wins over the header.
    assert_eq!(event.account_id.as_deref(), Some("22129848"));
    assert_eq!(event.event_type, "zen:event-type:user.active_changed");
    assert_eq!(event.object_type.as_deref(), Some("user"));
    assert_eq!(event.object_id.as_deref(), Some("1234567890"));
    assert_eq!(
        event.occurred_at,
        Some(
            DateTime::parse_from_rfc3339("2026-05-28T20:26:18Z")
                .unwrap()
                .to_utc()
        )
    );
    assert_eq!(event.payload["event"]["previous"], true);
}

#[test]
fn a_trigger_webhook_dedupes_on_the_invocation_id_and_takes_the_account_from_the_header() {
    // A trigger's JSON is whatever the admin templated; its `id` is the ticket's, not the event's.
    let body = br#"{"id":"35436","status":"open","updated_at":"2026-05-28T20:26:00Z"}"#;
    let headers = signed(
        SECRET,
        &timestamp(0),
        body,
        &[
            ("X-Zendesk-Webhook-Invocation-Id", INVOCATION_ID),
            ("X-Zendesk-Account-Id", "22129848"),
        ],
    );
    let events = verifier().verify(&post(&headers, body), now()).unwrap();
    let event = &events[0];
    assert_eq!(
        event.dedupe_key,
        format!("zendesk:invocation:{INVOCATION_ID}")
    );
    assert_eq!(event.account_id.as_deref(), Some("22129848"));
    assert_eq!(event.event_type, "webhook");
    assert_eq!(event.object_id, None);
    assert_eq!(event.payload["status"], "open");
}

#[test]
fn an_empty_body_verifies_with_a_null_payload() {
    let headers = signed(
        SECRET,
        &timestamp(0),
        b"",
        &[("X-Zendesk-Webhook-Invocation-Id", INVOCATION_ID)],
    );
    let events = verifier().verify(&post(&headers, b""), now()).unwrap();
    assert_eq!(events[0].payload, Value::Null);
    assert_eq!(events[0].account_id, None);
}

#[test]
fn without_an_event_id_or_an_invocation_id_there_is_nothing_to_dedupe_on() {
    let body = br#"{"ticket":"35436"}"#;
    let headers = signed(SECRET, &timestamp(0), body, &[]);
    assert!(matches!(
        rejection(verifier().verify(&post(&headers, body), now())),
        WebhookRejection::MalformedPayload(_)
    ));
}

#[test]
fn a_tampered_body_is_a_signature_mismatch() {
    let headers = signed(SECRET, &timestamp(0), EVENT, &[]);
    let tampered = String::from_utf8(EVENT.to_vec())
        .unwrap()
        .replace("\"current\":false", "\"current\":true");
    let result = verifier().verify(&post(&headers, tampered.as_bytes()), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn the_signature_covers_the_timestamp() {
    let signed_at = timestamp(-10);
    let mut headers = signed(SECRET, &signed_at, EVENT, &[]);
    headers.insert(
        "x-zendesk-webhook-signature-timestamp",
        timestamp(-5).parse().unwrap(),
    );
    let result = verifier().verify(&post(&headers, EVENT), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let headers = signed("another-signing-secret", &timestamp(0), EVENT, &[]);
    let result = verifier().verify(&post(&headers, EVENT), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_timestamp_outside_three_hundred_seconds_is_rejected() {
    let on_the_edge = signed(SECRET, &timestamp(-300), EVENT, &[]);
    assert!(verifier().verify(&post(&on_the_edge, EVENT), now()).is_ok());

    let stale = signed(SECRET, &timestamp(-3600), EVENT, &[]);
    assert_eq!(
        rejection(verifier().verify(&post(&stale, EVENT), now())),
        WebhookRejection::Stale {
            age_seconds: 3600,
            tolerance_seconds: 300
        }
    );
    let future = signed(SECRET, &timestamp(301), EVENT, &[]);
    assert_eq!(
        rejection(verifier().verify(&post(&future, EVENT), now())),
        WebhookRejection::FromTheFuture {
            ahead_seconds: 301,
            tolerance_seconds: 300
        }
    );
}

#[test]
fn a_missing_signature_or_timestamp_header_is_named() {
    let signed = signed(SECRET, &timestamp(0), EVENT, &[]);
    let mut without_signature = signed.clone();
    without_signature.remove("X-Zendesk-Webhook-Signature");
    assert_eq!(
        rejection(verifier().verify(&post(&without_signature, EVENT), now())),
        WebhookRejection::MissingHeader("X-Zendesk-Webhook-Signature")
    );
    let mut without_timestamp = signed;
    without_timestamp.remove("X-Zendesk-Webhook-Signature-Timestamp");
    assert_eq!(
        rejection(verifier().verify(&post(&without_timestamp, EVENT), now())),
        WebhookRejection::MissingHeader("X-Zendesk-Webhook-Signature-Timestamp")
    );
}

#[test]
fn header_names_are_matched_in_any_case() {
    let signed_at = timestamp(0);
    let signature = BASE64.encode(hmac_sha256(SECRET, &[signed_at.as_bytes(), EVENT]));
    let headers = headers(&[
        ("x-zendesk-webhook-signature", &signature),
        ("X-ZENDESK-WEBHOOK-SIGNATURE-TIMESTAMP", &signed_at),
    ]);
    assert!(verifier().verify(&post(&headers, EVENT), now()).is_ok());
}

#[test]
fn a_timestamp_that_is_not_iso_8601_is_malformed() {
    let headers = signed(SECRET, "1780000000", EVENT, &[]);
    assert_eq!(
        rejection(verifier().verify(&post(&headers, EVENT), now())),
        WebhookRejection::MalformedHeader {
            header: "X-Zendesk-Webhook-Signature-Timestamp",
            problem: "not ISO-8601"
        }
    );
}
