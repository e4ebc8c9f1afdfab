//! Per-request database access. Every GraphQL request runs its reads in one transaction; on
//! PostgreSQL that transaction runs as role `authenticated` with the caller's id as the JWT claim,
//! so the seeds' row-level-security policies apply on top of the application's own checks (each
//! alone stops a cross-workspace read). Nothing tenant-owned is cached across requests; the
//! integration catalog (global, written only by migrations) is, for a minute.

use std::sync::Arc;

use sea_orm::{
    ConnectionTrait as _, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, Statement,
    TransactionTrait as _,
};
use tokio::sync::{Mutex, MutexGuard};

use super::auth::{AuthError, Viewer};

/// The request's transaction, shared by its resolvers (one at a time).
#[derive(Debug, Clone)]
pub struct RequestDb(Arc<Mutex<DatabaseTransaction>>);

impl RequestDb {
    /// Opens the request's transaction, with RLS for `viewer` on PostgreSQL.
    pub async fn begin(db: &DatabaseConnection, viewer: &Viewer) -> Result<Self, DbErr> {
        let transaction = db.begin().await?;
        if db.get_database_backend() == DbBackend::Postgres {
            // `SET LOCAL ROLE` and the claim in one statement (set_config(…, true) is SET LOCAL).
            transaction
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT set_config('role', 'authenticated', true), \
                            set_config('request.jwt.claim.sub', $1, true)",
                    [viewer.user_id.to_string().into()],
                ))
                .await?;
        }
        Ok(Self(Arc::new(Mutex::new(transaction))))
    }

    /// The transaction, for one resolver's statements.
    pub async fn lock(&self) -> MutexGuard<'_, DatabaseTransaction> {
        self.0.lock().await
    }

    /// Ends the transaction: commits when `commit`, else rolls back.
    pub async fn finish(self, commit: bool) -> Result<(), DbErr> {
        let Ok(mutex) = Arc::try_unwrap(self.0) else {
            // A resolver still holds it (it cannot after execution); dropping rolls back.
            return Ok(());
        };
        let transaction = mutex.into_inner();
        if commit {
            transaction.commit().await
        } else {
            transaction.rollback().await
        }
    }
}

/// What every resolver can reach for the current request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The signed-in user, or why there is none.
    pub viewer: Result<Viewer, AuthErrorCode>,
    /// The request's transaction (present when authenticated).
    pub db: Option<RequestDb>,
    /// The pool, for writes that run as the application after its own checks.
    pub pool: DatabaseConnection,
}

/// Why a request is unauthenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorCode {
    /// No bearer token.
    Missing,
    /// A bad token.
    Invalid,
}

impl From<AuthError> for AuthErrorCode {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Missing => Self::Missing,
            AuthError::Invalid => Self::Invalid,
        }
    }
}
