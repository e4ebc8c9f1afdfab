//! Provider adapters for HubSpot, Salesforce, Stripe, Zendesk, Intercom and Gmail, as a plain library
//! that other services can depend on: no database, no server, no environment, no files. Everything
//! (client ids and secrets, base URLs, keys, the clock) comes in as values.
//!
//! - [`ProviderKind`] names the six providers; [`ProviderSpec`] holds each one as data (endpoints,
//!   scopes, PKCE, token lifetimes, paging, rate-limit headers), every URL overridable for a sandbox
//!   or a local mock.
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

mod client;
mod error;
mod fields;
mod gmail;
mod http;
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
mod validation;
pub mod webhooks;
mod zendesk;

pub use client::{
    AccountInfo, INTERCOM_API_VERSION, ProviderClient, RequestBudget, STRIPE_API_VERSION, objects,
};
pub use error::ProviderError;
pub use http::{Clock, HttpCore, Response, RetryPolicy, Sleeper, SystemClock, TokioSleeper};
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
pub use validation::{StripeKeyKind, check_stripe_api_key};
pub use webhooks::{
    VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest, WebhookVerifier,
};
