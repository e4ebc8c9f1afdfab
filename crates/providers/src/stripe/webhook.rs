//! Stripe webhooks: `Stripe-Signature: t=…,v1=…` (hex HMAC-SHA256 of `{t}.{body}` under an
//! endpoint secret, several during secret rolling) and the Event object in the body.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::Mac as _;
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::client::ProviderClient;
use crate::registration::WebhookRegistration;
use crate::webhooks::common::{self, HmacSha256};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};
use crate::{ProviderError, ProviderKind};

const PROVIDER: ProviderKind = ProviderKind::Stripe;
const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// How far `t` may be from `now`, either way (Stripe's SDKs: `DEFAULT_TOLERANCE` 300 s).
pub(crate) const TOLERANCE: TimeDelta = TimeDelta::seconds(300);

/// Verifies Stripe webhook requests against one or more endpoint secrets (`whsec_…`).
#[derive(Debug, Clone)]
pub struct StripeVerifier {
    endpoint_secrets: Vec<SecretString>,
}

impl StripeVerifier {
    /// A verifier accepting a signature made with any of `endpoint_secrets`: pass the old and the
    /// new secret while rolling. With no secret every request is a mismatch.
    pub fn new(endpoint_secrets: Vec<SecretString>) -> Self {
        Self { endpoint_secrets }
    }

    /// Checks that some `v1` signature in `Stripe-Signature` is the HMAC-SHA256 of `{t}.{body}`
    /// under some endpoint secret, rejects `t` more than 300 s from `now`, and returns the event,
    /// deduplicated on `stripe:{id}`, with the Connect `account` when present.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let header = common::required_header(PROVIDER, request, SIGNATURE_HEADER)?;
        let parsed = parse_signature_header(header)?;
        let signed_at = DateTime::from_timestamp(parsed.timestamp, 0).ok_or_else(|| {
            common::malformed_header(PROVIDER, SIGNATURE_HEADER, "t is out of range")
        })?;

        let matches = self.endpoint_secrets.iter().any(|secret| {
            let Some(mut mac) = common::keyed::<HmacSha256>(secret.expose_secret()) else {
                return false;
            };
            mac.update(parsed.timestamp_text.as_bytes());
            mac.update(b".");
            mac.update(request.body);
            parsed
                .v1_signatures
                .iter()
                .any(|signature| mac.clone().verify_slice(signature).is_ok())
        });
        if !matches {
            return Err(WebhookError::new(
                PROVIDER,
                WebhookRejection::SignatureMismatch,
            ));
        }
        common::check_replay_window(PROVIDER, signed_at, now, TOLERANCE)?;

        let event = common::json_body(PROVIDER, request.body)?;
        let id = common::text(event.get("id"))
            .ok_or_else(|| common::malformed_payload(PROVIDER, "event has no id"))?;
        let event_type = common::text(event.get("type"))
            .ok_or_else(|| common::malformed_payload(PROVIDER, "event has no type"))?;
        let object = event.get("data").and_then(|data| data.get("object"));
        Ok(vec![VerifiedEvent {
            provider: PROVIDER,
            dedupe_key: format!("stripe:{id}"),
            account_id: common::text(event.get("account")),
            event_type,
            object_type: common::text(object.and_then(|object| object.get("object"))),
            object_id: common::text(object.and_then(|object| object.get("id"))),
            occurred_at: common::unix_seconds(event.get("created")),
            payload: event,
        }])
    }
}

/// The parts of a `Stripe-Signature` header that matter.
#[derive(Debug)]
struct SignatureHeader<'h> {
    /// `t` exactly as sent, because the signed payload uses the text.
    timestamp_text: &'h str,
    timestamp: i64,
    /// Every `v1` value that is valid hex; others can't match and are skipped.
    v1_signatures: Vec<Vec<u8>>,
}

/// Splits `t=…,v1=…[,v1=…][,v0=…]` on `,` then `=`. The first `t` counts; schemes other than
/// `v1` are ignored, as Stripe's SDKs do.
fn parse_signature_header(header: &str) -> Result<SignatureHeader<'_>, WebhookError> {
    let mut timestamp_text = None;
    let mut n_v1 = 0_usize;
    let mut v1_signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if timestamp_text.is_none() => timestamp_text = Some(value.trim()),
            "v1" => {
                n_v1 += 1;
                if let Ok(signature) = hex::decode(value.trim()) {
                    v1_signatures.push(signature);
                }
            }
            _ => {}
        }
    }
    let timestamp_text = timestamp_text
        .ok_or_else(|| common::malformed_header(PROVIDER, SIGNATURE_HEADER, "no t"))?;
    let timestamp = timestamp_text
        .parse::<i64>()
        .map_err(|_| common::malformed_header(PROVIDER, SIGNATURE_HEADER, "t is not an integer"))?;
    if n_v1 == 0 {
        return Err(common::malformed_header(
            PROVIDER,
            SIGNATURE_HEADER,
            "no v1 signature",
        ));
    }
    Ok(SignatureHeader {
        timestamp_text,
        timestamp,
        v1_signatures,
    })
}

/// Stripe events a per-account endpoint subscribes to: changes of the synced objects.
const EVENTS: &[&str] = &[
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "invoice.created",
    "invoice.updated",
    "invoice.deleted",
    "charge.succeeded",
    "charge.updated",
    "charge.refunded",
];

#[derive(Deserialize)]
struct Endpoint {
    id: String,
    secret: Option<String>,
}

/// Creates a webhook endpoint for this account's key; the signing secret is returned only here.
pub(super) async fn register(
    client: &ProviderClient,
    endpoint_url: &str,
) -> Result<WebhookRegistration, ProviderError> {
    // `api_version` renders the endpoint's events in the version every request pins,
    // not the account's default.
    let mut form: Vec<(&str, &str)> = vec![
        ("url", endpoint_url),
        ("description", "integration platform sync"),
        ("api_version", super::STRIPE_API_VERSION),
    ];
    form.extend(EVENTS.iter().map(|event| ("enabled_events[]", *event)));
    let endpoint: Endpoint = client
        .call(
            client
                .request(Method::POST, "/v1/webhook_endpoints")
                .form(&form),
            "POST /v1/webhook_endpoints",
        )
        .await?;
    let secret = endpoint
        .secret
        .ok_or_else(|| client.missing("POST /v1/webhook_endpoints", "secret"))?;
    Ok(WebhookRegistration {
        id: endpoint.id,
        secret: SecretString::from(secret),
    })
}

#[cfg(test)]
mod tests;
