//! Properties every verifier shares: routing by provider, no secret in any message, and no panic
//! on any request, signed or not.

#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value};

use super::{
    GmailPushVerifier, HubSpotVerifier, IntercomVerifier, SalesforceVerifier, StripeVerifier,
    VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest, WebhookVerifier,
    ZendeskVerifier,
};
use crate::ProviderKind;
use crate::test_support::webhooks::{
    GMAIL_AUDIENCE, GMAIL_KEY, GMAIL_KEY_ID, GMAIL_SERVICE_ACCOUNT, NOW_UNIX, URL, gmail_claims,
    gmail_jwks, gmail_token, headers, hmac_sha1, hmac_sha256, now, post, rejection, secret,
};

const HUBSPOT_SECRET: &str = "SECRET-hubspot-0b1c2d3e";
const STRIPE_SECRET: &str = "whsec_SECRET-stripe-4f5a6b7c";
const ZENDESK_SECRET: &str = "SECRET-zendesk-8d9e0f1a";
const INTERCOM_SECRET: &str = "SECRET-intercom-2b3c4d5e";
const SECRETS: [&str; 4] = [
    HUBSPOT_SECRET,
    STRIPE_SECRET,
    ZENDESK_SECRET,
    INTERCOM_SECRET,
];
const SALESFORCE_ORG_ID: &str = "00D5g000004FQvXEAW";

/// Every header any verifier reads.
const HEADER_NAMES: [&str; 10] = [
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "Stripe-Signature",
    "X-Zendesk-Webhook-Signature",
    "X-Zendesk-Webhook-Signature-Timestamp",
    "X-Zendesk-Webhook-Invocation-Id",
    "X-Zendesk-Account-Id",
    "X-Hub-Signature",
    "Authorization",
    "Content-Type",
];

/// Field names the verifiers look for in JSON bodies, so generated JSON reaches their branches.
const JSON_KEYS: [&str; 28] = [
    "id",
    "type",
    "topic",
    "app_id",
    "account",
    "account_id",
    "data",
    "object",
    "item",
    "portalId",
    "subscriptionId",
    "eventId",
    "subscriptionType",
    "objectTypeId",
    "objectId",
    "occurredAt",
    "created",
    "created_at",
    "subject",
    "time",
    "message",
    "messageId",
    "message_id",
    "publishTime",
    "emailAddress",
    "historyId",
    "subscription",
    "zendesk_event_version",
];

/// One fixture per provider, in the order of [`ProviderKind::ALL`] and [`VERIFIERS`].
const FIXTURES: [&[u8]; 6] = [
    include_bytes!("../../test_data/hubspot/webhooks/contact_events.json"),
    include_bytes!("../../test_data/salesforce/webhooks/outbound_message_two_accounts.xml"),
    include_bytes!("../../test_data/stripe/webhooks/customer_updated_connect.json"),
    include_bytes!("../../test_data/zendesk/webhooks/user_active_changed.json"),
    include_bytes!("../../test_data/intercom/webhooks/contact_user_created.json"),
    include_bytes!("../../test_data/gmail/webhooks/push_notification.json"),
];

/// One verifier per provider, in the order of [`ProviderKind::ALL`], built once.
static VERIFIERS: LazyLock<Vec<WebhookVerifier>> = LazyLock::new(|| {
    vec![
        WebhookVerifier::HubSpot(HubSpotVerifier::new(secret(HUBSPOT_SECRET))),
        WebhookVerifier::Salesforce(SalesforceVerifier::new(SALESFORCE_ORG_ID).unwrap()),
        WebhookVerifier::Stripe(StripeVerifier::new(vec![secret(STRIPE_SECRET)])),
        WebhookVerifier::Zendesk(ZendeskVerifier::new(secret(ZENDESK_SECRET))),
        WebhookVerifier::Intercom(IntercomVerifier::new(secret(INTERCOM_SECRET))),
        WebhookVerifier::Gmail(
            GmailPushVerifier::new(&gmail_jwks(), GMAIL_AUDIENCE, GMAIL_SERVICE_ACCOUNT).unwrap(),
        ),
    ]
});

