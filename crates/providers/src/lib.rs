//! Provider adapters for HubSpot, Salesforce, Stripe, Zendesk, Intercom and Gmail, as a plain library
//! that other services can depend on: no database, no server, no environment, no files. Everything
//! (client ids and secrets, base URLs, keys, the clock) comes in as values.
//!
//! The adapters land module by module; what is here is complete and tested:
//! - [`ProviderKind`]: the six providers and their stable names.
//! - [`webhooks`]: verifying webhook requests over their raw bytes (signatures, tokens, replay
//!   windows) and turning them into [`VerifiedEvent`]s with dedupe keys.

mod provider;
pub mod webhooks;

pub use provider::ProviderKind;
pub use webhooks::{
    VerifiedEvent, WebhookError, WebhookRejection, WebhookRequest, WebhookVerifier,
};
