//! Providers as data: one [`ProviderSpec`] per provider (written in its folder's `mod.rs`) with its
//! OAuth endpoints, scopes, PKCE, extra authorization parameters, token lifetime when the provider
//! omits `expires_in`, API base URL, and how it throttles ([`RateLimits`], read by the shared HTTP
//! core). Every field is read by shared code: `auth_modes` by the engine's key connections, the
//! OAuth fields by [`crate::OAuthClient`], `api_base_url` by [`crate::ProviderClient`],
//! `rate_limits` by [`crate::HttpCore`]. Every URL can be overridden (a sandbox or a local mock).

use std::time::Duration;

use crate::dispatch::dispatch;
use crate::{ProviderError, ProviderKind};

/// Where a provider says how long to wait after it throttled a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitHeader {
    /// `Retry-After`: seconds, or an HTTP date.
    RetryAfter,
    /// The UNIX time the window resets (Intercom's `X-RateLimit-Reset`).
    ResetAt(&'static str),
    /// Seconds until the window resets (Zendesk's `ratelimit-reset`).
    ResetIn(&'static str),
    /// The rolling window's length in milliseconds: waiting one window frees it (HubSpot's
    /// `X-HubSpot-RateLimit-Interval-Milliseconds`).
    WindowMillis(&'static str),
}

/// A throttled answer whose body names its limit, with a wait that grows with each attempt
/// (HubSpot's SDK: the search "secondly limit" waits 1 s × attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyWait {
    /// Text the body contains.
    pub contains: &'static str,
    /// The wait for the first attempt; the n-th waits n times this.
    pub per_attempt: Duration,
}

/// How a provider throttles, as the shared HTTP core reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    /// Headers that give the wait, tried in order.
    pub wait_headers: Vec<WaitHeader>,
    /// Bodies that give the wait (tried before the headers).
    pub body_waits: Vec<BodyWait>,
    /// The error message may carry `Retry after <RFC 3339 time>` (Google).
    pub retry_after_in_message: bool,
    /// The first backoff when the provider gives no wait; with jitter it is between this and
    /// twice this, and it doubles with each attempt.
    pub first_backoff: Duration,
}

/// How a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// OAuth2 authorization code.
    OAuth2,
    /// An API key entered by an admin (Stripe restricted keys).
    ApiKey,
}

/// Everything about one provider that is data rather than code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// Which provider.
    pub kind: ProviderKind,
    /// How connections authenticate, preferred first.
    pub auth_modes: Vec<AuthMode>,
    /// The authorization endpoint. Zendesk's holds `{subdomain}`.
    pub authorize_url: String,
    /// The token endpoint (code exchange and refresh).
    pub token_url: String,
    /// The revocation endpoint, where the provider has one.
    pub revoke_url: Option<String>,
    /// The REST API base. Zendesk's holds `{subdomain}`; Salesforce's is replaced by the token
    /// response's `instance_url`; Intercom's by the workspace's region.
    pub api_base_url: String,
    /// Scopes requested by default.
    pub scopes: Vec<String>,
    /// Whether the provider accepts PKCE (S256).
    pub pkce: bool,
    /// Extra authorization parameters (Google's `access_type=offline`, `prompt=consent`).
    pub extra_authorize_params: Vec<(String, String)>,
    /// The access token's lifetime when a token response has no `expires_in`; `None` only where the
    /// provider documents tokens that never expire (Intercom, Stripe Connect).
    pub default_token_lifetime: Option<Duration>,
    /// How it throttles: where its waits are, and the first backoff.
    pub rate_limits: RateLimits,
}

/// Owned copies of `values`.
pub(crate) fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

impl ProviderSpec {
    /// The provider's documented production values (`../shared/PROVIDERS.md` has the sources).
    pub fn for_provider(kind: ProviderKind) -> Self {
        dispatch!(kind, adapter => adapter.spec())
    }

    /// Points the authorization, token and revocation endpoints at another origin (scheme, host
    /// and port), keeping their paths: a sandbox or a local mock.
    pub fn with_auth_base_url(mut self, base_url: &str) -> Result<Self, ProviderError> {
        self.authorize_url = rebase(self.kind, &self.authorize_url, base_url)?;
        self.token_url = rebase(self.kind, &self.token_url, base_url)?;
        self.revoke_url = self
            .revoke_url
            .map(|url| rebase(self.kind, &url, base_url))
            .transpose()?;
        Ok(self)
    }

    /// Points the REST API at another base URL.
    pub fn with_api_base_url(mut self, base_url: &str) -> Result<Self, ProviderError> {
        let parsed = parse_url(self.kind, base_url)?;
        self.api_base_url = parsed.as_str().trim_end_matches('/').to_owned();
        Ok(self)
    }

    /// Fills the per-connection parts: Zendesk's `{subdomain}` (required for Zendesk, refused
    /// when it is not a plain subdomain name), a Salesforce sandbox's login host, Intercom's
    /// regional API host.
    pub fn for_connection(mut self, config: &ConnectionConfig) -> Result<Self, ProviderError> {
        dispatch!(self.kind, adapter => adapter.configure(&mut self, config))?;
        Ok(self)
    }
}

/// Per-connection settings that change a provider's URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Zendesk: the account's subdomain (`acme` for `acme.zendesk.com`).
    pub zendesk_subdomain: Option<String>,
    /// Salesforce: authorize against `test.salesforce.com` (a sandbox org).
    pub salesforce_sandbox: bool,
    /// Intercom: the workspace's region.
    pub intercom_region: Option<IntercomRegion>,
}

/// Intercom's regional API hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntercomRegion {
    /// `api.intercom.io`.
    Us,
    /// `api.eu.intercom.io`.
    Eu,
    /// `api.au.intercom.io`.
    Au,
}

impl IntercomRegion {
    pub(crate) fn api_host(self) -> &'static str {
        match self {
            Self::Us => "://api.intercom.io",
            Self::Eu => "://api.eu.intercom.io",
            Self::Au => "://api.au.intercom.io",
        }
    }

    /// The region named by `/me`'s `app.region` (`US`, `EU`, `AU`, any case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "us" => Some(Self::Us),
            "eu" => Some(Self::Eu),
            "au" => Some(Self::Au),
            _ => None,
        }
    }
}

fn parse_url(provider: ProviderKind, url: &str) -> Result<url::Url, ProviderError> {
    let parsed = url::Url::parse(url).map_err(|error| ProviderError::Misconfigured {
        provider,
        reason: format!("`{url}` is not a URL: {error}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ProviderError::Misconfigured {
            provider,
            reason: format!("`{url}` is not an http(s) URL"),
        });
    }
    Ok(parsed)
}

/// `url` with the origin of `base` (and `base`'s path prefix, if any) in place of its own.
fn rebase(provider: ProviderKind, url: &str, base: &str) -> Result<String, ProviderError> {
    let base = parse_url(provider, base)?;
    // Templates such as `{subdomain}` are not valid hosts: cut the path off textually.
    let path_start = url
        .find("://")
        .and_then(|scheme_end| {
            url[scheme_end + 3..]
                .find('/')
                .map(|index| scheme_end + 3 + index)
        })
        .unwrap_or(url.len());
    Ok(format!(
        "{}{}",
        base.as_str().trim_end_matches('/'),
        &url[path_start..]
    ))
}

#[cfg(test)]
mod tests;
