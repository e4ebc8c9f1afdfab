//! Gmail push: Google-style RS256 tokens signed in the test with committed test-only keys,
//! checked against a JWKS built from them; every claim that matters is tried wrong once.

#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::DateTime;
use http::HeaderMap;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::GmailPushVerifier;
use crate::ProviderKind;
use crate::test_support::webhooks::{
    GMAIL_AUDIENCE as AUDIENCE, GMAIL_KEY as KEY, GMAIL_KEY_ID as KEY_ID,
    GMAIL_OTHER_KEY as OTHER_KEY, GMAIL_OTHER_KEY_ID as OTHER_KEY_ID,
    GMAIL_SERVICE_ACCOUNT as SERVICE_ACCOUNT, NOW_UNIX, gmail_claims as claims, gmail_jwks as jwks,
    gmail_token as token, headers, now, now_plus, post, rejection,
};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection};

const PUSH: &[u8] = include_bytes!("../../../test_data/gmail/webhooks/push_notification.json");
fn verifier() -> GmailPushVerifier {
    GmailPushVerifier::new(&jwks(), AUDIENCE, SERVICE_ACCOUNT).unwrap()
}

/// `claims()` with `changes` applied; a `null` removes the claim.
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

fn verify_token(token: &str) -> Result<Vec<VerifiedEvent>, WebhookError> {
    let headers = headers(&[("Authorization", &format!("Bearer {token}"))]);
    verifier().verify(&post(&headers, PUSH), now())
}

#[test]
fn a_token_signed_by_a_google_key_verifies_and_the_push_becomes_an_event() {
    let events = verify_token(&token(&KEY, Some(KEY_ID), &claims())).unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.provider, ProviderKind::Gmail);
    assert_eq!(event.dedupe_key, "gmail:2070443601311540");
    assert_eq!(event.account_id.as_deref(), Some("user@example.com"));
    assert_eq!(event.event_type, "mailbox_changed");
    assert_eq!(event.payload["historyId"], "9876543210");
    assert_eq!(event.payload["emailAddress"], "user@example.com");
    assert_eq!(
        event.payload["subscription"],
        "projects/example-project/subscriptions/gmail-push"
    );
    assert_eq!(
        event.occurred_at,
        DateTime::from_timestamp_millis(1_780_000_000_000 - 20_251)
    );
}

#[test]
fn the_key_is_chosen_by_kid() {
    assert!(verify_token(&token(&OTHER_KEY, Some(OTHER_KEY_ID), &claims())).is_ok());
    // Signed by one key while naming the other.
    assert_eq!(
        rejection(verify_token(&token(&OTHER_KEY, Some(KEY_ID), &claims()))),
        WebhookRejection::InvalidToken("signature does not verify")
    );
}

#[test]
fn the_issuer_without_scheme_is_also_google() {
    let claims = claims_with(json!({"iss": "accounts.google.com"}));
    assert!(verify_token(&token(&KEY, Some(KEY_ID), &claims)).is_ok());
}

#[test]
fn wrong_claims_are_rejected_with_the_reason() {
    let cases = [
        (
            json!({"aud": "https://elsewhere.example.com/push"}),
            "wrong audience",
        ),
        (json!({"aud": null}), "missing exp, iss or aud"),
        (json!({"iss": "https://evil.example.com"}), "wrong issuer"),
        (json!({"exp": NOW_UNIX - 61}), "expired"),
        (json!({"exp": null}), "missing exp, iss or aud"),
        (json!({"nbf": NOW_UNIX + 600}), "not yet valid"),
        (json!({"iat": NOW_UNIX + 600}), "issued in the future"),
        (
            json!({"email": "someone@example-project.iam.gserviceaccount.com"}),
            "wrong service account email",
        ),
        (json!({"email": null}), "wrong service account email"),
        (json!({"email_verified": false}), "email not verified"),
        (json!({"email_verified": null}), "email not verified"),
        (json!({"exp": "tomorrow"}), "malformed claims"),
    ];
    for (changes, reason) in cases {
        let token = token(&KEY, Some(KEY_ID), &claims_with(changes.clone()));
        assert_eq!(
            rejection(verify_token(&token)),
            WebhookRejection::InvalidToken(reason),
            "{changes}"
        );
    }
}

#[test]
fn expiry_is_judged_against_the_injected_now_with_a_minute_of_skew() {
    let token = token(&KEY, Some(KEY_ID), &claims());
    let headers = headers(&[("Authorization", &format!("Bearer {token}"))]);
    let request = post(&headers, PUSH);
    // The token expires at NOW + 3000 s.
    assert!(verifier().verify(&request, now_plus(3000 + 60)).is_ok());
    assert_eq!(
        rejection(verifier().verify(&request, now_plus(3000 + 61))),
        WebhookRejection::InvalidToken("expired")
    );
    // Issued at NOW - 600 s: a `now` long before that means the token is from the future.
    assert_eq!(
        rejection(verifier().verify(&request, now_plus(-3600))),
        WebhookRejection::InvalidToken("issued in the future")
    );
}

