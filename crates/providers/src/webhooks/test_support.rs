//! Helpers the webhook tests share: building requests and header maps, signing the way each
//! provider signs, and reading a rejection out of a result.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use hmac::Mac as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;

use super::common::{self, HmacSha1, HmacSha256};
use super::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};

/// The URL the test requests were sent to.
pub(super) const URL: &str = "https://hooks.example.com/webhooks/hubspot?connection=42";

/// The instant every test calls "now": 2026-05-28T20:26:40Z.
pub(super) const NOW_UNIX: i64 = 1_780_000_000;

/// [`NOW_UNIX`] as a time.
pub(super) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(NOW_UNIX, 0).unwrap()
}

/// `now()` shifted by `seconds`.
pub(super) fn now_plus(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(NOW_UNIX + seconds, 0).unwrap()
}

/// A secret from test text.
pub(super) fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

/// A header map with these names (any case) and values.
pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
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
pub(super) fn post<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest {
        method: "POST",
        url: URL,
        headers,
        body,
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub(super) fn hmac_sha256(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = common::keyed::<HmacSha256>(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `body` under `key`.
pub(super) fn hmac_sha1(key: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = common::keyed::<HmacSha1>(key).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The rejection in `result`, failing the test if it verified.
pub(super) fn rejection(result: Result<Vec<VerifiedEvent>, WebhookError>) -> WebhookRejection {
    match result {
        Ok(events) => panic!("expected a rejection, got {events:?}"),
        Err(error) => error.reason,
    }
}

/// The dedupe keys of `events`, in order.
pub(super) fn dedupe_keys(events: &[VerifiedEvent]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.dedupe_key.as_str())
        .collect()
}