/// A valid Gmail push token, signed once because RSA signing is slow in debug builds.
static GMAIL_TOKEN: LazyLock<String> =
    LazyLock::new(|| gmail_token(&GMAIL_KEY, Some(GMAIL_KEY_ID), &gmail_claims()));

/// Headers that authenticate `body`, sent to [`URL`] by POST at `now()`, for `provider`.
fn authentic_headers(provider: ProviderKind, body: &[u8]) -> HeaderMap {
    let now_ms = (NOW_UNIX * 1000).to_string();
    let now_text = "2026-05-28T20:26:40Z";
    match provider {
        ProviderKind::HubSpot => {
            let signature = hmac_sha256(
                HUBSPOT_SECRET,
                &[b"POST", URL.as_bytes(), body, now_ms.as_bytes()],
            );
            headers(&[
                ("X-HubSpot-Signature-v3", &BASE64.encode(signature)),
                ("X-HubSpot-Request-Timestamp", &now_ms),
            ])
        }
        ProviderKind::Stripe => {
            let t = NOW_UNIX.to_string();
            let signature = hmac_sha256(STRIPE_SECRET, &[t.as_bytes(), b".", body]);
            let value = format!("t={t},v1={}", hex::encode(signature));
            headers(&[("Stripe-Signature", &value)])
        }
        ProviderKind::Zendesk => {
            let signature = hmac_sha256(ZENDESK_SECRET, &[now_text.as_bytes(), body]);
            headers(&[
                ("X-Zendesk-Webhook-Signature", &BASE64.encode(signature)),
                ("X-Zendesk-Webhook-Signature-Timestamp", now_text),
                (
                    "X-Zendesk-Webhook-Invocation-Id",
                    "01JX5V9Q2T0E8R7W6Y5U4I3O2P",
                ),
            ])
        }
        ProviderKind::Intercom => {
            let value = format!("sha1={}", hex::encode(hmac_sha1(INTERCOM_SECRET, body)));
            headers(&[("X-Hub-Signature", &value)])
        }
        ProviderKind::Gmail => headers(&[("Authorization", &format!("Bearer {}", *GMAIL_TOKEN))]),
        ProviderKind::Salesforce => HeaderMap::new(),
    }
}

/// What must hold for any outcome of `verifier` on any request.
fn check_outcome(verifier: &WebhookVerifier, result: &Result<Vec<VerifiedEvent>, WebhookError>) {
    let provider = verifier.provider();
    match result {
        Ok(events) => {
            for event in events {
                assert_eq!(event.provider, provider);
                assert!(
                    event
                        .dedupe_key
                        .starts_with(&format!("{}:", provider.slug())),
                    "{}",
                    event.dedupe_key
                );
            }
        }
        Err(error) => {
            assert_eq!(error.provider, provider);
            let message = format!("{error} {error:?}");
            for secret in SECRETS {
                assert!(!message.contains(secret), "{message}");
            }
            assert!(!message.contains(GMAIL_TOKEN.as_str()));
        }
    }
}

#[test]
fn each_verifier_reports_its_provider_and_routes_verification_to_it() {
    let providers: Vec<ProviderKind> = VERIFIERS.iter().map(WebhookVerifier::provider).collect();
    assert_eq!(providers, ProviderKind::ALL);
    for (verifier, fixture) in VERIFIERS.iter().zip(FIXTURES) {
        let headers = authentic_headers(verifier.provider(), fixture);
        let events = verifier.verify(&post(&headers, fixture), now()).unwrap();
        assert!(!events.is_empty(), "{}", verifier.provider());
        assert!(
            events
                .iter()
                .all(|event| event.provider == verifier.provider())
        );
    }
}

