//! Per-account webhook registration, where the provider's API allows it: Stripe webhook endpoints
//! (for API-key connections; the signing secret is returned only at creation) and Zendesk webhooks
//! (subscribed to user and organization events; the signing secret is read back). Other providers
//! send webhooks per app (HubSpot, Intercom, Gmail push, Stripe Connect) or are configured by an
//! admin (Salesforce outbound messages), so there is nothing to register per connection.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::client::ProviderClient;
use crate::{ProviderError, ProviderKind};

/// Stripe events a per-account endpoint subscribes to: changes of the synced objects.
const STRIPE_EVENTS: &[&str] = &[
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

/// Zendesk event types a per-account webhook subscribes to (ticket activity comes from triggers).
const ZENDESK_EVENTS: &[&str] = &[
    "zen:event-type:user.created",
    "zen:event-type:user.deleted",
    "zen:event-type:organization.created",
    "zen:event-type:organization.deleted",
];

/// A webhook registered at the provider for one connection.
#[derive(Debug)]
pub struct WebhookRegistration {
    /// The provider's id of the webhook (to remove it on disconnect).
    pub id: String,
    /// The signing secret to verify its deliveries; store it sealed.
    pub secret: SecretString,
}

#[derive(Deserialize)]
struct StripeEndpoint {
    id: String,
    secret: Option<String>,
}

#[derive(Deserialize)]
struct ZendeskWebhookEnvelope {
    webhook: ZendeskWebhook,
}

#[derive(Deserialize)]
struct ZendeskWebhook {
    id: String,
}

#[derive(Deserialize)]
struct ZendeskSecretEnvelope {
    signing_secret: ZendeskSecret,
}

#[derive(Deserialize)]
struct ZendeskSecret {
    secret: String,
}

impl ProviderClient {
    /// Whether this provider takes a webhook registration per connection.
    pub fn registers_webhooks(&self) -> bool {
        matches!(
            self.provider(),
            ProviderKind::Stripe | ProviderKind::Zendesk
        )
    }

    /// Registers a webhook delivering to `endpoint_url` and returns its id and signing secret;
    /// `None` where the provider has no per-connection webhooks.
    pub async fn register_webhook(
        &self,
        endpoint_url: &str,
    ) -> Result<Option<WebhookRegistration>, ProviderError> {
        match self.provider() {
            ProviderKind::Stripe => {
                // `api_version` renders the endpoint's events in the version every request pins,
                // not the account's default.
                let mut form: Vec<(&str, &str)> = vec![
                    ("url", endpoint_url),
                    ("description", "integration platform sync"),
                    ("api_version", crate::STRIPE_API_VERSION),
                ];
                form.extend(
                    STRIPE_EVENTS
                        .iter()
                        .map(|event| ("enabled_events[]", *event)),
                );
                let endpoint: StripeEndpoint = self
                    .call(
                        self.request(Method::POST, "/v1/webhook_endpoints")
                            .form(&form),
                        "POST /v1/webhook_endpoints",
                    )
                    .await?;
                let secret = endpoint
                    .secret
                    .ok_or_else(|| self.missing("POST /v1/webhook_endpoints", "secret"))?;
                Ok(Some(WebhookRegistration {
                    id: endpoint.id,
                    secret: SecretString::from(secret),
                }))
            }
            ProviderKind::Zendesk => {
                let body = json!({"webhook": {
                    "name": "Integration platform sync",
                    "endpoint": endpoint_url,
                    "http_method": "POST",
                    "request_format": "json",
                    "status": "active",
                    "subscriptions": ZENDESK_EVENTS,
                }});
                let created: ZendeskWebhookEnvelope = self
                    .call(
                        self.request(Method::POST, "/api/v2/webhooks").json(&body),
                        "POST /api/v2/webhooks",
                    )
                    .await?;
                let id = created.webhook.id;
                let what = format!("GET /api/v2/webhooks/{id}/signing_secret");
                let secret: ZendeskSecretEnvelope = self
                    .call(
                        self.request(
                            Method::GET,
                            &format!("/api/v2/webhooks/{id}/signing_secret"),
                        ),
                        &what,
                    )
                    .await?;
                Ok(Some(WebhookRegistration {
                    id,
                    secret: SecretString::from(secret.signing_secret.secret),
                }))
            }
            _ => Ok(None),
        }
    }

    /// Removes a webhook registered by [`ProviderClient::register_webhook`]; one already gone
    /// counts as removed.
    pub async fn unregister_webhook(&self, id: &str) -> Result<(), ProviderError> {
        let path = match self.provider() {
            ProviderKind::Stripe => format!("/v1/webhook_endpoints/{id}"),
            ProviderKind::Zendesk => format!("/api/v2/webhooks/{id}"),
            _ => return Ok(()),
        };
        let request = self
            .request(Method::DELETE, &path)
            .build()
            .map_err(|error| ProviderError::Misconfigured {
                provider: self.provider(),
                reason: format!("DELETE {path}: {}", error.without_url()),
            })?;
        match self.http_core().send(request).await {
            Ok(_) | Err(ProviderError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests;
