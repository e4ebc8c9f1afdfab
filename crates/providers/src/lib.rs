//! Provider adapters for HubSpot, Salesforce, Stripe, Zendesk, Intercom and Gmail, as a plain library
//! that other services can depend on: no database, no server, no environment, no files. Everything
//! (client ids and secrets, base URLs, keys, the clock) comes in as values.
//!
//! The adapters land module by module; what is here is complete and tested:
//! - [`ProviderKind`]: the six providers and their stable names.
//! - [`Keyring`]: AES-256-GCM sealing of tokens with key ids, caller-bound associated data and
//!   rotation.
//! - [`HttpCore`]: the shared HTTP client — timeouts, bounded retries with backoff and jitter,
//!   provider-specific waits — and [`ProviderError`], whose variants say what to do next.
//!
//! - [`ProviderSpec`]: each provider as data (endpoints, scopes, PKCE, token lifetimes, paging,
//!   rate-limit headers), every URL overridable.
//! - [`webhooks`]: verifying webhook requests over their raw bytes (signatures, tokens, replay
//!   windows) and turning them into [`VerifiedEvent`]s with dedupe keys.
//!
//! Building an [`HttpCore`] installs ring as the process's default rustls crypto provider when the
//! process has none.

mod client;
mod error;
mod http;
mod hubspot;
mod intercom;
mod oauth;
mod provider;
mod records;
mod sealing;
mod spec;
mod stripe;
#[cfg(test)]
mod test_support;
mod validation;
pub mod webhooks;
mod zendesk;

pub use client::{AccountInfo, INTERCOM_API_VERSION, ProviderClient, STRIPE_API_VERSION, objects};
pub use error::ProviderError;
pub use http::{Clock, HttpCore, Response, RetryPolicy, Sleeper, SystemClock, TokioSleeper};
pub use oauth::{AuthorizationRequest, OAuthClient, OAuthCredentials, Revocation, TokenSet};
pub use provider::ProviderKind;
pub use records::{Cursor, Page, ReadOptions, Record};
pub use sealing::{Keyring, SealedSecret, SealingError, SealingKey};
pub use spec::{AuthMode, ConnectionConfig, IntercomRegion, Pagination, ProviderSpec};
pub use webhooks::{
    VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest, WebhookVerifier,
};