#[test]
fn rejections_read_well_and_never_contain_a_secret() {
    let body = FIXTURES[2];
    let headers = authentic_headers(ProviderKind::Stripe, body);
    let stripe = &VERIFIERS[2];
    assert_eq!(stripe.provider(), ProviderKind::Stripe);
    let mismatch = stripe.verify(&post(&headers, b"{}"), now()).unwrap_err();
    assert_eq!(
        mismatch.to_string(),
        "Stripe webhook rejected: signature does not match"
    );
    let an_hour_later = DateTime::from_timestamp(NOW_UNIX + 3600, 0).unwrap();
    let stale = stripe
        .verify(&post(&headers, body), an_hour_later)
        .unwrap_err();
    assert_eq!(
        stale.to_string(),
        "Stripe webhook rejected: timestamp is 3600 s old, more than the 300 s allowed"
    );
    for error in [mismatch, stale] {
        check_outcome(stripe, &Err(error));
    }
}

#[test]
fn debug_output_shows_no_secret_and_no_header_value() {
    for verifier in VERIFIERS.iter() {
        let debug = format!("{verifier:?}");
        for secret in SECRETS {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
    let headers = authentic_headers(ProviderKind::Gmail, b"{}");
    let debug = format!("{:?}", post(&headers, b"{}"));
    assert!(debug.contains("authorization"), "{debug}");
    assert!(!debug.contains(GMAIL_TOKEN.as_str()), "{debug}");
}

#[test]
fn a_request_for_one_provider_is_rejected_by_the_others() {
    for (index, fixture) in FIXTURES.iter().enumerate() {
        let sender = VERIFIERS[index].provider();
        let headers = authentic_headers(sender, fixture);
        for verifier in VERIFIERS.iter() {
            let result = verifier.verify(&post(&headers, fixture), now());
            if verifier.provider() != sender {
                // `rejection` fails the test if the request verified.
                rejection(result);
            }
        }
    }
}

/// A JSON scalar: null, a boolean, a number (huge, negative, fractional) or short text.
fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zA-Z0-9:@._=+/-]{0,16}".prop_map(Value::String),
    ]
}

/// Arbitrary JSON using the field names the verifiers read.
fn json_value() -> impl Strategy<Value = Value> {
    json_scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((select(&JSON_KEYS[..]), inner), 0..6).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), value))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// The JSON pointers of every node in `value`, the root included.
fn json_pointers(value: &Value) -> Vec<String> {
    fn walk(value: &Value, pointer: String, pointers: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                for (key, field) in fields {
                    let escaped = key.replace('~', "~0").replace('/', "~1");
                    walk(field, format!("{pointer}/{escaped}"), pointers);
                }
            }
            Value::Array(items) => {
                for (item_idx, item) in items.iter().enumerate() {
                    walk(item, format!("{pointer}/{item_idx}"), pointers);
                }
            }
            _ => {}
        }
        pointers.push(pointer);
    }
    let mut pointers = Vec::new();
    walk(value, String::new(), &mut pointers);
    pointers
}

/// `value` with the node at a chosen pointer replaced by `replacement`.
fn replace_node(mut value: Value, node: Index, replacement: Value) -> Value {
    let pointers = json_pointers(&value);
    let pointer = &pointers[node.index(pointers.len())];
    if let Some(target) = value.pointer_mut(pointer) {
        *target = replacement;
    }
    value
}

/// What replaces a node of a fixture: mostly a scalar of another type or value, sometimes a
/// whole structure.
fn json_replacement() -> impl Strategy<Value = Value> {
    prop_oneof![3 => json_scalar(), 1 => json_value()]
}

/// A JSON fixture with one node, anywhere, replaced by arbitrary JSON: the documented shape
/// with one field of the wrong type, missing or odd.
fn mutated_json_fixture() -> impl Strategy<Value = Vec<u8>> {
    let json_fixtures: Vec<Value> = FIXTURES
        .iter()
        .filter_map(|fixture| serde_json::from_slice(fixture).ok())
        .collect();
    (select(json_fixtures), any::<Index>(), json_replacement()).prop_map(
        |(fixture, node, replacement)| {
            replace_node(fixture, node, replacement)
                .to_string()
                .into_bytes()
        },
    )
}

