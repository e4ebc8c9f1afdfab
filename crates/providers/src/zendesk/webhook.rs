//! Zendesk webhooks: `X-Zendesk-Webhook-Signature` (base64 HMAC-SHA256 of the signature
//! timestamp followed by the body, under the webhook's signing secret) and the JSON body, either
//! an event-subscription event or a trigger's own JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::Value;
use serde_json::json;

use crate::client::ProviderClient;
use crate::registration::WebhookRegistration;
use crate::webhooks::common::{self, HmacSha256};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};
use crate::{ProviderError, ProviderKind};

const PROVIDER: ProviderKind = ProviderKind::Zendesk;
const SIGNATURE_HEADER: &str = "X-Zendesk-Webhook-Signature";
const TIMESTAMP_HEADER: &str = "X-Zendesk-Webhook-Signature-Timestamp";
const INVOCATION_ID_HEADER: &str = "X-Zendesk-Webhook-Invocation-Id";
const ACCOUNT_ID_HEADER: &str = "X-Zendesk-Account-Id";

/// Event-subscription events have a `type` with this prefix and a unique `id`.
const EVENT_TYPE_PREFIX: &str = "zen:event-type:";

/// How far the signature timestamp may be from `now`, either way. Zendesk documents no replay
/// window; this is our choice.
pub(crate) const TOLERANCE: TimeDelta = TimeDelta::seconds(300);

/// Verifies Zendesk webhook requests.
#[derive(Debug, Clone)]
pub struct ZendeskVerifier {
    signing_secret: SecretString,
}

impl ZendeskVerifier {
    /// A verifier for the webhook whose signing secret is `signing_secret` (used as-is).
    pub fn new(signing_secret: SecretString) -> Self {
        Self { signing_secret }
    }

    /// Checks `X-Zendesk-Webhook-Signature` over `timestamp + body`, rejects a timestamp more
    /// than 300 s from `now`, and returns the event. Event-subscription events (a `type` of
    /// `zen:event-type:…`) are deduplicated on `zendesk:{id}`; anything else (trigger webhooks,
    /// whose JSON is user-defined, or an empty body) on
    /// `zendesk:invocation:{X-Zendesk-Webhook-Invocation-Id}`.
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
        let signed_at = DateTime::parse_from_rfc3339(timestamp_text)
            .map_err(|_| common::malformed_header(PROVIDER, TIMESTAMP_HEADER, "not ISO-8601"))?
            .with_timezone(&Utc);

        let parts: [&[u8]; 2] = [timestamp_text.as_bytes(), request.body];
        if !common::mac_matches::<HmacSha256>(
            self.signing_secret.expose_secret(),
            &parts,
            &signature,
        ) {
            return Err(WebhookError::new(
                PROVIDER,
                WebhookRejection::SignatureMismatch,
            ));
        }
        common::check_replay_window(PROVIDER, signed_at, now, TOLERANCE)?;

        // GET and DELETE webhooks may have no body at all.
        let payload = if request.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            common::json_body(PROVIDER, request.body)?
        };
        let invocation_id = common::optional_header(PROVIDER, request, INVOCATION_ID_HEADER)?
            .filter(|id| !id.is_empty());
        let event_type = common::text(payload.get("type"))
            .filter(|event_type| event_type.starts_with(EVENT_TYPE_PREFIX));
        let event_id = event_type
            .as_ref()
            .and_then(|_| common::text(payload.get("id")));
        let dedupe_key = match (&event_id, invocation_id) {
            (Some(id), _) => format!("zendesk:{id}"),
            (None, Some(invocation_id)) => format!("zendesk:invocation:{invocation_id}"),
            (None, None) => {
                return Err(common::malformed_payload(
                    PROVIDER,
                    format!("no event id and no {INVOCATION_ID_HEADER} header"),
                ));
            }
        };
        let account_id = match common::id_text(payload.get("account_id")) {
            Some(account_id) => Some(account_id),
            None => common::optional_header(PROVIDER, request, ACCOUNT_ID_HEADER)?
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
        };
        // `subject` is `zen:{object type}:{object id}`, e.g. `zen:user:1234`. A trigger's JSON is
        // user-defined, so its fields are not read.
        let is_event = event_type.is_some();
        let (object_type, object_id) = match payload
            .get("subject")
            .filter(|_| is_event)
            .and_then(Value::as_str)
            .and_then(|subject| subject.strip_prefix("zen:"))
            .and_then(|subject| subject.split_once(':'))
        {
            Some((object_type, object_id)) if !object_type.is_empty() && !object_id.is_empty() => {
                (Some(object_type.to_owned()), Some(object_id.to_owned()))
            }
            _ => (None, None),
        };
        Ok(vec![VerifiedEvent {
            provider: PROVIDER,
            dedupe_key,
            account_id,
            event_type: event_type.unwrap_or_else(|| "webhook".to_owned()),
            object_type,
            object_id,
            occurred_at: common::rfc3339(payload.get("time").filter(|_| is_event)),
            payload,
        }])
    }
}

/// Zendesk event types a per-account webhook subscribes to (ticket activity comes from triggers).
const EVENTS: &[&str] = &[
    "zen:event-type:user.created",
    "zen:event-type:user.deleted",
    "zen:event-type:organization.created",
    "zen:event-type:organization.deleted",
];

#[derive(Deserialize)]
struct WebhookEnvelope {
    webhook: Webhook,
}

#[derive(Deserialize)]
struct Webhook {
    id: String,
}

#[derive(Deserialize)]
struct SecretEnvelope {
    signing_secret: Secret,
}

#[derive(Deserialize)]
struct Secret {
    secret: String,
}

/// Creates a webhook subscribed to [`EVENTS`] and reads its signing secret back.
pub(super) async fn register(
    client: &ProviderClient,
    endpoint_url: &str,
) -> Result<WebhookRegistration, ProviderError> {
    let body = json!({"webhook": {
        "name": "Integration platform sync",
        "endpoint": endpoint_url,
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
        "subscriptions": EVENTS,
    }});
    let created: WebhookEnvelope = client
        .call(
            client.request(Method::POST, "/api/v2/webhooks").json(&body),
            "POST /api/v2/webhooks",
        )
        .await?;
    let id = created.webhook.id;
    let what = format!("GET /api/v2/webhooks/{id}/signing_secret");
    let secret: SecretEnvelope = client
        .call(
            client.request(
                Method::GET,
                &format!("/api/v2/webhooks/{id}/signing_secret"),
            ),
            &what,
        )
        .await?;
    Ok(WebhookRegistration {
        id,
        secret: SecretString::from(secret.signing_secret.secret),
    })
}

#[cfg(test)]
mod tests;
