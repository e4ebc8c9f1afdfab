//! Stripe signatures: any `v1` under any endpoint secret verifies the raw (pretty-printed) bytes;
//! re-encoded or tampered bodies, wrong secrets, old or future `t` and bad headers are rejected.

#![allow(clippy::unwrap_used)]

use chrono::DateTime;
use http::HeaderMap;

use super::StripeVerifier;
use crate::ProviderKind;
use crate::test_support::webhooks::{NOW_UNIX, headers, hmac_sha256, now, post, rejection, secret};
use crate::webhooks::WebhookRejection;

const SECRET: &str = "whsec_test_5f0c2b9e7a1d4c3b";
const NEW_SECRET: &str = "whsec_test_rolled_91d2e4f6";
const CONNECT_EVENT: &[u8] =
    include_bytes!("../../../test_data/stripe/webhooks/customer_updated_connect.json");
const PLATFORM_EVENT: &[u8] =
    include_bytes!("../../../test_data/stripe/webhooks/invoice_paid.json");

fn verifier() -> StripeVerifier {
    StripeVerifier::new(vec![secret(SECRET)])
}

/// The hex `v1` signature Stripe computes: HMAC-SHA256 of `{t}.{body}`.
fn v1(key: &str, t: i64, body: &[u8]) -> String {
    hex::encode(hmac_sha256(key, &[t.to_string().as_bytes(), b".", body]))
}

fn stripe_headers(value: &str) -> HeaderMap {
    headers(&[("Stripe-Signature", value)])
}

fn signed(key: &str, t: i64, body: &[u8]) -> HeaderMap {
    stripe_headers(&format!("t={t},v1={}", v1(key, t, body)))
}

#[test]
fn a_signed_connect_event_names_its_account_and_object() {
    let headers = signed(SECRET, NOW_UNIX - 5, CONNECT_EVENT);
    let events = verifier()
        .verify(&post(&headers, CONNECT_EVENT), now())
        .unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.provider, ProviderKind::Stripe);
    assert_eq!(event.dedupe_key, "stripe:evt_1RkXk2LkdIwHu7ix0x5nTq1W");
    assert_eq!(event.account_id.as_deref(), Some("acct_1Qz8xYLkdIwHu7ix"));
    assert_eq!(event.event_type, "customer.updated");
    assert_eq!(event.object_type.as_deref(), Some("customer"));
    assert_eq!(event.object_id.as_deref(), Some("cus_SfmQ3Wb5xwXhYz"));
    assert_eq!(
        event.occurred_at,
        DateTime::from_timestamp(1_780_000_000, 0)
    );
    assert_eq!(event.payload["data"]["previous_attributes"]["name"], "Jane");
}

#[test]
fn a_platform_event_has_no_account() {
    let headers = signed(SECRET, NOW_UNIX, PLATFORM_EVENT);
    let events = verifier()
        .verify(&post(&headers, PLATFORM_EVENT), now())
        .unwrap();
    assert_eq!(events[0].dedupe_key, "stripe:evt_1RkXm9LkdIwHu7ixQ2r4Zb8c");
    assert_eq!(events[0].account_id, None);
    assert_eq!(
        events[0].object_id.as_deref(),
        Some("in_1RkXm7LkdIwHu7ixA1b2C3d4")
    );
}

