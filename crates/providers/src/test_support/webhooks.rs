//! Helpers the webhook tests share: building requests and header maps, signing the way each
//! provider signs, and reading a rejection out of a result.

#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::Mac as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::webhooks::common::{self, HmacSha1, HmacSha256};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};

/// The URL the test requests were sent to.
pub(crate) const URL: &str = "https://hooks.example.com/webhooks/hubspot?connection=42";

/// The instant every test calls "now": 2026-05-28T20:26:40Z.
pub(crate) const NOW_UNIX: i64 = 1_780_000_000;

/// [`NOW_UNIX`] as a time.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW_UNIX, 0).unwrap()
}

/// `now()` shifted by `seconds`.
pub(crate) fn now_plus(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(NOW_UNIX + seconds, 0).unwrap()
}

/// A secret from test text.
pub(crate) fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// A header map with these names (any case) and values.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// A POST of `body` to [`URL`] with `headers`.
pub(crate) fn post<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        method: "POST",
        url: URL,
        headers,
        body,
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub(crate) fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = common::keyed::<HmacSha256>(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `body` under `key`.
pub(crate) fn hmac_sha1(key: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = common::keyed::<HmacSha1>(key).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The rejection in `result`, failing the test if it verified.
pub(crate) fn rejection(result: Result<Vec<VerifiedEvent>, WebhookError>) -> WebhookRejection {
    match result {
        Ok(events) => panic!("expected a rejection, got {events:?}"),
        Err(error) => error.reason,
    }
}

/// The dedupe keys of `events`, in order.
pub(crate) fn dedupe_keys(events: &[VerifiedEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.dedupe_key.as_str())
        .collect()
}

/// The audience the Gmail push subscription is configured with.
pub(crate) const GMAIL_AUDIENCE: &str = "https://hooks.example.com/webhooks/gmail";

/// The push subscription's service account.
pub(crate) const GMAIL_SERVICE_ACCOUNT: &str = "gmail-push@example-project.iam.gserviceaccount.com";

/// The key id of [`GMAIL_KEY`] in [`gmail_jwks`].
pub(crate) const GMAIL_KEY_ID: &str = "4b7a1e0c9d3f2a6b8e5d7c1f0a9b3e2d6c4f8a1b";

/// The key id of [`GMAIL_OTHER_KEY`] in [`gmail_jwks`].
pub(crate) const GMAIL_OTHER_KEY_ID: &str = "0f3e9d2c8b1a7f6e5d4c3b2a1f0e9d8c7b6a5f4e";

/// A test-only RSA key standing in for one of Google's, generated for these tests and used
/// nowhere else.
pub(crate) static GMAIL_KEY: LazyLock<EncodingKey> = LazyLock::new(|| {
    key_from_pem(include_str!(
        "../../test_data/gmail/webhooks/test_only_rsa_key.pem"
    ))
});

/// A second test-only RSA key, for key selection by `kid`.
pub(crate) static GMAIL_OTHER_KEY: LazyLock<EncodingKey> = LazyLock::new(|| {
    key_from_pem(include_str!(
        "../../test_data/gmail/webhooks/test_only_other_rsa_key.pem"
    ))
});

/// A PKCS#1 PEM private key as jsonwebtoken's DER key.
fn key_from_pem(pem: &str) -> EncodingKey {
    let base64_text: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    EncodingKey::from_rsa_der(&BASE64.decode(base64_text).unwrap())
}

/// A JWKS entry for `key` in the shape Google publishes.
fn google_jwk(key: &EncodingKey, key_id: &str) -> Value {
    let jwk = Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
    let AlgorithmParameters::RSA(rsa) = jwk.algorithm else {
        panic!("an RSA key makes an RSA JWK");
    };
    json!({"e": rsa.e, "kid": key_id, "n": rsa.n, "use": "sig", "alg": "RS256", "kty": "RSA"})
}

/// A JWKS document, as Google publishes it, with both test keys.
pub(crate) fn gmail_jwks() -> String {
    json!({"keys": [
        google_jwk(&GMAIL_KEY, GMAIL_KEY_ID),
        google_jwk(&GMAIL_OTHER_KEY, GMAIL_OTHER_KEY_ID)
    ]})
    .to_string()
}

/// The claims of a token Pub/Sub sends, issued 10 minutes before `now()`, expiring 50 minutes
/// after.
pub(crate) fn gmail_claims() -> Value {
    json!({
        "aud": GMAIL_AUDIENCE,
        "azp": "113774264463038321964",
        "email": GMAIL_SERVICE_ACCOUNT,
        "email_verified": true,
        "exp": NOW_UNIX + 3000,
        "iat": NOW_UNIX - 600,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964"
    })
}

/// An RS256 token with `claims`, signed by `key` and naming `key_id`.
pub(crate) fn gmail_token(key: &EncodingKey, key_id: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key_id.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}
