//! Zendesk: incremental exports (`reader.rs`); custom field lists (`fields.rs`); signed webhooks
//! registered per connection (`webhook.rs`). The account is its subdomain, which fills the spec's
//! `{subdomain}`; revoking deletes the current token.

mod fields;
mod reader;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;

use crate::adapter::Adapter;
use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions};
use crate::registration::WebhookRegistration;
use crate::spec::ConnectionConfig;
use crate::spec::{AuthMode, RateLimits, WaitHeader, strings};
use crate::validation::Probe;
use crate::{OAuthCredentials, TokenSet};
use crate::{ProviderError, ProviderKind, ProviderSpec};

/// Zendesk's [`Adapter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Zendesk;

impl Adapter for Zendesk {
    const KIND: ProviderKind = ProviderKind::Zendesk;

    fn spec(self) -> ProviderSpec {
        ProviderSpec {
            kind: Self::KIND,
            auth_modes: vec![AuthMode::OAuth2],
            authorize_url: "https://{subdomain}.zendesk.com/oauth/authorizations/new".to_owned(),
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
        }
    }

    fn objects(self) -> &'static [&'static str] {
        &["tickets", "users", "organizations"]
    }

    fn probe(self) -> Probe {
        Probe {
            path: "/api/v2/users/me.json",
            account_id: "/user/url",
            display_name: &["/user/name"],
            details: &[
                ("user_id", "/user/id"),
                ("role", "/user/role"),
                ("time_zone", "/user/iana_time_zone"),
            ],
        }
    }

    async fn read_page(
        self,
        client: &ProviderClient,
        object_type: &str,
        cursor: Option<&Cursor>,
        options: &ReadOptions,
    ) -> Result<Page, ProviderError> {
        reader::read_page(client, object_type, cursor, options).await
    }

    fn cursor_since(self, since: DateTime<Utc>) -> Result<Cursor, ProviderError> {
        Ok(reader::cursor_since(since))
    }

    fn watermark(self, cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
        reader::watermark(cursor)
    }

    async fn missing_fields<'a>(
        self,
        client: &ProviderClient,
        object_type: &str,
        wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        fields::missing(client, object_type, wanted).await
    }

    /// Fills `{subdomain}` in every URL; the subdomain is required and must be a plain name.
    fn configure(
        self,
        spec: &mut ProviderSpec,
        config: &ConnectionConfig,
    ) -> Result<(), ProviderError> {
        let subdomain =
            config
                .zendesk_subdomain
                .as_deref()
                .ok_or_else(|| ProviderError::Misconfigured {
                    provider: Self::KIND,
                    reason: "a Zendesk connection needs its subdomain".to_owned(),
                })?;
        let valid = !subdomain.is_empty()
            && subdomain.len() <= 63
            && subdomain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !subdomain.starts_with('-');
        if !valid {
            return Err(ProviderError::Misconfigured {
                provider: Self::KIND,
                reason: format!("`{subdomain}` is not a Zendesk subdomain"),
            });
        }
        let urls = [
            &mut spec.authorize_url,
            &mut spec.token_url,
            &mut spec.api_base_url,
        ]
        .into_iter()
        .chain(spec.revoke_url.as_mut());
        for url in urls {
            *url = url.replace("{subdomain}", subdomain);
        }
        Ok(())
    }

    /// The account is the subdomain, read from the validated user's API URL.
    fn account_id(self, raw: String) -> Option<String> {
        let url = url::Url::parse(&raw).ok()?;
        let host = url.host_str()?;
        Some(host.split('.').next().unwrap_or(host).to_owned())
    }

    fn registers_webhooks(self) -> bool {
        true
    }

    async fn register_webhook(
        self,
        client: &ProviderClient,
        endpoint_url: &str,
    ) -> Result<Option<WebhookRegistration>, ProviderError> {
        webhook::register(client, endpoint_url).await.map(Some)
    }

    fn webhook_path(self, id: &str) -> Option<String> {
        Some(format!("/api/v2/webhooks/{id}"))
    }

    /// Deletes the current OAuth token, authenticated by itself.
    fn revoke_request(
        self,
        http: &reqwest::Client,
        revoke_url: String,
        tokens: &TokenSet,
        _credentials: &OAuthCredentials,
    ) -> Result<Option<reqwest::RequestBuilder>, ProviderError> {
        Ok(Some(
            http.delete(revoke_url)
                .bearer_auth(tokens.access_token.expose_secret()),
        ))
    }
}
