//! HubSpot: CRM search by last-modified time, then the archived list (`reader.rs`); property
//! checks (`fields.rs`); signature v3 webhooks (`webhook.rs`). Webhooks are per app, so nothing is
//! registered per connection. A 429 naming the `DAILY` policy is a spent quota (a pause).

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
use crate::spec::{AuthMode, BodyWait, RateLimits, WaitHeader, strings};
use crate::transport::Throttle;
use crate::transport::body_contains;
use crate::validation::Probe;
use crate::{OAuthCredentials, TokenSet};
use crate::{ProviderError, ProviderKind, ProviderSpec};

/// HubSpot's [`Adapter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubSpot;

impl Adapter for HubSpot {
    const KIND: ProviderKind = ProviderKind::HubSpot;

    fn spec(self) -> ProviderSpec {
        ProviderSpec {
            kind: Self::KIND,
            auth_modes: vec![AuthMode::OAuth2],
            authorize_url: "https://app.hubspot.com/oauth/authorize".to_owned(),
            token_url: "https://api.hubapi.com/oauth/v3/token".to_owned(),
            revoke_url: Some("https://api.hubapi.com/oauth/v1/refresh-tokens/{token}".to_owned()),
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
        }
    }

    fn objects(self) -> &'static [&'static str] {
        &["contacts", "companies", "deals"]
    }

    fn probe(self) -> Probe {
        Probe {
            path: "/account-info/v3/details",
            account_id: "/portalId",
            display_name: &["/uiDomain"],
            details: &[
                ("account_type", "/accountType"),
                ("time_zone", "/timeZone"),
                ("currency", "/companyCurrency"),
                ("data_hosting_location", "/dataHostingLocation"),
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

    /// HubSpot deletes the refresh token named in the path; a grant without one cannot be revoked.
    fn revoke_request(
        self,
        http: &reqwest::Client,
        revoke_url: String,
        tokens: &TokenSet,
        _credentials: &OAuthCredentials,
    ) -> Result<Option<reqwest::RequestBuilder>, ProviderError> {
        let Some(refresh) = tokens.refresh_token.as_ref() else {
            return Ok(None);
        };
        let encoded: String =
            url::form_urlencoded::byte_serialize(refresh.expose_secret().as_bytes()).collect();
        Ok(Some(http.delete(revoke_url.replace("{token}", &encoded))))
    }

    /// The daily limit (`"policyName": "DAILY"`): waiting seconds would not help.
    fn throttle(self, status: u16, body: &[u8]) -> Option<Throttle> {
        (status == 429 && body_contains(body, "\"DAILY\"")).then_some(Throttle::Quota)
    }
}
