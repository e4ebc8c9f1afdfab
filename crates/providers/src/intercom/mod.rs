//! Intercom: search by `updated_at`, companies by scroll (`reader.rs`); data attributes
//! (`fields.rs`); signed notifications (`webhook.rs`, per app). Every call pins
//! [`crate::INTERCOM_API_VERSION`]; the workspace's region picks the API host. Tokens cannot be
//! revoked by API.

mod fields;
mod reader;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::adapter::Adapter;
use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions};
use crate::spec::ConnectionConfig;
use crate::spec::{AuthMode, RateLimits, WaitHeader};
use crate::validation::Probe;
use crate::{ProviderError, ProviderKind, ProviderSpec};

/// The Intercom API version every request pins.
pub const INTERCOM_API_VERSION: &str = "2.14";

/// Intercom's [`Adapter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Intercom;

impl Adapter for Intercom {
    const KIND: ProviderKind = ProviderKind::Intercom;

    fn spec(self) -> ProviderSpec {
        ProviderSpec {
            kind: Self::KIND,
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
        }
    }

    fn objects(self) -> &'static [&'static str] {
        &["contacts", "companies", "conversations"]
    }

    fn probe(self) -> Probe {
        Probe {
            path: "/me",
            account_id: "/app/id_code",
            display_name: &["/app/name"],
            details: &[
                ("region", "/app/region"),
                ("time_zone", "/app/timezone"),
                ("admin_id", "/id"),
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

    /// The workspace's region picks the API host.
    fn configure(
        self,
        spec: &mut ProviderSpec,
        config: &ConnectionConfig,
    ) -> Result<(), ProviderError> {
        if let Some(region) = config.intercom_region {
            spec.api_base_url = spec
                .api_base_url
                .replace("://api.intercom.io", region.api_host());
        }
        Ok(())
    }

    fn version_header(self) -> Option<(&'static str, &'static str)> {
        Some(("Intercom-Version", INTERCOM_API_VERSION))
    }
}