#[test]
fn the_raw_bytes_are_verified_not_a_re_encoding() {
    // Stripe sends pretty-printed JSON; the same event compacted is different bytes.
    let headers = signed(SECRET, NOW_UNIX, CONNECT_EVENT);
    let value: serde_json::Value = serde_json::from_slice(CONNECT_EVENT).unwrap();
    let compacted = serde_json::to_vec(&value).unwrap();
    assert_ne!(compacted, CONNECT_EVENT);
    let result = verifier().verify(&post(&headers, &compacted), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_tampered_body_is_a_signature_mismatch() {
    let headers = signed(SECRET, NOW_UNIX, CONNECT_EVENT);
    let mut tampered = CONNECT_EVENT.to_vec();
    let position = tampered.iter().position(|byte| *byte == b'J').unwrap();
    tampered[position] = b'K';
    let result = verifier().verify(&post(&headers, &tampered), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let headers = signed("whsec_someone_else", NOW_UNIX, CONNECT_EVENT);
    let result = verifier().verify(&post(&headers, CONNECT_EVENT), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn the_second_of_two_v1_signatures_may_be_the_one_that_matches() {
    let headers = stripe_headers(&format!(
        "t={NOW_UNIX},v1={},v1={},v0={}",
        v1("whsec_rolled_away", NOW_UNIX, CONNECT_EVENT),
        v1(SECRET, NOW_UNIX, CONNECT_EVENT),
        "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
    ));
    assert!(
        verifier()
            .verify(&post(&headers, CONNECT_EVENT), now())
            .is_ok()
    );
}

#[test]
fn while_rolling_a_signature_under_the_second_secret_verifies() {
    let rolling = StripeVerifier::new(vec![secret(SECRET), secret(NEW_SECRET)]);
    let headers = signed(NEW_SECRET, NOW_UNIX, CONNECT_EVENT);
    assert!(
        rolling
            .verify(&post(&headers, CONNECT_EVENT), now())
            .is_ok()
    );
    // The old verifier alone does not know the new secret.
    let result = verifier().verify(&post(&headers, CONNECT_EVENT), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn with_no_secret_nothing_verifies() {
    let headers = signed(SECRET, NOW_UNIX, CONNECT_EVENT);
    let result = StripeVerifier::new(Vec::new()).verify(&post(&headers, CONNECT_EVENT), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_timestamp_outside_three_hundred_seconds_is_rejected() {
    let on_the_edge = signed(SECRET, NOW_UNIX - 300, CONNECT_EVENT);
    assert!(
        verifier()
            .verify(&post(&on_the_edge, CONNECT_EVENT), now())
            .is_ok()
    );

    let stale = signed(SECRET, NOW_UNIX - 301, CONNECT_EVENT);
    assert_eq!(
        rejection(verifier().verify(&post(&stale, CONNECT_EVENT), now())),
        WebhookRejection::Stale {
            age_seconds: 301,
            tolerance_seconds: 300
        }
    );
    let future = signed(SECRET, NOW_UNIX + 301, CONNECT_EVENT);
    assert_eq!(
        rejection(verifier().verify(&post(&future, CONNECT_EVENT), now())),
        WebhookRejection::FromTheFuture {
            ahead_seconds: 301,
            tolerance_seconds: 300
        }
    );
}

#[test]
fn a_missing_signature_header_is_named() {
    let result = verifier().verify(&post(&HeaderMap::new(), CONNECT_EVENT), now());
    assert_eq!(
        rejection(result),
        WebhookRejection::MissingHeader("Stripe-Signature")
    );
}

#[test]
fn header_names_are_matched_in_any_case() {
    let value = format!("t={NOW_UNIX},v1={}", v1(SECRET, NOW_UNIX, CONNECT_EVENT));
    for name in ["stripe-signature", "STRIPE-SIGNATURE", "Stripe-Signature"] {
        let headers = headers(&[(name, &value)]);
        assert!(
            verifier()
                .verify(&post(&headers, CONNECT_EVENT), now())
                .is_ok()
        );
    }
}

#[test]
fn headers_without_t_or_v1_are_malformed() {
    let cases = [
        (
            format!("v1={}", v1(SECRET, NOW_UNIX, CONNECT_EVENT)),
            "no t",
        ),
        (format!("t={NOW_UNIX},v0=abcd"), "no v1 signature"),
        ("t=soon,v1=abcd".to_owned(), "t is not an integer"),
        (format!("t={},v1=abcd", i64::MAX), "t is out of range"),
    ];
    for (value, problem) in cases {
        let headers = stripe_headers(&value);
        assert_eq!(
            rejection(verifier().verify(&post(&headers, CONNECT_EVENT), now())),
            WebhookRejection::MalformedHeader {
                header: "Stripe-Signature",
                problem
            },
            "{value}"
        );
    }
}

#[test]
fn a_v1_that_is_not_hex_cannot_match() {
    let headers = stripe_headers(&format!("t={NOW_UNIX},v1=not-hex"));
    let result = verifier().verify(&post(&headers, CONNECT_EVENT), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_signed_body_that_is_not_an_event_is_malformed() {
    let body = br#"{"object":"event","type":"customer.updated"}"#;
    let headers = signed(SECRET, NOW_UNIX, body);
    assert_eq!(
        rejection(verifier().verify(&post(&headers, body), now())),
        WebhookRejection::MalformedPayload("event has no id".to_owned())
    );
}
