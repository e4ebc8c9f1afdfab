//! HubSpot webhooks: signature v3 (base64 HMAC-SHA256 of method, URL, body and millisecond
//! timestamp under the app's client secret) and one event per entry of the batched JSON array.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::ProviderKind;
use crate::webhooks::common::{self, HmacSha256};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};

const PROVIDER: ProviderKind = ProviderKind::HubSpot;
const SIGNATURE_HEADER: &str = "X-HubSpot-Signature-v3";
const TIMESTAMP_HEADER: &str = "X-HubSpot-Request-Timestamp";

/// How far the signed timestamp may be from `now`, either way (HubSpot's SDK rejects requests
/// older than 300,000 ms).
pub(crate) const TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// Percent-encoded characters HubSpot decodes in the URL before signing it (the v3 docs' table),
/// so the verifier decodes them too. Other escapes are hashed as received.
const DECODED_IN_URL: [(&[u8; 2], u8); 12] = [
    (b"3A", b':'),
    (b"2F", b'/'),
    (b"3F", b'?'),
    (b"40", b'@'),
    (b"21", b'!'),
    (b"24", b'$'),
    (b"27", b'\''),
    (b"28", b'('),
    (b"29", b')'),
    (b"2A", b'*'),
    (b"2C", b','),
    (b"3B", b';'),
];

/// Verifies HubSpot webhook requests signed with signature v3.
#[derive(Debug, Clone)]
pub struct HubSpotVerifier {
    client_secret: SecretString,
}

impl HubSpotVerifier {
    /// A verifier for the app whose client secret is `client_secret`.
    pub fn new(client_secret: SecretString) -> Self {
        Self { client_secret }
    }

    /// Checks `X-HubSpot-Signature-v3` over `method + url + body + X-HubSpot-Request-Timestamp`,
    /// rejects timestamps more than 5 minutes from `now`, and returns one event per array entry,
    /// deduplicated on `hubspot:{portalId}:{subscriptionId}:{eventId}` because HubSpot does not
    /// guarantee `eventId` alone to be unique.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let signature_text = common::required_header(PROVIDER, request, SIGNATURE_HEADER)?;
        let timestamp_text = common::required_header(PROVIDER, request, TIMESTAMP_HEADER)?;
        let signature = BASE64
            .decode(signature_text)
            .map_err(|_| common::malformed_header(PROVIDER, SIGNATURE_HEADER, "not base64"))?;
        let signed_at = timestamp_text
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| {
                common::malformed_header(PROVIDER, TIMESTAMP_HEADER, "not epoch milliseconds")
            })?;

        let url = decode_signed_url_escapes(request.url);
        let parts: [&[u8]; 4] = [
            request.method.as_bytes(),
            &url,
            request.body,
            timestamp_text.as_bytes(),
        ];
        if !common::mac_matches::<HmacSha256>(
            self.client_secret.expose_secret(),
            &parts,
            &signature,
        ) {
            return Err(WebhookError::new(
                PROVIDER,
                WebhookRejection::SignatureMismatch,
            ));
        }
        common::check_replay_window(PROVIDER, signed_at, now, TOLERANCE)?;

        let body = common::json_body(PROVIDER, request.body)?;
        let Value::Array(entries) = body else {
            return Err(common::malformed_payload(
                PROVIDER,
                "body is not a JSON array of events",
            ));
        };
        entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| event(index, entry))
            .collect()
    }
}

/// One array entry as an event.
fn event(index: usize, entry: Value) -> Result<VerifiedEvent, WebhookError> {
    let field = |name: &str| {
        common::id_text(entry.get(name)).ok_or_else(|| {
            common::malformed_payload(PROVIDER, format!("event {index} has no {name}"))
        })
    };
    let portal_id = field("portalId")?;
    let subscription_id = field("subscriptionId")?;
    let event_id = field("eventId")?;
    let event_type = common::text(entry.get("subscriptionType")).ok_or_else(|| {
        common::malformed_payload(PROVIDER, format!("event {index} has no subscriptionType"))
    })?;
    // New-style subscriptions are `object.*` with the object named by `objectTypeId` (`0-1` is
    // contacts); classic ones name it before the dot (`contact.creation`).
    let object_type = match event_type.split_once('.') {
        Some(("object", _)) => common::id_text(entry.get("objectTypeId")),
        Some((object, _)) => Some(object.to_owned()),
        None => None,
    };
    Ok(VerifiedEvent {
        provider: PROVIDER,
        dedupe_key: format!("hubspot:{portal_id}:{subscription_id}:{event_id}"),
        account_id: Some(portal_id),
        object_type,
        object_id: common::id_text(entry.get("objectId")),
        occurred_at: common::unix_millis(entry.get("occurredAt")),
        event_type,
        payload: entry,
    })
}

/// The URL with the escapes in [`DECODED_IN_URL`] decoded (either case of hex digit).
fn decode_signed_url_escapes(url: &str) -> Vec<u8> {
    let bytes = url.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Some((_, character)) = DECODED_IN_URL
                .iter()
                .find(|(escape, _)| escape.eq_ignore_ascii_case(hex))
        {
            decoded.push(*character);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    decoded
}

#[cfg(test)]
mod tests;
