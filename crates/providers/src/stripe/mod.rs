//! Stripe: a full list, then the Events API (`reader.rs`); documented field lists (`fields.rs`);
//! signed events and per-key webhook endpoints (`webhook.rs`). Every call pins
//! [`crate::STRIPE_API_VERSION`]; revoking deauthorizes the Connect account.

mod fields;
mod reader;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret as _;
use serde_json::Value;

use crate::adapter::Adapter;
use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions};
use crate::registration::WebhookRegistration;
use crate::spec::{AuthMode, RateLimits, WaitHeader, strings};
use crate::validation::Probe;
use crate::{OAuthCredentials, TokenSet};
use crate::{ProviderError, ProviderKind, ProviderSpec};

/// The Stripe API version every request pins, so account defaults never change a response shape.
pub const STRIPE_API_VERSION: &str = "2026-08-26.dahlia";

/// Stripe's [`Adapter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stripe;

impl Adapter for Stripe {
    const KIND: ProviderKind = ProviderKind::Stripe;

    fn spec(self) -> ProviderSpec {
        ProviderSpec {
            kind: Self::KIND,
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
        }
    }

    fn objects(self) -> &'static [&'static str] {
        &["customers", "invoices", "charges"]
    }

    fn probe(self) -> Probe {
        Probe {
            path: "/v1/account",
            account_id: "/id",
            display_name: &["/settings/dashboard/display_name", "/business_profile/name"],
            details: &[
                ("country", "/country"),
                ("default_currency", "/default_currency"),
                ("charges_enabled", "/charges_enabled"),
                ("type", "/type"),
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
        _client: &ProviderClient,
        object_type: &str,
        wanted: &[&'a str],
    ) -> Result<Vec<&'a str>, ProviderError> {
        Ok(fields::missing(object_type, wanted))
    }

    fn version_header(self) -> Option<(&'static str, &'static str)> {
        Some(("Stripe-Version", STRIPE_API_VERSION))
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
        Some(format!("/v1/webhook_endpoints/{id}"))
    }

    /// Deauthorizes the Connect account (`stripe_user_id` of the token response) with the
    /// platform's secret key.
    fn revoke_request(
        self,
        http: &reqwest::Client,
        revoke_url: String,
        tokens: &TokenSet,
        credentials: &OAuthCredentials,
    ) -> Result<Option<reqwest::RequestBuilder>, ProviderError> {
        let account = tokens
            .metadata
            .get("stripe_user_id")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::Decode {
                provider: Self::KIND,
                what: "stored token metadata".to_owned(),
                reason: "no stripe_user_id to deauthorize".to_owned(),
            })?;
        Ok(Some(
            http.post(revoke_url)
                .basic_auth(credentials.client_secret.expose_secret(), Some(""))
                .form(&[
                    ("client_id", credentials.client_id.as_str()),
                    ("stripe_user_id", account),
                ]),
        ))
    }
}
