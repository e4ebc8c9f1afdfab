//! GraphQL errors with `extensions.code`: the codes of the runtime contract. Internal details are
//! logged with an id and never sent to the client.

use async_graphql::{Error, ErrorExtensions as _};
use integrations::EngineError;

/// The error codes clients branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No or bad token.
    Unauthenticated,
    /// Signed in, but not allowed.
    Forbidden,
    /// Does not exist, or is not visible to the caller.
    NotFound,
    /// The input is invalid.
    BadUserInput,
    /// The state changed under the request (stale version, already connected).
    Conflict,
    /// The provider failed.
    ProviderError,
    /// The database has no connection free (or is down) right now: retry shortly.
    ServiceUnavailable,
    /// Anything else; details are in the server log only.
    Internal,
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::ProviderError => "PROVIDER_ERROR",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// An error with a message safe for the client and its code.
pub fn error(code: Code, message: impl Into<String>) -> Error {
    Error::new(message.into()).extend_with(|_, extensions| extensions.set("code", code.as_str()))
}

/// An internal failure: logged in full with an id, returned as `INTERNAL` with the id only.
pub fn internal(cause: impl std::fmt::Display) -> Error {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %cause, "internal error in a GraphQL request");
    error(Code::Internal, format!("internal error (id {id})"))
}

/// Maps an engine error to the client's view of it.
pub fn engine(cause: EngineError) -> Error {
    match cause {
        EngineError::NotFound(what) => error(Code::NotFound, format!("{what} not found")),
        EngineError::Forbidden(why) => error(Code::Forbidden, why),
        EngineError::Conflict(why) => error(Code::Conflict, why),
        EngineError::InvalidInput(why) => error(Code::BadUserInput, why),
        EngineError::Provider(provider) => error(Code::ProviderError, provider.to_string()),
        EngineError::Unexpected(cause)
            if cause
                .downcast_ref::<sea_orm::DbErr>()
                .is_some_and(is_unavailable) =>
        {
            error(
                Code::ServiceUnavailable,
                "the database is busy; retry shortly",
            )
        }
        other => internal(other),
    }
}

/// Maps a database error: no connection to be had is `SERVICE_UNAVAILABLE` (the response becomes
/// a 503 with `Retry-After`); anything else is internal.
pub fn db(cause: sea_orm::DbErr) -> Error {
    if is_unavailable(&cause) {
        tracing::warn!(error = %cause, "no database connection for a GraphQL request");
        return error(
            Code::ServiceUnavailable,
            "the database is busy; retry shortly",
        );
    }
    internal(cause)
}

/// True when `cause` is a connection that could not be had (pool timeout, database down).
pub fn is_unavailable(cause: &sea_orm::DbErr) -> bool {
    matches!(cause, sea_orm::DbErr::ConnectionAcquire(_))
}

/// Gives every error a code: the ones async-graphql raises itself before any resolver runs
/// (syntax, validation, variable types, depth and complexity limits) are the client's input.
pub fn backfill_codes(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Code::BadUserInput.as_str());
        }
    }
}
