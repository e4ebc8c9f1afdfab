//! The platform's HTTP server: the only crate that knows HTTP, environment variables and (as they
//! land) GraphQL, OAuth callbacks and webhooks. Today it serves `/healthz` and `/readyz`.

pub mod graphql;
mod health;
mod settings;

pub use health::router;
pub use settings::{Settings, SettingsError};

use sea_orm::DatabaseConnection;

/// What every request handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database pool.
    pub db: DatabaseConnection,
}

/// Opens the database, migrates it when it is the embedded SQLite default, and returns the router.
pub async fn build(settings: &Settings) -> anyhow::Result<axum::Router> {
    use anyhow::Context as _;
    use migration::MigratorTrait as _;

    let db = migration::connect(&settings.database_url, settings.database_pool_size).await?;
    if settings.is_sqlite() {
        migration::Migrator::up(&db, None)
            .await
            .context("migrating the embedded SQLite database")?;
        tracing::info!("embedded SQLite database migrated");
    }
    Ok(router(AppState { db }))
}
