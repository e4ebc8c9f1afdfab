//! Providers as data: one [`ProviderSpec`] per provider with its OAuth endpoints, scopes, PKCE, extra
//! authorization parameters, token lifetime when the provider omits `expires_in`, API base URL,
//! and how it throttles ([`RateLimits`], read by the shared HTTP core). Code elsewhere exists only where a provider really
//! differs. Every URL can be overridden (a sandbox or a local mock).

use std::time::Duration;

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

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

impl ProviderSpec {
    /// The provider's documented production values (`../shared/PROVIDERS.md` has the sources).
    pub fn for_provider(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::HubSpot => Self {
                kind,
                auth_modes: vec![AuthMode::OAuth2],
                authorize_url: "https://app.hubspot.com/oauth/authorize".to_owned(),
                token_url: "https://api.hubapi.com/oauth/v3/token".to_owned(),
                revoke_url: Some(
                    "https://api.hubapi.com/oauth/v1/refresh-tokens/{token}".to_owned(),
                ),
                api_base_url: "https://api.hubapi.com".to_owned(),
                scopes: strings(&[
                    "oauth",
                    "crm.objects.contacts.read",
                    "crm.objects.companies.read",
                    "crm.objects.deals.read",
                ]),
                pkce: true,
                extra_authorize_params: Vec::new(),
                default_token_lifetime: Some(Duration::from_secs(30 * 60)),
                rate_limits: RateLimits {
                    wait_headers: vec![
                        WaitHeader::RetryAfter,
                        WaitHeader::WindowMillis("x-hubspot-ratelimit-interval-milliseconds"),
                    ],
                    body_waits: vec![
                        BodyWait {
                            contains: "You have reached your secondly limit",
                            per_attempt: Duration::from_secs(1),
                        },
                        BodyWait {
                            contains: "TEN_SECONDLY_ROLLING",
                            per_attempt: Duration::from_secs(10),
                        },
                    ],
                    retry_after_in_message: false,
                    first_backoff: Duration::from_millis(200),
                },
            },
            ProviderKind::Salesforce => Self {
                kind,
                auth_modes: vec![AuthMode::OAuth2],
                authorize_url: "https://login.salesforce.com/services/oauth2/authorize".to_owned(),
                token_url: "https://login.salesforce.com/services/oauth2/token".to_owned(),
                revoke_url: Some("https://login.salesforce.com/services/oauth2/revoke".to_owned()),
                api_base_url: "https://login.salesforce.com".to_owned(),
                scopes: strings(&["api", "refresh_token"]),
                pkce: true,
                extra_authorize_params: Vec::new(),
                // No expires_in: the session timeout, two hours by default.
                default_token_lifetime: Some(Duration::from_secs(2 * 60 * 60)),
                // The org-wide quota is a pause (`QuotaExhausted`), never retried in place.
                rate_limits: RateLimits {
                    wait_headers: vec![WaitHeader::RetryAfter],
                    body_waits: Vec::new(),
                    retry_after_in_message: false,
                    first_backoff: Duration::from_millis(500),
                },
            },
            ProviderKind::Stripe => Self {
                kind,
                auth_modes: vec![AuthMode::ApiKey, AuthMode::OAuth2],
                authorize_url: "https://connect.stripe.com/oauth/authorize".to_owned(),
                token_url: "https://connect.stripe.com/oauth/token".to_owned(),
                revoke_url: Some("https://connect.stripe.com/oauth/deauthorize".to_owned()),
                api_base_url: "https://api.stripe.com".to_owned(),
                scopes: strings(&["read_only"]),
                pkce: false,
                extra_authorize_params: Vec::new(),
                default_token_lifetime: None,
                // 0.5–1.0 s first, as Stripe advises for its rate limiter.
                rate_limits: RateLimits {
                    wait_headers: vec![WaitHeader::RetryAfter],
                    body_waits: Vec::new(),
                    retry_after_in_message: false,
                    first_backoff: Duration::from_millis(500),
                },
            },
            ProviderKind::Zendesk => Self {
                kind,
                auth_modes: vec![AuthMode::OAuth2],
                authorize_url: "https://{subdomain}.zendesk.com/oauth/authorizations/new"
                    .to_owned(),
                token_url: "https://{subdomain}.zendesk.com/oauth/tokens".to_owned(),
                revoke_url: Some(
                    "https://{subdomain}.zendesk.com/api/v2/oauth/tokens/current.json".to_owned(),
                ),
                api_base_url: "https://{subdomain}.zendesk.com".to_owned(),
                scopes: strings(&["read"]),
                pkce: true,
                extra_authorize_params: Vec::new(),
                // Lifetimes are configurable and not documented by default: refresh early rather
                // than treat a missing expires_in as "never expires".
                default_token_lifetime: Some(Duration::from_secs(30 * 60)),
                rate_limits: RateLimits {
                    wait_headers: vec![
                        WaitHeader::RetryAfter,
                        WaitHeader::ResetIn("ratelimit-reset"),
                    ],
                    body_waits: Vec::new(),
                    retry_after_in_message: false,
                    first_backoff: Duration::from_millis(500),
                },
            },
            ProviderKind::Intercom => Self {
                kind,
                auth_modes: vec![AuthMode::OAuth2],
                authorize_url: "https://app.intercom.com/oauth".to_owned(),
                token_url: "https://api.intercom.io/auth/eagle/token".to_owned(),
                revoke_url: None,
                api_base_url: "https://api.intercom.io".to_owned(),
                scopes: Vec::new(),
                pkce: false,
                extra_authorize_params: Vec::new(),
                default_token_lifetime: None,
                rate_limits: RateLimits {
                    wait_headers: vec![
                        WaitHeader::RetryAfter,
                        WaitHeader::ResetAt("x-ratelimit-reset"),
                    ],
                    body_waits: Vec::new(),
                    retry_after_in_message: false,
                    first_backoff: Duration::from_millis(500),
                },
            },
            ProviderKind::Gmail => Self {
                kind,
                auth_modes: vec![AuthMode::OAuth2],
                authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
                token_url: "https://oauth2.googleapis.com/token".to_owned(),
                revoke_url: Some("https://oauth2.googleapis.com/revoke".to_owned()),
                api_base_url: "https://gmail.googleapis.com".to_owned(),
                scopes: strings(&["https://www.googleapis.com/auth/gmail.readonly"]),
                pkce: true,
                extra_authorize_params: vec![
                    ("access_type".to_owned(), "offline".to_owned()),
                    ("prompt".to_owned(), "consent".to_owned()),
                    ("include_granted_scopes".to_owned(), "true".to_owned()),
                ],
                default_token_lifetime: Some(Duration::from_secs(60 * 60)),
                // Google: truncated exponential backoff from 1–2 s, or the hinted time.
                rate_limits: RateLimits {
                    wait_headers: vec![WaitHeader::RetryAfter],
                    body_waits: Vec::new(),
                    retry_after_in_message: true,
                    first_backoff: Duration::from_secs(1),
                },
            },
        }
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

