//! Per-account webhook registration, where the provider's API allows it: Stripe webhook endpoints
//! (for API-key connections; the signing secret is returned only at creation) and Zendesk webhooks
//! (subscribed to user and organization events; the signing secret is read back). Other providers
//! send webhooks per app (HubSpot, Intercom, Gmail push, Stripe Connect) or are configured by an
//! admin (Salesforce outbound messages), so there is nothing to register per connection.

use secrecy::SecretString;

use crate::ProviderError;
use crate::client::ProviderClient;
use crate::dispatch::dispatch;

/// A webhook registered at the provider for one connection.
#[derive(Debug)]
pub struct WebhookRegistration {
    /// The provider's id of the webhook (to remove it on disconnect).
    pub id: String,
    /// The signing secret to verify its deliveries; store it sealed.
    pub secret: SecretString,
}

impl ProviderClient {
    /// Whether this provider takes a webhook registration per connection.
    pub fn registers_webhooks(&self) -> bool {
        dispatch!(self.provider(), adapter => adapter.registers_webhooks())
    }

    /// Registers a webhook delivering to `endpoint_url` and returns its id and signing secret;
    /// `None` where the provider has no per-connection webhooks.
    pub async fn register_webhook(
        &self,
        endpoint_url: &str,
    ) -> Result<Option<WebhookRegistration>, ProviderError> {
        dispatch!(self.provider(), adapter => adapter.register_webhook(self, endpoint_url).await)
    }

    /// Removes a webhook registered by [`ProviderClient::register_webhook`]; one already gone
    /// counts as removed.
    pub async fn unregister_webhook(&self, id: &str) -> Result<(), ProviderError> {
        let Some(path) = dispatch!(self.provider(), adapter => adapter.webhook_path(id)) else {
            return Ok(());
        };
        let request = self
            .request(reqwest::Method::DELETE, &path)
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
