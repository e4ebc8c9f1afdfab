//! HubSpot signature v3: batches become events with composite dedupe keys; tampering, wrong
//! secrets, stale or future timestamps and missing headers are rejected.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::DateTime;
use http::HeaderMap;

use super::{HubSpotVerifier, decode_signed_url_escapes};
use crate::ProviderKind;
use crate::test_support::webhooks::{
    NOW_UNIX, URL, dedupe_keys, headers, hmac_sha256, now, post, rejection, secret,
};
use crate::webhooks::WebhookRejection;

const SECRET: &str = "hubspot-client-secret-7c1f";
const BODY: &[u8] = include_bytes!("../../../test_data/hubspot/webhooks/contact_events.json");
const NOW_MS: i64 = NOW_UNIX * 1000;

fn verifier() -> HubSpotVerifier {
    HubSpotVerifier::new(secret(SECRET))
}

/// Headers as HubSpot sends them: the signature over `method + url + body + timestamp`.
fn signed(key: &str, method: &str, url: &str, body: &[u8], timestamp_ms: i64) -> HeaderMap {
    let timestamp = timestamp_ms.to_string();
    let signature = BASE64.encode(hmac_sha256(
        key,
        &[
            method.as_bytes(),
            url.as_bytes(),
            body,
            timestamp.as_bytes(),
        ],
    ));
    headers(&[
        ("X-HubSpot-Signature-v3", &signature),
        ("X-HubSpot-Request-Timestamp", &timestamp),
    ])
}

#[test]
fn a_signed_batch_becomes_one_event_per_entry_with_composite_dedupe_keys() {
    let headers = signed(SECRET, "POST", URL, BODY, NOW_MS - 2_000);
    let events = verifier().verify(&post(&headers, BODY), now()).unwrap();

    // Two entries share eventId 1001 but are different events.
    assert_eq!(
        dedupe_keys(&events),
        [
            "hubspot:62515:2100:1001",
            "hubspot:62515:2200:1001",
            "hubspot:62515:2300:1002"
        ]
    );
    assert!(
        events
            .iter()
            .all(|event| event.provider == ProviderKind::HubSpot)
    );
    assert!(
        events
            .iter()
            .all(|event| event.account_id.as_deref() == Some("62515"))
    );
    let first = &events[0];
    assert_eq!(first.event_type, "contact.propertyChange");
    assert_eq!(first.object_type.as_deref(), Some("contact"));
    assert_eq!(first.object_id.as_deref(), Some("123"));
    assert_eq!(
        first.occurred_at,
        DateTime::from_timestamp_millis(1_780_000_000_000)
    );
    assert_eq!(first.payload["propertyValue"], "jane@example.com");
    assert_eq!(events[1].object_type.as_deref(), Some("company"));
    // Generic `object.*` subscriptions name the object type by id.
    assert_eq!(events[2].event_type, "object.propertyChange");
    assert_eq!(events[2].object_type.as_deref(), Some("0-3"));
}

