//! Webhook verification for the six providers (each verifier lives in its provider's folder,
//! `src/<provider>/webhook.rs`, on the shared helpers of `webhooks/common.rs`): each verifier checks a request's signature (or
//! token, or organization) over the raw body bytes, with the current time passed in, and turns the
//! body into [`VerifiedEvent`]s with a stable dedupe key.
//!
//! What is checked, per provider:
//! - HubSpot ([`HubSpotVerifier`]): `X-HubSpot-Signature-v3`, base64 HMAC-SHA256 of method, URL,
//!   body and `X-HubSpot-Request-Timestamp` (epoch ms), within 5 minutes either way.
//! - Stripe ([`StripeVerifier`]): `Stripe-Signature: t=…,v1=…`, hex HMAC-SHA256 of `{t}.{body}`,
//!   any `v1` against any configured endpoint secret, within 300 s either way.
//! - Zendesk ([`ZendeskVerifier`]): `X-Zendesk-Webhook-Signature`, base64 HMAC-SHA256 of
//!   `X-Zendesk-Webhook-Signature-Timestamp` and body, within 300 s either way.
//! - Intercom ([`IntercomVerifier`]): `X-Hub-Signature: sha1=…`, hex HMAC-SHA1 of the body; no
//!   timestamp, so replays are caught only by the dedupe key.
//! - Salesforce ([`SalesforceVerifier`]): outbound messages carry no signature; the SOAP body's
//!   `OrganizationId` must be the connected org. Answer with [`salesforce_acknowledgement`].
//! - Gmail ([`GmailPushVerifier`]): Pub/Sub push with `Authorization: Bearer <Google OIDC JWT>`,
//!   RS256 against an injected JWKS, with issuer, audience, service-account email and lifetime
//!   checked against the injected `now`. The token does not cover the body.
//!
//! Every signature comparison is constant-time (`hmac`'s `verify_slice`). Every verifier returns a
//! [`WebhookError`] for any input it cannot accept and never panics.

pub(crate) mod common;
mod error;

#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::ProviderKind;

pub use crate::gmail::webhook::GmailPushVerifier;
pub use crate::hubspot::webhook::HubSpotVerifier;
pub use crate::intercom::webhook::IntercomVerifier;
pub use crate::salesforce::webhook::{SalesforceVerifier, salesforce_acknowledgement};
pub use crate::stripe::webhook::StripeVerifier;
pub use crate::zendesk::webhook::ZendeskVerifier;
pub use error::{WebhookError, WebhookRejection};

/// An incoming webhook request as the server received it, borrowed: nothing is copied or parsed
/// before a verifier looks at it.
#[derive(Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The HTTP method, e.g. `POST` (HubSpot signs it).
    pub method: &'a str,
    /// The full URL as received, with scheme, host, path and query (HubSpot signs it). Behind a
    /// proxy this is the public URL the provider called, not the internal one.
    pub url: &'a str,
    /// The request headers; names are looked up case-insensitively.
    pub headers: &'a http::HeaderMap,
    /// The raw body bytes, exactly as received: signatures cover these bytes, not a re-encoding.
    pub body: &'a [u8],
}

impl fmt::Debug for WebhookRequest<'_> {
    /// Header names and the body's length only: header values include bearer tokens and
    /// signatures, which don't belong in logs.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(http::HeaderName::as_str).collect();
        formatter
            .debug_struct("WebhookRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &header_names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// One provider event from a verified request, ready for the dedupe table and the sync queue.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    /// The provider that sent it.
    pub provider: ProviderKind,
    /// Unique per event across all providers and accounts; the same event redelivered has the same
    /// key. Formats: `hubspot:{portalId}:{subscriptionId}:{eventId}`, `stripe:{id}`,
    /// `zendesk:{id}` (event subscriptions) or `zendesk:invocation:{invocation id}` (others),
    /// `intercom:{id}`, `salesforce:{OrganizationId}:{Notification Id}`, `gmail:{messageId}`.
    pub dedupe_key: String,
    /// The provider account the event belongs to: HubSpot `portalId`, Stripe Connect `account`,
    /// Zendesk `account_id`, Intercom `app_id`, Salesforce `OrganizationId`, Gmail `emailAddress`.
    pub account_id: Option<String>,
    /// The provider's event name (`contact.creation`, `customer.updated`,
    /// `zen:event-type:user.active_changed`, `contact.user.created`), or `outbound_message`
    /// (Salesforce), `mailbox_changed` (Gmail), `webhook` (Zendesk trigger webhooks).
    pub event_type: String,
    /// The kind of record the event is about (`contact`, `customer`, `user`, `Account`, …).
    pub object_type: Option<String>,
    /// The provider's id of that record.
    pub object_id: Option<String>,
    /// When the provider says the event happened, if it says.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The event itself: the HubSpot array entry, the Stripe or Intercom event, the Zendesk body,
    /// the Salesforce notification as JSON (without the session id), or for Gmail the decoded
    /// notification `{"emailAddress", "historyId", "messageId", "publishTime", "subscription"}`
    /// with `historyId` as a string.
    pub payload: serde_json::Value,
}

/// A verifier for any one provider, for servers that route `/webhooks/{slug}` to a configured
/// verifier.
#[derive(Debug, Clone)]
pub enum WebhookVerifier {
    /// HubSpot signature v3.
    HubSpot(HubSpotVerifier),
    /// Salesforce outbound messages.
    Salesforce(SalesforceVerifier),
    /// Stripe signed events.
    Stripe(StripeVerifier),
    /// Zendesk signed webhooks.
    Zendesk(ZendeskVerifier),
    /// Intercom signed notifications.
    Intercom(IntercomVerifier),
    /// Gmail Pub/Sub push with a Google OIDC token.
    Gmail(GmailPushVerifier),
}

impl WebhookVerifier {
    /// The provider this verifier is for.
    pub fn provider(&self) -> ProviderKind {
        match self {
            Self::HubSpot(_) => ProviderKind::HubSpot,
            Self::Salesforce(_) => ProviderKind::Salesforce,
            Self::Stripe(_) => ProviderKind::Stripe,
            Self::Zendesk(_) => ProviderKind::Zendesk,
            Self::Intercom(_) => ProviderKind::Intercom,
            Self::Gmail(_) => ProviderKind::Gmail,
        }
    }

    /// Verifies `request` as of `now` and returns its events; see each provider's verifier.
    pub fn verify(
        &self,
        request: &WebhookRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<VerifiedEvent>, WebhookError> {
        match self {
            Self::HubSpot(verifier) => verifier.verify(request, now),
            Self::Salesforce(verifier) => verifier.verify(request, now),
            Self::Stripe(verifier) => verifier.verify(request, now),
            Self::Zendesk(verifier) => verifier.verify(request, now),
            Self::Intercom(verifier) => verifier.verify(request, now),
            Self::Gmail(verifier) => verifier.verify(request, now),
        }
    }
}
