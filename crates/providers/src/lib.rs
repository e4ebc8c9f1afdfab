//! Provider adapters for HubSpot, Salesforce, Stripe, Zendesk, Intercom and Gmail, as a plain library
//! that other services can depend on: no database, no server, no environment, no files. Everything
//! (client ids and secrets, base URLs, keys, the clock) comes in as values.
//!
//! - [`ProviderKind`] names the six providers; [`ProviderSpec`] holds each one as data (endpoints,
//!   scopes, PKCE, token lifetimes, how it throttles), every URL overridable for a sandbox or a
//!   local mock.
//! - [`OAuthClient`] runs OAuth2 through the `oauth2` crate: authorization URL with `state` and
//!   PKCE, code exchange, refresh (rotating refresh tokens included), revocation. Its
//!   [`TokenSet`] never says "never expires" unless the provider documents it.
//! - [`Keyring`] seals tokens with AES-256-GCM: a fresh nonce per seal, the key id stored with the
//!   ciphertext, caller-chosen associated data, rotation by [`Keyring::reseal`].
//! - [`ProviderClient`] validates a connection ([`AccountInfo`]) and reads objects incrementally in
//!   [`Page`]s of [`Record`]s with a [`Cursor`] to checkpoint.
//! - [`HttpCore`] is the shared HTTP client: timeouts, bounded retries with backoff and jitter,
//!   waits from `Retry-After` and the providers' own headers, an injectable [`Clock`] and
//!   [`Sleeper`]. Every failure is a [`ProviderError`] whose variant says what to do next.
//! - [`webhooks`] verifies webhook requests over their raw bytes and yields [`VerifiedEvent`]s with
//!   dedupe keys.
//!
//! Building an [`HttpCore`] installs ring as the process's default rustls crypto provider when the
//! process has none.
//!
//! # Example: connect a HubSpot account, store its tokens, read contacts
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use providers::{
//!     Cursor, HttpCore, Keyring, OAuthClient, OAuthCredentials, ProviderClient, ProviderKind,
//!     ProviderSpec, ReadOptions, RetryPolicy, SystemClock, TokenSet, TokioSleeper,
//!     secrecy::SecretString,
//! };
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let kind = ProviderKind::HubSpot;
//! let http = HttpCore::new(kind, RetryPolicy::default(), Arc::new(SystemClock), Arc::new(TokioSleeper))?;
//! let oauth = OAuthClient::new(
//!     ProviderSpec::for_provider(kind),
//!     OAuthCredentials {
//!         client_id: "your-client-id".to_owned(),
//!         client_secret: SecretString::from("your-client-secret"),
//!         redirect_uri: "https://app.example.com/oauth/callback".to_owned(),
//!     },
//!     http.clone(),
//! )?;
//!
//! // 1. Send the user to the provider; keep `state` and the PKCE verifier until they return.
//! let request = oauth.authorization_request()?;
//! println!("open {}", request.url);
//!
//! // 2. On the callback (after checking `state`), exchange the code.
//! let tokens = oauth.exchange_code("code-from-callback", request.pkce_verifier.as_ref()).await?;
//!
//! // 3. Store the tokens sealed, bound to the row they belong to.
//! let keyring = Keyring::parse(&SecretString::from("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))?;
//! let associated_data = b"workspace:42/connection:7";
//! let sealed = tokens.seal(&keyring, associated_data)?; // store sealed.key_id and sealed.bytes
//! let tokens = TokenSet::open(&keyring, &sealed, associated_data)?;
//!
//! // 4. Validate the account and read contacts page by page, checkpointing the cursor.
//! let client = ProviderClient::new(ProviderSpec::for_provider(kind), http, tokens.access_token.clone());
//! let account = client.validate().await?;
//! let client = client.with_account_id(account.external_account_id);
//! let mut cursor: Option<Cursor> = None; // or the cursor stored by the last sync
//! loop {
//!     let page = client.read_page("contacts", cursor.as_ref(), &ReadOptions::default()).await?;
//!     // write page.records and page.cursor in one transaction here
//!     cursor = Some(page.cursor);
//!     if !page.has_more {
//!         break;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

//! # Example: read from a local mock, as this crate's own tests do
//!
//! Every adapter takes its base URLs as values, so a mock in the provider's documented shape
//! stands in for it. This example runs (with `wiremock`), and shows the objects, the pages and
//! the cursor to store.
//!
//! ```
//! use std::sync::Arc;
//!
//! use providers::{
//!     HttpCore, ProviderClient, ProviderKind, ProviderSpec, ReadOptions, RetryPolicy,
//!     SystemClock, TokioSleeper, secrecy::SecretString,
//! };
//! use serde_json::json;
//! use wiremock::matchers::{method, path};
//! use wiremock::{Mock, MockServer, ResponseTemplate};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hubspot = MockServer::start().await;
//! Mock::given(method("GET")).and(path("/account-info/v3/details"))
//!     .respond_with(ResponseTemplate::new(200).set_body_json(json!({
//!         "portalId": 62515, "uiDomain": "app.hubspot.com", "timeZone": "US/Eastern",
//!         "accountType": "STANDARD", "companyCurrency": "USD", "dataHostingLocation": "na1"
//!     })))
//!     .mount(&hubspot).await;
//! Mock::given(method("POST")).and(path("/crm/v3/objects/contacts/search"))
//!     .respond_with(ResponseTemplate::new(200).set_body_json(json!({
//!         "total": 1,
//!         "results": [{"id": "101", "properties": {"email": "ada@example.com",
//!             "lastmodifieddate": "2026-11-01T10:00:00.000Z"}, "updatedAt": "2026-11-01T10:00:00.000Z"}]
//!     })))
//!     .mount(&hubspot).await;
//! Mock::given(method("GET")).and(path("/crm/v3/objects/contacts"))
//!     .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
//!     .mount(&hubspot).await;
//!
//! let kind = ProviderKind::HubSpot;
//! assert_eq!(providers::objects(kind), ["contacts", "companies", "deals"]);
//! let spec = ProviderSpec::for_provider(kind).with_api_base_url(&hubspot.uri())?;
//! let http = HttpCore::new(kind, RetryPolicy::for_provider(kind), Arc::new(SystemClock), Arc::new(TokioSleeper))?;
//! let client = ProviderClient::new(spec, http, SecretString::from("access-token"));
//!
//! let account = client.validate().await?;
//! assert_eq!(account.external_account_id, "62515");
//! assert_eq!(account.details["time_zone"], "US/Eastern");
//!
//! // Search, then the archived list (deletes): two pages, then caught up.
//! let mut cursor = None;
//! let mut emails = Vec::new();
//! loop {
//!     let page = client.read_page("contacts", cursor.as_ref(), &ReadOptions::default()).await?;
//!     emails.extend(page.records.iter().filter_map(|record| record.fields.get("email").cloned()));
//!     cursor = Some(page.cursor); // store with the page's writes
//!     if !page.has_more {
//!         break;
//!     }
//! }
//! assert_eq!(emails, [json!("ada@example.com")]);
//! let watermark = cursor.and_then(|cursor| cursor.watermark(kind).ok().flatten());
//! assert_eq!(watermark.map(|time| time.to_rfc3339()), Some("2026-11-01T10:00:00+00:00".to_owned()));
//! # Ok(())
//! # }
//! ```
//!
//! # Objects and phases per provider
//!
//! | Provider | Objects ([`objects`]) | Phases of a read |
//! | --- | --- | --- |
//! | HubSpot | `contacts`, `companies`, `deals` | CRM search by last-modified time in windows under the 10,000 cap (a crowded millisecond by `hs_object_id`), then the archived list as deletes |
//! | Salesforce | `Account`, `Contact`, `Lead`, `Opportunity` | `queryAll` by `SystemModstamp` (soft deletes as `IsDeleted`), then getDeleted for hard deletes |
//! | Stripe | `customers`, `invoices`, `charges` | a full list on the first sync (or past the 30-day events horizon), then the Events API |
//! | Zendesk | `tickets`, `users`, `organizations` | incremental exports (cursor-based for tickets and users, time-based for organizations) |
//! | Intercom | `contacts`, `companies`, `conversations` | search by `updated_at` (companies: scroll) |
//! | Gmail | `messages` | profile, then the mailbox listing with one `messages.get` each, then history |
//!
//! Base URLs: [`ProviderSpec::with_api_base_url`] replaces the scheme, host and port and keeps no
//! path of its own; request paths are the providers' documented ones (`/crm/v3/…`,
//! `/services/data/v62.0/…`, `/v1/…`, `/api/v2/…`, `/gmail/v1/…`). Salesforce calls go to the
//! token response's `instance_url` (pass it as the API base) and validate at its `id` URL
//! ([`ProviderClient::with_identity_url`]). Zendesk's account id is the subdomain, read from the
//! validated user's API URL. [`AccountInfo::details`] keys are listed on [`AccountInfo`].

#![warn(missing_docs, rustdoc::broken_intra_doc_links)]

mod adapter;
mod client;
mod dispatch;
mod error;
mod fields;
mod gmail;
mod hubspot;
mod intercom;
mod oauth;
mod provider;
mod records;
mod registration;
mod salesforce;
mod sealing;
mod spec;
mod stripe;
#[cfg(test)]
mod test_support;
mod transport;
mod validation;
pub mod webhooks;
mod zendesk;

/// The `chrono` crate of this API's times ([`Record::updated_at`], [`Cursor::since`], [`Clock`]).
pub use chrono;
pub use client::{AccountInfo, ProviderClient, RequestBudget, objects};
pub use error::ProviderError;
/// The `http` crate of this API's headers ([`WebhookRequest::headers`], [`Response::headers`]).
pub use http;
pub use intercom::INTERCOM_API_VERSION;
pub use oauth::{AuthorizationRequest, OAuthClient, OAuthCredentials, Revocation, TokenSet};
pub use provider::ProviderKind;
pub use records::{Cursor, Page, ReadOptions, Record};
pub use registration::WebhookRegistration;
pub use sealing::{Keyring, SealedSecret, SealingError, SealingKey};
/// The `secrecy` crate this API's secrets are typed with.
pub use secrecy;
pub use spec::{
    AuthMode, BodyWait, ConnectionConfig, IntercomRegion, ProviderSpec, RateLimits, WaitHeader,
};
pub use stripe::STRIPE_API_VERSION;
pub use transport::{Clock, HttpCore, Response, RetryPolicy, Sleeper, SystemClock, TokioSleeper};
pub use validation::{StripeKeyKind, check_stripe_api_key};
pub use webhooks::{
    VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest, WebhookVerifier,
};
