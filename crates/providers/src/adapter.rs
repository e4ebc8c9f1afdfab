//! The one trait every provider folder implements, and the dispatch from a [`ProviderKind`] to it.
//!
//! A provider is a unit struct in `src/<provider>/mod.rs` (`hubspot::HubSpot`, …) whose
//! [`Adapter`] impl holds what is really that provider's: its spec, objects, reader, account
//! probe, webhook registration, revocation request and the hooks the shared HTTP core asks
//! (throttle bodies, rate-limit waits). Everything else ([`crate::ProviderClient`],
//! [`crate::HttpCore`], [`crate::OAuthClient`]) is shared code that reaches an adapter through
//! `dispatch!` (`dispatch.rs`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;

use crate::client::{AccountInfo, ProviderClient};
use crate::records::{Cursor, Page, ReadOptions};
use crate::registration::WebhookRegistration;
use crate::spec::{ConnectionConfig, RateLimits};
use crate::transport::{Response, Throttle};
use crate::validation::Probe;
use crate::{OAuthCredentials, ProviderError, ProviderKind, ProviderSpec, TokenSet};

/// One provider. Every method is called through `dispatch!` with the concrete adapter, so the
/// futures stay `Send` without boxing.
pub(crate) trait Adapter: Copy + Send + Sync + 'static {
    /// Which provider this is.
    const KIND: ProviderKind;

    /// The documented production values.
    fn spec(self) -> ProviderSpec;

    /// Fills the spec's per-connection parts (Zendesk's subdomain, Salesforce's sandbox,
    /// Intercom's region).
    fn configure(
        self,
        _spec: &mut ProviderSpec,
        _config: &ConnectionConfig,
    ) -> Result<(), ProviderError> {
        Ok(())
    }

    /// The object types it syncs, in the names `read_page` takes.
    fn objects(self) -> &'static [&'static str];

    /// A header every API call pins (`Stripe-Version`, `Intercom-Version`).
    fn version_header(self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// The account-info call and what of its answer is kept.
    fn probe(self) -> Probe;

    /// The account id in the probe's answer, from the raw value at [`Probe::account_id`].
    fn account_id(self, raw: String) -> Option<String> {
        Some(raw)
    }

    /// Validates the connection by its account-info call.
    async fn validate(self, client: &ProviderClient) -> Result<AccountInfo, ProviderError> {
        let probe = self.probe();
        crate::validation::run_probe(client, &probe, probe.path, |raw| self.account_id(raw)).await
    }

    /// The next page of `object_type` (checked to be one of [`Adapter::objects`]).
    async fn read_page(
        self,
        client: &ProviderClient,
        object_type: &str,
        cursor: Option<&Cursor>,
        options: &ReadOptions,
    ) -> Result<Page, ProviderError>;

    /// A cursor that reads what changed after `since`.
    fn cursor_since(self, since: DateTime<Utc>) -> Result<Cursor, ProviderError>;

    /// The time a cursor has read up to, when it is time-based.
    fn watermark(self, cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError>;

    /// The names in `wanted` (no repeats, not empty) that `object_type` lacks at the provider.
    /// The default finds none (free-form names).
    async fn missing_fields<'a>(
        self,
        _client: &ProviderClient,
        _object_type: &str,
        _wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        Ok(Vec::new())
    }

    /// Whether it takes a webhook registration per connection.
    fn registers_webhooks(self) -> bool {
        false
    }

    /// Registers a webhook delivering to `endpoint_url`; `None` where there is nothing to register.
    async fn register_webhook(
        self,
        _client: &ProviderClient,
        _endpoint_url: &str,
    ) -> Result<Option<WebhookRegistration>, ProviderError> {
        Ok(None)
    }

    /// The API path that deletes registered webhook `id`.
    fn webhook_path(self, _id: &str) -> Option<String> {
        None
    }

    /// The revocation request for `tokens` at `revoke_url`; `None` when this grant cannot be
    /// revoked. The default posts the refresh token (else the access token) as `token` (RFC 7009).
    fn revoke_request(
        self,
        http: &reqwest::Client,
        revoke_url: String,
        tokens: &TokenSet,
        _credentials: &OAuthCredentials,
    ) -> Result<Option<reqwest::RequestBuilder>, ProviderError> {
        let token = tokens
            .refresh_token
            .as_ref()
            .unwrap_or(&tokens.access_token)
            .expose_secret();
        Ok(Some(http.post(revoke_url).form(&[("token", token)])))
    }

    /// What an error answer's body says beyond its status (a spent quota, a rate limit sent as
    /// 403); `None` leaves the status to decide.
    fn throttle(self, _status: u16, _body: &[u8]) -> Option<Throttle> {
        None
    }

    /// How long a throttled answer asks to wait on the `attempt`-th try. The default reads the
    /// spec's [`RateLimits`].
    fn rate_limit_wait(
        self,
        limits: &RateLimits,
        response: &Response,
        now: DateTime<Utc>,
        attempt: usize,
    ) -> Option<Duration> {
        crate::transport::provider_wait(limits, response, now, attempt)
    }
}

#[cfg(test)]
mod tests;
