//! The one place where the two back ends differ: column type names, defaults, and statements that
//! only PostgreSQL (row-level security, triggers, functions, `NOT VALID` constraints) or only SQLite
//! (inline foreign keys on added columns) understands.
//!
//! Migrations are lists of [`Stmt`]; [`run`] picks what applies to the connected back end and fills
//! the type placeholders, so no migration branches on the back end itself.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

/// The row-level-security test "the caller is a member of this row's workspace".
#[macro_export]
#[doc(hidden)]
macro_rules! member_of_workspace {
    () => {
        "workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm WHERE wm.user_id = auth.uid())"
    };
}

/// The row-level-security test "the caller is an OWNER or ADMIN of this row's workspace".
#[macro_export]
#[doc(hidden)]
macro_rules! admin_of_workspace {
    () => {
        "workspace_id IN (SELECT wm.workspace_id FROM workspace_members wm
            WHERE wm.user_id = auth.uid() AND wm.role IN ('OWNER', 'ADMIN'))"
    };
}

/// Declares `Migration`, running the module's `UP` and `DOWN` statement lists in a transaction on
/// both back ends (SQLite has transactional DDL too), so a failure never leaves half a migration.
#[macro_export]
#[doc(hidden)]
macro_rules! sql_migration {
    () => {
        /// This module's migration; its statements are `UP` and `DOWN`.
        #[derive(Debug, sea_orm_migration::prelude::DeriveMigrationName)]
        pub struct Migration;

        #[sea_orm_migration::prelude::async_trait::async_trait]
        impl sea_orm_migration::prelude::MigrationTrait for Migration {
            fn use_transaction(&self) -> Option<bool> {
                Some(true)
            }

            async fn up(
                &self,
                manager: &sea_orm_migration::prelude::SchemaManager,
            ) -> Result<(), sea_orm_migration::prelude::DbErr> {
                $crate::sql::run(manager, UP).await
            }

            async fn down(
                &self,
                manager: &sea_orm_migration::prelude::SchemaManager,
            ) -> Result<(), sea_orm_migration::prelude::DbErr> {
                $crate::sql::run(manager, DOWN).await
            }
        }
    };
}

/// One DDL or DML statement of a migration, tagged with the back ends it runs on.
///
/// Statements may use these placeholders:
/// `{uuid}` (PostgreSQL `UUID`, SQLite `uuid_text`, where sea-orm stores 16-byte blobs),
/// `{uuid_default}` (a random id when the row does not bring one),
/// `{tstz}` (`TIMESTAMPTZ` / text), `{now}` (the current time, in a format sea-orm reads back),
/// `{json}` (`JSONB` / text), `{bytes}` (`BYTEA` / `BLOB`), `{if_not_exists}` (PostgreSQL's
/// `IF NOT EXISTS` on `ADD COLUMN`, which SQLite lacks) and `{fk_definitions}` (on SQLite the inline
/// `REFERENCES integration_definitions (id) ON DELETE SET NULL` of a provenance column; PostgreSQL
/// adds that key later, by name, as seed 002's V004 does).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stmt {
    /// Runs on both back ends.
    Both(&'static str),
    /// Runs on PostgreSQL only (RLS, policies, triggers, functions, grants, `IF NOT EXISTS` columns).
    Postgres(&'static str),
    /// Runs on SQLite only (what PostgreSQL does in another statement, such as a foreign key added
    /// inline with its column because SQLite cannot add one afterwards).
    Sqlite(&'static str),
}

/// Runs the statements that apply to the connected back end, in order.
pub(crate) async fn run(manager: &SchemaManager<'_>, statements: &[Stmt]) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    let connection = manager.get_connection();
    for statement in statements {
        let Some(text) = text_for(backend, *statement) else {
            continue;
        };
        connection
            .execute_unprepared(&render(backend, text))
            .await?;
    }
    Ok(())
}

/// The statement's text if it runs on `backend`.
fn text_for(backend: DbBackend, statement: Stmt) -> Option<&'static str> {
    match (statement, backend) {
        (Stmt::Both(text), _) => Some(text),
        (Stmt::Postgres(text), DbBackend::Postgres) => Some(text),
        (Stmt::Sqlite(text), DbBackend::Sqlite) => Some(text),
        _ => None,
    }
}

/// Replaces the type placeholders with the back end's spelling.
pub(crate) fn render(backend: DbBackend, text: &str) -> String {
    let pairs: [(&str, &str); 8] = match backend {
        DbBackend::Postgres => [
            ("{uuid}", "UUID"),
            ("{uuid_default}", "DEFAULT gen_random_uuid()"),
            ("{tstz}", "TIMESTAMPTZ"),
            ("{now}", "now()"),
            ("{json}", "JSONB"),
            ("{bytes}", "BYTEA"),
            ("{if_not_exists}", "IF NOT EXISTS"),
            ("{fk_definitions}", ""),
        ],
        _ => [
            ("{uuid}", "uuid_text"),
            ("{uuid_default}", "DEFAULT (randomblob(16))"),
            ("{tstz}", "timestamp_with_timezone_text"),
            ("{now}", "(strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))"),
            ("{json}", "json_text"),
            ("{bytes}", "BLOB"),
            ("{if_not_exists}", ""),
            (
                "{fk_definitions}",
                "REFERENCES integration_definitions (id) ON DELETE SET NULL",
            ),
        ],
    };
    pairs
        .iter()
        .fold(text.to_owned(), |text, (placeholder, spelling)| {
            text.replace(placeholder, spelling)
        })
}
