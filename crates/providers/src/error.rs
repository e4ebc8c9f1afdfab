//! The one error type of the adapters. Its variants follow what the caller does next: re-authorize,
//! refresh and retry once, retry after a wait, pause until a quota resets, give up on the record,
//! fix the configuration, or resynchronize from scratch.

use std::time::Duration;

use crate::ProviderKind;

/// What went wrong talking to a provider. Messages name the provider and never contain a token,
/// a secret or a response body beyond the provider's own short error message.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderError {
    /// The grant is gone (`invalid_grant`, revoked, uninstalled): the user must connect again.
    /// Do not retry.
    #[error(
        "{provider}: authorization revoked or invalid; the account must be connected again ({reason})"
    )]
    Reauthorize {
        /// Which provider.
        provider: ProviderKind,
        /// The provider's reason, e.g. `invalid_grant`.
        reason: String,
    },
    /// The access token was refused (HTTP 401): refresh it once, then retry the call.
    #[error("{provider}: access token refused (401)")]
    Unauthorized {
        /// Which provider.
        provider: ProviderKind,
    },
    /// Rate limited, and waiting in place would take too long or retries ran out: retry after `wait`.
    #[error("{provider}: rate limited; retry after {wait:?}")]
    RateLimited {
        /// Which provider.
        provider: ProviderKind,
        /// How long to wait before the next call.
        wait: Duration,
    },
    /// A daily or org-wide quota is used up (Salesforce `REQUEST_LIMIT_EXCEEDED`, HubSpot daily
    /// limit): pause this connection's calls; this is not an authorization failure.
    #[error("{provider}: API quota exhausted ({detail})")]
    QuotaExhausted {
        /// Which provider.
        provider: ProviderKind,
        /// When the quota is known to reset, if the provider says.
        retry_after: Option<Duration>,
        /// The provider's description of the limit.
        detail: String,
    },
    /// The provider failed (5xx) or did not answer in time, after retries: retry later.
    #[error("{provider}: unavailable ({detail})")]
    Unavailable {
        /// Which provider.
        provider: ProviderKind,
        /// Status or timeout.
        detail: String,
    },
    /// The network failed before an answer (DNS, connection, TLS), after retries.
    #[error("{provider}: transport error ({detail})")]
    Transport {
        /// Which provider.
        provider: ProviderKind,
        /// The transport's description.
        detail: String,
    },
    /// The object asked for does not exist (404).
    #[error("{provider}: not found ({what})")]
    NotFound {
        /// Which provider.
        provider: ProviderKind,
        /// What was asked for.
        what: String,
    },
    /// The provider refused the request as made (other 4xx); retrying the same call will not help.
    #[error("{provider}: request rejected with HTTP {status}: {message}")]
    Rejected {
        /// Which provider.
        provider: ProviderKind,
        /// HTTP status.
        status: u16,
        /// The provider's error message, shortened.
        message: String,
    },
    /// Our side is misconfigured: bad client id or secret, a missing setting such as the Zendesk
    /// subdomain, an invalid URL.
    #[error("{provider}: misconfigured: {reason}")]
    Misconfigured {
        /// Which provider.
        provider: ProviderKind,
        /// What is wrong.
        reason: String,
    },
    /// The provider answered something we cannot read (malformed JSON, a missing field we need).
    #[error("{provider}: unexpected response for {what}: {reason}")]
    Decode {
        /// Which provider.
        provider: ProviderKind,
        /// Which call or object.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The caller's request budget for this piece of work (one sync run) is used up: the work
    /// stops here, and continues from its last checkpoint when run again.
    #[error("{provider}: the request budget of {limit} calls is used up")]
    RequestBudgetExhausted {
        /// Which provider.
        provider: ProviderKind,
        /// The budget.
        limit: u64,
    },
    /// The saved cursor is no longer valid (Gmail's history id expired): resynchronize fully.
    #[error("{provider}: the sync cursor expired; a full resync is needed")]
    CursorExpired {
        /// Which provider.
        provider: ProviderKind,
    },
}

impl ProviderError {
    /// The provider the error came from.
    pub fn provider(&self) -> ProviderKind {
        match self {
            Self::Reauthorize { provider, .. }
            | Self::Unauthorized { provider }
            | Self::RateLimited { provider, .. }
            | Self::QuotaExhausted { provider, .. }
            | Self::Unavailable { provider, .. }
            | Self::Transport { provider, .. }
            | Self::NotFound { provider, .. }
            | Self::Rejected { provider, .. }
            | Self::Misconfigured { provider, .. }
            | Self::Decode { provider, .. }
            | Self::RequestBudgetExhausted { provider, .. }
            | Self::CursorExpired { provider } => *provider,
        }
    }

    /// True when retrying the same call shortly may succeed without anyone changing anything:
    /// a rate limit's short wait, a 5xx, a transport failure. An exhausted quota is not: it
    /// resets on the provider's schedule (hours; `QuotaExhausted::retry_after` when known), and
    /// a caller retrying on this flag would only spend more of the next quota.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::Transport { .. }
        )
    }

    /// Shortens a provider message for an error (no body dumps in logs).
    pub(crate) fn short(message: &str) -> String {
        const LIMIT: usize = 300;
        let message = message.trim();
        match message.char_indices().nth(LIMIT) {
            Some((cut, _)) => format!("{}…", &message[..cut]),
            None => message.to_owned(),
        }
    }
}