#[test]
fn an_unknown_or_missing_key_id_is_rejected() {
    assert_eq!(
        rejection(verify_token(&token(&KEY, Some("rotated-away"), &claims()))),
        WebhookRejection::InvalidToken("unknown key id")
    );
    assert_eq!(
        rejection(verify_token(&token(&KEY, None, &claims()))),
        WebhookRejection::InvalidToken("no key id")
    );
}

#[test]
fn a_token_signed_with_another_algorithm_is_rejected() {
    // The classic confusion: HMAC keyed with something public, naming an RSA key's kid.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KEY_ID.to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(jwks().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        rejection(verify_token(&forged)),
        WebhookRejection::InvalidToken("not signed with RS256")
    );
}

#[test]
fn garbage_tokens_are_rejected() {
    let valid = token(&KEY, Some(KEY_ID), &claims());
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{KEY_ID}"}}"#)),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    let (signed_part, _signature) = valid.rsplit_once('.').unwrap();
    let signature_of_another_token = token(&KEY, Some(KEY_ID), &claims_with(json!({"sub": "1"})));
    let swapped = format!(
        "{signed_part}.{}",
        signature_of_another_token.rsplit_once('.').unwrap().1
    );
    let cases = [
        ("garbage".to_owned(), "not a JWT"),
        ("a.b.c".to_owned(), "not a JWT"),
        (unsigned, "not a JWT"),
        (format!("{signed_part}."), "signature does not verify"),
        (format!("{signed_part}.!!!"), "malformed token"),
        (swapped, "signature does not verify"),
    ];
    for (token, reason) in cases {
        assert_eq!(
            rejection(verify_token(&token)),
            WebhookRejection::InvalidToken(reason),
            "{token}"
        );
    }
}

#[test]
fn the_authorization_header_must_be_a_bearer_token() {
    assert_eq!(
        rejection(verifier().verify(&post(&HeaderMap::new(), PUSH), now())),
        WebhookRejection::MissingHeader("Authorization")
    );
    for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token"] {
        let headers = headers(&[("Authorization", value)]);
        assert_eq!(
            rejection(verifier().verify(&post(&headers, PUSH), now())),
            WebhookRejection::MalformedHeader {
                header: "Authorization",
                problem: "not a Bearer token"
            },
            "{value}"
        );
    }
}

#[test]
fn header_name_and_scheme_are_matched_in_any_case() {
    let token = token(&KEY, Some(KEY_ID), &claims());
    for (name, scheme) in [("authorization", "bearer"), ("AUTHORIZATION", "BEARER")] {
        let headers = headers(&[(name, &format!("{scheme} {token}"))]);
        assert!(verifier().verify(&post(&headers, PUSH), now()).is_ok());
    }
}

#[test]
fn push_bodies_without_a_usable_message_are_malformed() {
    let token = token(&KEY, Some(KEY_ID), &claims());
    let headers = headers(&[("Authorization", &format!("Bearer {token}"))]);
    let data = |json: &str| STANDARD.encode(json);
    let bodies = [
        "not json".to_owned(),
        json!({"subscription": "s"}).to_string(),
        json!({"message": {"data": data(r#"{"emailAddress":"a@b.c","historyId":"1"}"#)}})
            .to_string(),
        json!({"message": {"messageId": "1", "data": "%%%"}}).to_string(),
        json!({"message": {"messageId": "1", "data": data("not json")}}).to_string(),
        json!({"message": {"messageId": "1", "data": data(r#"{"historyId":"1"}"#)}}).to_string(),
        json!({"message": {"messageId": "1", "data": data(r#"{"emailAddress":"a@b.c"}"#)}})
            .to_string(),
    ];
    for body in bodies {
        assert!(
            matches!(
                rejection(verifier().verify(&post(&headers, body.as_bytes()), now())),
                WebhookRejection::MalformedPayload(_)
            ),
            "{body}"
        );
    }
}

#[test]
fn a_numeric_history_id_and_snake_case_message_id_are_accepted() {
    let token = token(&KEY, Some(KEY_ID), &claims());
    let headers = headers(&[("Authorization", &format!("Bearer {token}"))]);
    let data = STANDARD.encode(r#"{"emailAddress":"user@example.com","historyId":12345}"#);
    let body =
        json!({"message": {"message_id": "77", "data": data.trim_end_matches('=')}}).to_string();
    let events = verifier()
        .verify(&post(&headers, body.as_bytes()), now())
        .unwrap();
    assert_eq!(events[0].dedupe_key, "gmail:77");
    assert_eq!(events[0].payload["historyId"], "12345");
}

#[test]
fn a_key_set_without_usable_keys_is_a_configuration_error() {
    let ec_only = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    let without_kid = json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]});
    for jwks in [
        "not json".to_owned(),
        json!({"keys": []}).to_string(),
        ec_only.to_string(),
        without_kid.to_string(),
    ] {
        let error = GmailPushVerifier::new(&jwks, AUDIENCE, SERVICE_ACCOUNT).unwrap_err();
        assert!(
            matches!(error.reason, WebhookRejection::InvalidConfiguration(_)),
            "{jwks}"
        );
    }
    assert!(GmailPushVerifier::new(&jwks(), "", SERVICE_ACCOUNT).is_err());
}
