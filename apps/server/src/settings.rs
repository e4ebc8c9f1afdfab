//! Typed settings read from the environment; the only place the platform reads environment variables.

use std::net::SocketAddr;

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`; the embedded SQLite file under `data/` when unset.
    pub database_url: String,
    /// `BIND_ADDR`, default `127.0.0.1:8080`.
    pub bind_addr: SocketAddr,
    /// `DATABASE_POOL_SIZE`, default 10.
    pub database_pool_size: u32,
}

/// A setting that is present but unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The variable holds a value of the wrong shape.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The environment variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let database_url = lookup("DATABASE_URL")
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| migration::DEFAULT_DATABASE_URL.to_owned());
        let bind_addr = lookup("BIND_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .map_err(|error: std::net::AddrParseError| SettingsError::Invalid {
                name: "BIND_ADDR",
                reason: error.to_string(),
            })?;
        let database_pool_size = match lookup("DATABASE_POOL_SIZE") {
            None => 10,
            Some(text) => text.parse().map_err(|_| SettingsError::Invalid {
                name: "DATABASE_POOL_SIZE",
                reason: format!("`{text}` is not a whole number"),
            })?,
        };
        Ok(Self {
            database_url,
            bind_addr,
            database_pool_size,
        })
    }

    /// True when the database is SQLite (the embedded default or another file).
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}
