//! What the verifiers share: reading headers, constant-time HMAC checks, the replay window and
//! reading ids and times out of JSON payloads.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;

use super::{WebhookError, WebhookRejection, WebhookRequest};
use crate::ProviderKind;

/// HMAC-SHA256, as HubSpot, Stripe and Zendesk sign.
pub(crate) type HmacSha256 = Hmac<sha2::Sha256>;

/// HMAC-SHA1, as Intercom signs.
pub(crate) type HmacSha1 = Hmac<sha1::Sha1>;

/// A MAC keyed with `secret`. HMAC takes keys of any length, so this cannot fail; the `Option`
/// keeps a future `InvalidLength` from becoming a panic.
pub(crate) fn keyed<M: Mac + KeyInit>(secret: &str) -> Option<M> {
    <M as KeyInit>::new_from_slice(secret.as_bytes()).ok()
}

/// Whether the MAC of `parts` under `secret` equals `tag`, compared in constant time.
pub(crate) fn mac_matches<M: Mac + KeyInit>(secret: &str, parts: &[&[u8]], tag: &[u8]) -> bool {
    let Some(mut mac) = keyed::<M>(secret) else {
        return false;
    };
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(tag).is_ok()
}

/// The value of header `name` (looked up case-insensitively), or a rejection naming it.
pub(crate) fn required_header<'r>(
    provider: ProviderKind,
    request: &WebhookRequest<'r>,
    name: &'static str,
) -> Result<&'r str, WebhookError> {
    optional_header(provider, request, name)?
        .ok_or_else(|| WebhookError::new(provider, WebhookRejection::MissingHeader(name)))
}

/// The value of header `name` if present; a value that isn't visible ASCII is malformed.
pub(crate) fn optional_header<'r>(
    provider: ProviderKind,
    request: &WebhookRequest<'r>,
    name: &'static str,
) -> Result<Option<&'r str>, WebhookError> {
    match request.headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|text| Some(text.trim()))
            .map_err(|_| malformed_header(provider, name, "not visible ASCII")),
    }
}

/// A [`WebhookRejection::MalformedHeader`] for `provider`.
pub(crate) fn malformed_header(
    provider: ProviderKind,
    header: &'static str,
    problem: &'static str,
) -> WebhookError {
    WebhookError::new(
        provider,
        WebhookRejection::MalformedHeader { header, problem },
    )
}

/// A [`WebhookRejection::MalformedPayload`] for `provider`.
pub(crate) fn malformed_payload(provider: ProviderKind, what: impl Into<String>) -> WebhookError {
    WebhookError::new(provider, WebhookRejection::MalformedPayload(what.into()))
}

/// Rejects a signed timestamp more than `tolerance` before or after `now`.
pub(crate) fn check_replay_window(
    provider: ProviderKind,
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance: TimeDelta,
) -> Result<(), WebhookError> {
    let age = now.signed_duration_since(signed_at);
    let tolerance_seconds = tolerance.num_seconds();
    if age > tolerance {
        return Err(WebhookError::new(
            provider,
            WebhookRejection::Stale {
                age_seconds: age.num_seconds(),
                tolerance_seconds,
            },
        ));
    }
    if -age > tolerance {
        return Err(WebhookError::new(
            provider,
            WebhookRejection::FromTheFuture {
                ahead_seconds: (-age).num_seconds(),
                tolerance_seconds,
            },
        ));
    }
    Ok(())
}

/// An id rendered as text: providers send ids as JSON strings or integers.
pub(crate) fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

/// A non-empty JSON string.
pub(crate) fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

/// A time sent as Unix seconds.
pub(crate) fn unix_seconds(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(value?.as_i64()?, 0)
}

/// A time sent as Unix milliseconds.
pub(crate) fn unix_millis(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(value?.as_i64()?)
}

/// A time sent as RFC 3339 text.
pub(crate) fn rfc3339(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// The body parsed as JSON, or a malformed-payload rejection that says where it failed.
pub(crate) fn json_body(provider: ProviderKind, body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body)
        .map_err(|error| malformed_payload(provider, format!("body is not JSON ({error})")))
}
