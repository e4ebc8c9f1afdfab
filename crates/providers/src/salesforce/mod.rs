//! Salesforce: `queryAll` by `SystemModstamp`, then getDeleted (`reader.rs`); describe checks
//! (`fields.rs`); outbound messages (`webhook.rs`, configured by an admin, so nothing is
//! registered). Accounts are read at the identity URL; a 403 `REQUEST_LIMIT_EXCEEDED` is the
//! org's spent quota (a pause).

mod fields;
mod reader;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::adapter::Adapter;
use crate::client::AccountInfo;
use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions};
use crate::spec::ConnectionConfig;
use crate::spec::{AuthMode, RateLimits, WaitHeader, strings};
use crate::transport::Throttle;
use crate::transport::body_contains;
use crate::validation::Probe;
use crate::{ProviderError, ProviderKind, ProviderSpec};

/// Salesforce's identity service (the token response's `id` URL): the user and org with their
/// names, which `userinfo` lacks.
pub(crate) const IDENTITY: Probe = Probe {
    path: "identity URL",
    account_id: "/organization_id",
    display_name: &["/display_name", "/username"],
    details: &[
        ("user_id", "/user_id"),
        ("username", "/username"),
        ("locale", "/locale"),
        ("time_zone", "/timezone"),
    ],
};

/// Whether `url` may receive the token as the identity URL: `https` on a Salesforce host, or the
/// API's own host (a sandbox's or a test's instance).
fn trusted_identity_url(client: &ProviderClient, url: &str) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let api_host = url::Url::parse(client.api_base_url())
        .ok()
        .and_then(|api| api.host_str().map(str::to_ascii_lowercase));
    let salesforce = url.scheme() == "https"
        && [".salesforce.com", ".force.com"]
            .iter()
            .any(|suffix| host.ends_with(suffix));
    salesforce || api_host.as_deref() == Some(host.as_str())
}

/// Salesforce's [`Adapter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Salesforce;

impl Adapter for Salesforce {
    const KIND: ProviderKind = ProviderKind::Salesforce;

    fn spec(self) -> ProviderSpec {
        ProviderSpec {
            kind: Self::KIND,
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
        }
    }

    fn objects(self) -> &'static [&'static str] {
        &["Account", "Contact", "Lead", "Opportunity"]
    }

    fn probe(self) -> Probe {
        Probe {
            path: "/services/oauth2/userinfo",
            account_id: "/organization_id",
            display_name: &["/name", "/preferred_username"],
            details: &[
                ("user_id", "/user_id"),
                ("username", "/preferred_username"),
                ("locale", "/locale"),
                ("time_zone", "/zoneinfo"),
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

    /// A sandbox org authorizes at `test.salesforce.com`.
    fn configure(
        self,
        spec: &mut ProviderSpec,
        config: &ConnectionConfig,
    ) -> Result<(), ProviderError> {
        if config.salesforce_sandbox {
            let urls = [&mut spec.authorize_url, &mut spec.token_url]
                .into_iter()
                .chain(spec.revoke_url.as_mut());
            for url in urls {
                *url = url.replace("://login.salesforce.com", "://test.salesforce.com");
            }
        }
        Ok(())
    }

    /// At the identity URL when the client has one (refused unless it is a Salesforce host, so
    /// the token goes nowhere else), else `userinfo`.
    async fn validate(self, client: &ProviderClient) -> Result<AccountInfo, ProviderError> {
        let Some(url) = client.identity_url() else {
            let probe = self.probe();
            return crate::validation::run_probe(client, &probe, probe.path, Some).await;
        };
        if !trusted_identity_url(client, url) {
            return Err(ProviderError::Misconfigured {
                provider: Self::KIND,
                reason: "the identity URL is not an https URL on a Salesforce host".to_owned(),
            });
        }
        crate::validation::run_probe(client, &IDENTITY, url, Some).await
    }

    /// The org's API request quota: a pause, never retried in place.
    fn throttle(self, status: u16, body: &[u8]) -> Option<Throttle> {
        (status == 403 && body_contains(body, "REQUEST_LIMIT_EXCEEDED")).then_some(Throttle::Quota)
    }
}