    /// Fills per-connection placeholders: Zendesk's `{subdomain}` (required for Zendesk, refused
    /// when it is not a plain subdomain name).
    pub fn for_connection(mut self, config: &ConnectionConfig) -> Result<Self, ProviderError> {
        if self.kind == ProviderKind::Salesforce && config.salesforce_sandbox {
            for url in [&mut self.authorize_url, &mut self.token_url] {
                *url = url.replace("://login.salesforce.com", "://test.salesforce.com");
            }
            if let Some(url) = self.revoke_url.as_mut() {
                *url = url.replace("://login.salesforce.com", "://test.salesforce.com");
            }
        }
        if let (ProviderKind::Intercom, Some(region)) = (self.kind, config.intercom_region) {
            self.api_base_url = self
                .api_base_url
                .replace("://api.intercom.io", region.api_host());
        }
        let needs_subdomain = [&self.authorize_url, &self.token_url, &self.api_base_url]
            .iter()
            .any(|url| url.contains("{subdomain}"));
        if needs_subdomain {
            let subdomain = config.zendesk_subdomain.as_deref().ok_or_else(|| {
                ProviderError::Misconfigured {
                    provider: self.kind,
                    reason: "a Zendesk connection needs its subdomain".to_owned(),
                }
            })?;
            let valid = !subdomain.is_empty()
                && subdomain.len() <= 63
                && subdomain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !subdomain.starts_with('-');
            if !valid {
                return Err(ProviderError::Misconfigured {
                    provider: self.kind,
                    reason: format!("`{subdomain}` is not a Zendesk subdomain"),
                });
            }
            let fill = |url: &str| url.replace("{subdomain}", subdomain);
            self.authorize_url = fill(&self.authorize_url);
            self.token_url = fill(&self.token_url);
            self.api_base_url = fill(&self.api_base_url);
            self.revoke_url = self.revoke_url.as_deref().map(fill);
        }
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
    fn api_host(self) -> &'static str {
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
