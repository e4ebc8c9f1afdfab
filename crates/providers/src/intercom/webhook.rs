//! Intercom webhooks: `X-Hub-Signature: sha1=…` (hex HMAC-SHA1 of the body under the app's
//! client secret) and the `notification_event` in the body. Intercom signs no timestamp, so a
//! replayed request verifies; the dedupe key is what stops it being processed twice.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret as _, SecretString};

use crate::ProviderKind;
use crate::webhooks::common::{self, HmacSha1};
use crate::webhooks::{VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest};

const PROVIDER: ProviderKind = ProviderKind::Intercom;
const SIGNATURE_HEADER: &str = "X-Hub-Signature";
const SIGNATURE_PREFIX: &str = "sha1=";

/// Verifies Intercom webhook notifications.
#[derive(Debug, Clone)]
pub struct IntercomVerifier {
    client_secret: SecretString,
}

impl IntercomVerifier {
    /// A verifier for the app whose client secret is `client_secret`.
    pub fn new(client_secret: SecretString) -> Self {
        Self { client_secret }
    }

    /// Checks `X-Hub-Signature` over the body and returns the notification, deduplicated on
    /// `intercom:{id}`, with `app_id` as the account and `topic` as the event type. `now` is
    /// unused: there is no timestamp to check.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        _now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        let header = common::required_header(PROVIDER, request, SIGNATURE_HEADER)?;
        let signature = header
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| common::malformed_header(PROVIDER, SIGNATURE_HEADER, "not sha1=<hex>"))
            .and_then(|hex_text| {
                hex::decode(hex_text).map_err(|_| {
                    common::malformed_header(PROVIDER, SIGNATURE_HEADER, "not sha1=<hex>")
                })
            })?;
        if !common::mac_matches::<HmacSha1>(
            self.client_secret.expose_secret(),
            &[request.body],
            &signature,
        ) {
            return Err(WebhookError::new(
                PROVIDER,
                WebhookRejection::SignatureMismatch,
            ));
        }

        let notification = common::json_body(PROVIDER, request.body)?;
        let id = common::text(notification.get("id"))
            .ok_or_else(|| common::malformed_payload(PROVIDER, "notification has no id"))?;
        let topic = common::text(notification.get("topic"))
            .ok_or_else(|| common::malformed_payload(PROVIDER, "notification has no topic"))?;
        let item = notification.get("data").and_then(|data| data.get("item"));
        Ok(vec![VerifiedEvent {
            provider: PROVIDER,
            dedupe_key: format!("intercom:{id}"),
            account_id: common::text(notification.get("app_id")),
            event_type: topic,
            object_type: common::text(item.and_then(|item| item.get("type"))),
            object_id: common::id_text(item.and_then(|item| item.get("id"))),
            occurred_at: common::unix_seconds(notification.get("created_at")),
            payload: notification,
        }])
    }
}

#[cfg(test)]
mod tests;