/// A Gmail push whose base64 `message.data` holds the documented notification with one node
/// replaced by arbitrary JSON.
fn mutated_gmail_push() -> impl Strategy<Value = Vec<u8>> {
    let data = serde_json::json!({"emailAddress": "user@example.com", "historyId": "9876543210"});
    (any::<Index>(), json_replacement()).prop_map(move |(node, replacement)| {
        let data = replace_node(data.clone(), node, replacement).to_string();
        serde_json::json!({"message": {"data": BASE64.encode(data), "messageId": "1"}})
            .to_string()
            .into_bytes()
    })
}

/// Bodies: raw bytes, generated JSON, fixtures with one node or byte changed, or cut short.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => json_value().prop_map(|value| value.to_string().into_bytes()),
        4 => mutated_json_fixture(),
        1 => mutated_gmail_push(),
        1 => (select(&FIXTURES[..]), any::<Index>(), any::<u8>()).prop_map(|(fixture, index, byte)| {
            let mut body = fixture.to_vec();
            body[index.index(fixture.len())] = byte;
            body
        }),
        1 => (select(&FIXTURES[..]), any::<Index>())
            .prop_map(|(fixture, index)| fixture[..index.index(fixture.len())].to_vec()),
    ]
}

/// Header values: raw bytes, and text that starts the way the verifiers expect.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48),
        (
            select(
                &[
                    "t=",
                    "t=1780000000,v1=",
                    "v1=",
                    "sha1=",
                    "Bearer ",
                    "Bearer a.b."
                ][..]
            ),
            "[ -~]{0,48}"
        )
            .prop_map(|(prefix, rest)| format!("{prefix}{rest}").into_bytes()),
        "[0-9]{0,20}".prop_map(String::into_bytes),
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|\\+01:00|\\.5Z)?"
            .prop_map(String::into_bytes),
    ]
}

/// Header maps drawn from the names the verifiers read, in random case; values that `http`
/// refuses are left out, as a server would never see them.
fn header_map() -> impl Strategy<Value = HeaderMap> {
    prop::collection::vec(
        (select(&HEADER_NAMES[..]), any::<bool>(), header_value()),
        0..6,
    )
    .prop_map(|entries| {
        let mut map = HeaderMap::new();
        for (name, upper, value) in entries {
            let name = if upper {
                name.to_ascii_uppercase()
            } else {
                name.to_owned()
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value),
            ) {
                map.append(name, value);
            }
        }
        map
    })
}

/// Any instant chrono can represent, give or take; around `now()` more often.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        (-600_i64..600).prop_map(|offset| NOW_UNIX + offset),
        -8_000_000_000_000_i64..8_000_000_000_000,
    ]
    .prop_map(|seconds| DateTime::from_timestamp(seconds, 0).unwrap_or_else(now))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn no_verifier_panics_on_any_request(
        method in "[A-Z]{0,7}",
        url in "[ -~]{0,64}",
        headers in header_map(),
        body in body(),
        at in instant(),
    ) {
        let request = WebhookRequest { method: &method, url: &url, headers: &headers, body: &body };
        for verifier in VERIFIERS.iter() {
            check_outcome(verifier, &verifier.verify(&request, at));
        }
    }

    #[test]
    fn an_authentic_request_with_any_body_is_accepted_or_rejected_only_for_its_payload(
        body in body(),
    ) {
        for verifier in VERIFIERS.iter() {
            let headers = authentic_headers(verifier.provider(), &body);
            let result = verifier.verify(&post(&headers, &body), now());
            check_outcome(verifier, &result);
            if let Err(error) = result {
                prop_assert!(
                    matches!(
                        error.reason,
                        WebhookRejection::MalformedPayload(_) | WebhookRejection::WrongAccount { .. }
                    ),
                    "{}",
                    error
                );
            }
        }
    }
}
