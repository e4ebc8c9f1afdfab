//! The engine's error: the cases callers branch on (not found, conflict, bad input, the provider's
//! own classified failure) and everything else as `Unexpected`, logged and never shown to users.

use providers::ProviderError;

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The thing asked for does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller may not do this (another user's authorization, another workspace's data).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request conflicts with the current state (a stale `sync_version`, a sync already
    /// running, a connection that is not active).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The input is invalid; nothing was changed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The provider failed; the variant says what to do next.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Another worker took over this sync (our lease expired); our page was not written.
    #[error("the sync lease was lost to another worker")]
    LeaseLost,
    /// The process is shutting down: the sync stopped at a page boundary, its checkpoint kept and
    /// its lease released, for any worker to resume at once.
    #[error("stopped at a page boundary for shutdown")]
    Stopped,
    /// A provider read would have started over again within one run (its position expired right
    /// after a full re-read): the run stops with its checkpoint kept, and is retried with backoff.
    #[error("runaway read stopped: {0}")]
    RunawayRead(String),
    /// Anything else: a database failure, a broken invariant. Shown with its whole chain (the
    /// step that failed, then the cause: "upserting provenance: no such table …").
    #[error("{0:#}")]
    Unexpected(#[from] anyhow::Error),
}

impl EngineError {
    /// True when running the same job again cannot succeed until someone changes something: the
    /// job does not parse, its connection or credentials are gone, the connection is not active,
    /// the grant was revoked, or our configuration is wrong. Such a job fails once, with its
    /// error recorded, and is not retried.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::NotFound(_) | Self::Forbidden(_) | Self::Conflict(_) | Self::InvalidInput(_) => {
                true
            }
            Self::Provider(error) => matches!(
                error,
                ProviderError::Reauthorize { .. } | ProviderError::Misconfigured { .. }
            ),
            Self::LeaseLost | Self::Stopped | Self::RunawayRead(_) | Self::Unexpected(_) => false,
        }
    }
}

impl From<sea_orm::DbErr> for EngineError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Unexpected(anyhow::Error::new(error))
    }
}
