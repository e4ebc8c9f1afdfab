//! The provider-data cache (seed 000): values per connection and key with a time to live, and a
//! cleanup of expired rows. It never holds a token: values are checked before they are stored.

use anyhow::Context as _;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::integration_cache;
use providers::Clock;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, Set};
use serde_json::Value;
use uuid::Uuid;

use crate::EngineError;

/// Object keys that may hold a credential; a value containing one is refused.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "client_secret",
    "api_key",
    "password",
    "secret",
];

/// Per-connection cached provider data.
#[derive(Debug, Clone)]
pub struct IntegrationCache {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl IntegrationCache {
    /// A cache on `db`.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// Stores `data` under `key` for `ttl`, replacing what was there.
    pub async fn put(
        &self,
        connection_id: Uuid,
        key: &str,
        data: Value,
        ttl: chrono::Duration,
    ) -> Result<(), EngineError> {
        if let Some(path) = secret_path(&data, "") {
            return Err(EngineError::InvalidInput(format!(
                "cache values never hold credentials (found `{path}`)"
            )));
        }
        let now = self.now();
        integration_cache::Entity::insert(integration_cache::ActiveModel {
            id: Set(Uuid::new_v4()),
            connection_id: Set(connection_id),
            cache_key: Set(key.to_owned()),
            cache_data: Set(data),
            expires_at: Set(now + ttl),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                integration_cache::Column::ConnectionId,
                integration_cache::Column::CacheKey,
            ])
            .update_columns([
                integration_cache::Column::CacheData,
                integration_cache::Column::ExpiresAt,
                integration_cache::Column::CreatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .context("put: writing")?;
        Ok(())
    }

    /// The unexpired value under `key`, if any.
    pub async fn get(&self, connection_id: Uuid, key: &str) -> Result<Option<Value>, EngineError> {
        let row = integration_cache::Entity::find()
            .filter(integration_cache::Column::ConnectionId.eq(connection_id))
            .filter(integration_cache::Column::CacheKey.eq(key))
            .filter(integration_cache::Column::ExpiresAt.gt(self.now()))
            .one(&self.db)
            .await
            .context("get: reading")?;
        Ok(row.map(|row| row.cache_data))
    }

    /// Deletes expired rows; returns how many.
    pub async fn cleanup_expired(&self) -> Result<u64, EngineError> {
        let deleted = integration_cache::Entity::delete_many()
            .filter(integration_cache::Column::ExpiresAt.lte(self.now()))
            .exec(&self.db)
            .await
            .context("cleanup_expired: writing")?;
        Ok(deleted.rows_affected)
    }
}

/// The path of the first object key in `value` that names a credential.
fn secret_path(value: &Value, prefix: &str) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, inner)| {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
                Some(path)
            } else {
                secret_path(inner, &path)
            }
        }),
        Value::Array(items) => items.iter().find_map(|inner| secret_path(inner, prefix)),
        _ => None,
    }
}