#[test]
fn a_tampered_body_is_a_signature_mismatch() {
    let headers = signed(SECRET, "POST", URL, BODY, NOW_MS);
    let tampered = String::from_utf8(BODY.to_vec())
        .unwrap()
        .replace("jane@example.com", "mallory@example.com");
    let result = verifier().verify(&post(&headers, tampered.as_bytes()), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn the_signature_covers_the_method_and_the_url() {
    let headers = signed(SECRET, "POST", URL, BODY, NOW_MS);
    let mut request = post(&headers, BODY);
    request.url = "https://hooks.example.com/webhooks/hubspot?connection=43";
    assert_eq!(
        rejection(verifier().verify(&request, now())),
        WebhookRejection::SignatureMismatch
    );
    let mut request = post(&headers, BODY);
    request.method = "PUT";
    assert_eq!(
        rejection(verifier().verify(&request, now())),
        WebhookRejection::SignatureMismatch
    );
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let headers = signed("another-app-secret", "POST", URL, BODY, NOW_MS);
    let result = verifier().verify(&post(&headers, BODY), now());
    assert_eq!(rejection(result), WebhookRejection::SignatureMismatch);
}

#[test]
fn a_timestamp_more_than_five_minutes_old_is_stale() {
    let exactly_five_minutes = signed(SECRET, "POST", URL, BODY, NOW_MS - 300_000);
    assert!(
        verifier()
            .verify(&post(&exactly_five_minutes, BODY), now())
            .is_ok()
    );

    let headers = signed(SECRET, "POST", URL, BODY, NOW_MS - 301_000);
    let result = verifier().verify(&post(&headers, BODY), now());
    assert_eq!(
        rejection(result),
        WebhookRejection::Stale {
            age_seconds: 301,
            tolerance_seconds: 300
        }
    );
}

#[test]
fn a_timestamp_more_than_five_minutes_ahead_is_rejected() {
    let four_minutes_ahead = signed(SECRET, "POST", URL, BODY, NOW_MS + 240_000);
    assert!(
        verifier()
            .verify(&post(&four_minutes_ahead, BODY), now())
            .is_ok()
    );

    let headers = signed(SECRET, "POST", URL, BODY, NOW_MS + 3_600_000);
    let result = verifier().verify(&post(&headers, BODY), now());
    assert_eq!(
        rejection(result),
        WebhookRejection::FromTheFuture {
            ahead_seconds: 3600,
            tolerance_seconds: 300
        }
    );
}

#[test]
fn a_missing_signature_or_timestamp_header_is_named() {
    let only_timestamp = headers(&[("X-HubSpot-Request-Timestamp", &NOW_MS.to_string())]);
    assert_eq!(
        rejection(verifier().verify(&post(&only_timestamp, BODY), now())),
        WebhookRejection::MissingHeader("X-HubSpot-Signature-v3")
    );
    let only_signature = headers(&[("X-HubSpot-Signature-v3", "c2lnbmF0dXJl")]);
    assert_eq!(
        rejection(verifier().verify(&post(&only_signature, BODY), now())),
        WebhookRejection::MissingHeader("X-HubSpot-Request-Timestamp")
    );
}

#[test]
fn header_names_are_matched_in_any_case() {
    let signed = signed(SECRET, "POST", URL, BODY, NOW_MS);
    let headers = headers(&[
        (
            "x-hubspot-signature-V3",
            signed["X-HubSpot-Signature-v3"].to_str().unwrap(),
        ),
        (
            "X-HUBSPOT-REQUEST-TIMESTAMP",
            signed["x-hubspot-request-timestamp"].to_str().unwrap(),
        ),
    ]);
    assert_eq!(
        verifier()
            .verify(&post(&headers, BODY), now())
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn unparsable_signature_or_timestamp_headers_are_malformed() {
    let not_base64 = headers(&[
        ("X-HubSpot-Signature-v3", "not base64!"),
        ("X-HubSpot-Request-Timestamp", &NOW_MS.to_string()),
    ]);
    assert_eq!(
        rejection(verifier().verify(&post(&not_base64, BODY), now())),
        WebhookRejection::MalformedHeader {
            header: "X-HubSpot-Signature-v3",
            problem: "not base64"
        }
    );
    let seconds_as_text = headers(&[
        ("X-HubSpot-Signature-v3", "c2lnbmF0dXJl"),
        ("X-HubSpot-Request-Timestamp", "2026-05-28T20:26:40Z"),
    ]);
    assert_eq!(
        rejection(verifier().verify(&post(&seconds_as_text, BODY), now())),
        WebhookRejection::MalformedHeader {
            header: "X-HubSpot-Request-Timestamp",
            problem: "not epoch milliseconds"
        }
    );
}

#[test]
fn hubspot_signs_the_url_with_listed_escapes_decoded() {
    let received =
        "https://hooks.example.com/webhooks/hubspot?next=https%3A%2F%2Fapp.example%2fa%20b";
    let as_signed = "https://hooks.example.com/webhooks/hubspot?next=https://app.example/a%20b";
    let headers = signed(SECRET, "POST", as_signed, BODY, NOW_MS);
    let mut request = post(&headers, BODY);
    request.url = received;
    assert_eq!(verifier().verify(&request, now()).unwrap().len(), 3);
}

#[test]
fn only_the_listed_escapes_are_decoded() {
    assert_eq!(
        decode_signed_url_escapes("/a%3a%3B%40%20%2%zz%"),
        b"/a:;@%20%2%zz%".to_vec()
    );
    assert_eq!(
        decode_signed_url_escapes("%21%24%27%28%29%2A%2C%3F"),
        b"!$'()*,?".to_vec()
    );
}

#[test]
fn a_body_that_is_not_an_array_of_events_is_malformed() {
    let object = br#"{"eventId":1,"subscriptionId":2,"portalId":3}"#;
    let headers = signed(SECRET, "POST", URL, object, NOW_MS);
    assert!(matches!(
        rejection(verifier().verify(&post(&headers, object), now())),
        WebhookRejection::MalformedPayload(_)
    ));

    let without_portal =
        br#"[{"eventId":1,"subscriptionId":2,"subscriptionType":"contact.creation"}]"#;
    let headers = signed(SECRET, "POST", URL, without_portal, NOW_MS);
    assert_eq!(
        rejection(verifier().verify(&post(&headers, without_portal), now())),
        WebhookRejection::MalformedPayload("event 0 has no portalId".to_owned())
    );
}
