//! Why a webhook request was rejected: the provider it claimed to come from and what was wrong,
//! worded so that no secret, signature or token ever appears in the message.

use crate::ProviderKind;

/// A webhook request that did not verify, or a verifier that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} webhook rejected: {reason}")]
pub struct WebhookError {
    /// The provider whose verifier rejected the request.
    pub provider: ProviderKind,
    /// What was wrong.
    pub reason: WebhookRejection,
}

impl WebhookError {
    /// A rejection by `provider` for `reason`.
    pub fn new(provider: ProviderKind, reason: WebhookRejection) -> Self {
        Self { provider, reason }
    }
}

/// What was wrong with a webhook request. The caller answers every variant with a 4xx and does not
/// process the body; the variants exist so that logs and metrics can tell attacks, clock drift and
/// misconfiguration apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// A header the provider always sends is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A signature, timestamp or authorization header is present but cannot be parsed.
    #[error("malformed {header} header: {problem}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it (never the value itself).
        problem: &'static str,
    },
    /// No configured secret produces the signature the request carries: a forged or altered
    /// request, or the wrong secret configured.
    #[error("signature does not match")]
    SignatureMismatch,
    /// The signed timestamp is older than the replay window allows.
    #[error("timestamp is {age_seconds} s old, more than the {tolerance_seconds} s allowed")]
    Stale {
        /// How old the request is, in seconds.
        age_seconds: i64,
        /// The largest age accepted, in seconds.
        tolerance_seconds: i64,
    },
    /// The signed timestamp lies further in the future than clock skew explains.
    #[error(
        "timestamp is {ahead_seconds} s in the future, more than the {tolerance_seconds} s allowed"
    )]
    FromTheFuture {
        /// How far ahead of `now` the timestamp is, in seconds.
        ahead_seconds: i64,
        /// The largest skew accepted, in seconds.
        tolerance_seconds: i64,
    },
    /// The body verified (or needs no signature) but is not in the provider's documented shape.
    #[error("malformed payload: {0}")]
    MalformedPayload(String),
    /// The request is authentic in form but for another account or organization.
    #[error("request is for {actual}, expected {expected}")]
    WrongAccount {
        /// The account or organization this verifier was configured for.
        expected: String,
        /// The one the request names.
        actual: String,
    },
    /// A bearer token (Gmail's Pub/Sub push) failed verification.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// The verifier's own configuration (a key set, an expected id) is unusable.
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
}
