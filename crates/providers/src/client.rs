//! [`ProviderClient`]: one connection's authenticated access to a provider's API — account
//! validation and incremental reads — over the shared [`HttpCore`]. Provider differences live in
//! the per-provider folders' [`crate::adapter::Adapter`]s it dispatches to.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::dispatch::dispatch;
use crate::records::{Cursor, Page, ReadOptions};
use crate::{HttpCore, ProviderError, ProviderKind, ProviderSpec};

/// What a validation call learned about the connected account. Never holds a token.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountInfo {
    /// The provider's id of the account: HubSpot `portalId`, Salesforce organization id, Stripe
    /// account id, Zendesk subdomain, Intercom app id, Gmail address.
    pub external_account_id: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// A few non-secret facts, allow-listed per provider ([`AccountInfo::detail_keys`]); a key is
    /// absent when the provider sent no value:
    ///
    /// | Provider | Keys |
    /// | --- | --- |
    /// | HubSpot | `account_type`, `time_zone`, `currency`, `data_hosting_location` |
    /// | Salesforce | `user_id`, `username`, `locale`, `time_zone` |
    /// | Stripe | `country`, `default_currency`, `charges_enabled`, `type` |
    /// | Zendesk | `user_id`, `role`, `time_zone` |
    /// | Intercom | `region`, `time_zone`, `admin_id` |
    /// | Gmail | `history_id`, `messages_total` |
    pub details: Map<String, Value>,
    /// How long the provider took to answer, retries included.
    pub response_time: Duration,
}

/// A number of API calls shared by the clones of a client: each call takes one (its retries,
/// bounded by the retry policy, ride on it), and a call with none left fails with [`ProviderError::RequestBudgetExhausted`] before
/// anything is sent. A sync run gets one, so no reader loop can run away with the quota.
#[derive(Debug, Clone)]
pub struct RequestBudget {
    limit: u64,
    used: Arc<AtomicU64>,
}

impl RequestBudget {
    /// A budget of `limit` calls.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Calls made (or refused) so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed).min(self.limit)
    }

    /// The budget.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes one call; false when none is left.
    fn take(&self) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < self.limit).then_some(used + 1)
            })
            .is_ok()
    }
}

impl AccountInfo {
    /// The keys [`AccountInfo::details`] may hold for `kind`.
    pub fn detail_keys(kind: ProviderKind) -> Vec<&'static str> {
        dispatch!(kind, adapter => adapter.probe())
            .details
            .iter()
            .map(|(name, _)| *name)
            .collect()
    }
}

/// One connection's API access.
#[derive(Clone)]
pub struct ProviderClient {
    spec: ProviderSpec,
    http: HttpCore,
    access_token: SecretString,
    account_id: Option<String>,
    identity_url: Option<String>,
    budget: Option<RequestBudget>,
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ProviderClient")
            .field("provider", &self.spec.kind)
            .field("api_base_url", &self.spec.api_base_url)
            .field("access_token", &"[redacted]")
            .field("account_id", &self.account_id)
            .field("identity_url", &self.identity_url)
            .finish()
    }
}

impl ProviderClient {
    /// A client for `spec` (resolved for the connection; for Salesforce, with the token's
    /// `instance_url` as API base) calling with `access_token` (for Stripe, the API key).
    pub fn new(spec: ProviderSpec, http: HttpCore, access_token: SecretString) -> Self {
        Self {
            spec,
            http,
            access_token,
            account_id: None,
            identity_url: None,
            budget: None,
        }
    }

    /// Salesforce's identity URL (the `id` of the token response,
    /// `https://login.salesforce.com/id/{orgId}/{userId}`): [`ProviderClient::validate`] reads the
    /// account there (display name, org id, user id). It must be an `https` URL on a
    /// `salesforce.com` or `force.com` host, or on the API's own host; another is refused when
    /// validating, so the token is never sent elsewhere.
    pub fn with_identity_url(mut self, url: impl Into<String>) -> Self {
        self.identity_url = Some(url.into());
        self
    }

    pub(crate) fn identity_url(&self) -> Option<&str> {
        self.identity_url.as_deref()
    }

    pub(crate) fn api_base_url(&self) -> &str {
        &self.spec.api_base_url
    }

    /// Spends `budget` on this client's calls (see [`RequestBudget`]).
    pub fn with_request_budget(mut self, budget: RequestBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Remembers the account id learned by [`ProviderClient::validate`], to build record links.
    pub fn with_account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    pub(crate) fn http_core(&self) -> &HttpCore {
        &self.http
    }

    /// Which provider.
    pub fn provider(&self) -> ProviderKind {
        self.spec.kind
    }

    pub(crate) fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }

    /// The injected clock's time: readers date their windows with it, never with the system clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.http.now()
    }

    /// The object types this provider syncs, in the names `read_page` takes.
    pub fn objects(&self) -> &'static [&'static str] {
        objects(self.spec.kind)
    }

    /// Fetches the connected account's identity with the documented account-info call.
    pub async fn validate(&self) -> Result<AccountInfo, ProviderError> {
        let started = Instant::now();
        let mut info = dispatch!(self.spec.kind, adapter => adapter.validate(self).await)?;
        info.response_time = started.elapsed();
        Ok(info)
    }

    /// Reads the next page of `object_type` changed since `cursor` (from the beginning when `None`).
    pub async fn read_page(
        &self,
        object_type: &str,
        cursor: Option<&Cursor>,
        options: &ReadOptions,
    ) -> Result<Page, ProviderError> {
        if !self.objects().contains(&object_type) {
            return Err(ProviderError::Misconfigured {
                provider: self.provider(),
                reason: format!(
                    "no object type `{object_type}`; this provider syncs {}",
                    self.objects().join(", ")
                ),
            });
        }
        dispatch!(self.spec.kind, adapter => {
            adapter.read_page(self, object_type, cursor, options).await
        })
    }

    /// `path` on the API base URL (or `path` itself when it is already absolute).
    pub(crate) fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.spec.api_base_url)
        }
    }

    /// A request with the bearer token and the provider's pinned-version headers.
    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .client()
            .request(method, self.url(path))
            .bearer_auth(self.access_token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        match dispatch!(self.spec.kind, adapter => adapter.version_header()) {
            Some((name, version)) => builder.header(name, version),
            None => builder,
        }
    }

    /// Sends `builder` and decodes the JSON answer; `what` names the call in errors.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, ProviderError> {
        if let Some(budget) = &self.budget
            && !budget.take()
        {
            return Err(ProviderError::RequestBudgetExhausted {
                provider: self.provider(),
                limit: budget.limit(),
            });
        }
        let request = builder
            .build()
            .map_err(|error| ProviderError::Misconfigured {
                provider: self.provider(),
                reason: format!("{what}: {}", error.without_url()),
            })?;
        self.http.send_json(request, what).await
    }

    /// Decodes `body` as the JSON value a reader would (for tests of untrusted input).
    #[cfg(test)]
    pub(crate) fn decode_for_test(&self, body: &[u8]) -> Result<Value, ProviderError> {
        self.http.decode(body, "test body")
    }

    /// A decode error for a response that lacks something the adapter needs.
    pub(crate) fn missing(&self, what: &str, field: &str) -> ProviderError {
        ProviderError::Decode {
            provider: self.provider(),
            what: what.to_owned(),
            reason: format!("no `{field}` in the response"),
        }
    }
}

/// The object types each provider syncs, in the names [`ProviderClient::read_page`] takes.
pub fn objects(kind: ProviderKind) -> &'static [&'static str] {
    dispatch!(kind, adapter => adapter.objects())
}
