//! User edits of entity attributes: a user's value always wins over later syncs. An edit names the
//! `sync_version` it was made against (optimistic concurrency); a stale one is a conflict that
//! changes nothing. Clearing an override restores the latest value observed from the integration
//! (kept by every sync, even under the override), with its provenance, at once. A conflict (an
//! override and a newer, different provider value) is decided by [`AttributeEditor::resolve_conflict`].

use anyhow::Context as _;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::{
    attribute_definitions, entities, entity_attribute_history as history,
    entity_attribute_provenance as provenance, entity_attribute_values as attribute_values,
};
use providers::Clock;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ColumnTrait as _, DatabaseConnection, DatabaseTransaction, EntityTrait as _, QueryFilter as _,
    Set,
};
use serde_json::Value;
use uuid::Uuid;

use crate::lifecycle::SourceType;
use crate::{EngineError, is_attribute_key};

/// Writes user edits.
#[derive(Debug, Clone)]
pub struct AttributeEditor {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    user_id: Option<Uuid>,
    feed: Option<crate::ProgressFeed>,
}

impl AttributeEditor {
    /// An editor on `db`.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            user_id: None,
            feed: None,
        }
    }

    /// Where edits are announced on SQLite (PostgreSQL announces them with `pg_notify`).
    pub fn with_feed(mut self, feed: crate::ProgressFeed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Announces that `key` of `entity` changed: with the edit's transaction on PostgreSQL,
    /// after it commits elsewhere (the returned changes, for [`AttributeEditor::published`]).
    async fn announce(
        &self,
        transaction: &DatabaseTransaction,
        entity: &entities::Model,
        key: &str,
    ) -> Result<Option<crate::EntityChanges>, EngineError> {
        let changes = crate::EntityChanges {
            workspace_id: entity.workspace_id,
            entity_type: entity.entity_type.clone(),
            sync_run_id: None,
            user_id: self.user_id,
            changes: vec![crate::EntityChange {
                entity_id: entity.id,
                kind: crate::ChangeKind::Updated,
                keys: vec![key.to_owned()],
            }],
        };
        if changes
            .notify(transaction)
            .await
            .context("announce: notifying entity changes")?
        {
            return Ok(None);
        }
        Ok(Some(changes))
    }

    /// Publishes changes `announce` held back until the commit (SQLite).
    fn published(&self, changes: Option<crate::EntityChanges>) {
        if let (Some(feed), Some(changes)) = (&self.feed, changes) {
            feed.publish_changes(changes);
        }
    }

    /// Names the user whose edits these are, in the attributes' history.
    pub fn acting_as(mut self, user_id: Uuid) -> Self {
        self.user_id = Some(user_id);
        self
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// Sets attribute `key` of `entity_id` to `value` as a user override, if the entity is still
    /// at `expected_sync_version`. Returns the new version. A key the entity type does not have yet
    /// is defined on the fly.
    pub async fn update_attribute(
        &self,
        entity_id: Uuid,
        key: &str,
        value: Value,
        expected_sync_version: i64,
    ) -> Result<i64, EngineError> {
        if !is_attribute_key(key) {
            return Err(EngineError::InvalidInput(format!(
                "`{key}` is not an attribute key"
            )));
        }
        let now = self.now();
        let transaction = crate::begin_write(&self.db)
            .await
            .context("update_attribute: beginning a transaction")?;
        let entity = bump_version(&transaction, entity_id, expected_sync_version, now).await?;
        let attribute_id = attribute_id(&transaction, &entity, key, now).await?;
        let previous = current_value(&transaction, entity_id, attribute_id).await?;
        append_history(
            &transaction,
            Change {
                workspace_id: entity.workspace_id,
                entity_id,
                attribute_id,
                old_value: previous,
                new_value: Some(value.clone()),
                source_type: SourceType::UserOverride,
                integration_id: None,
                external_field: None,
                user_id: self.user_id,
                at: now,
            },
        )
        .await?;
        attribute_values::Entity::insert(attribute_values::ActiveModel {
            workspace_id: Set(entity.workspace_id),
            entity_id: Set(entity_id),
            attribute_id: Set(attribute_id),
            value: Set(value),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                attribute_values::Column::EntityId,
                attribute_values::Column::AttributeId,
            ])
            .update_columns([
                attribute_values::Column::Value,
                attribute_values::Column::UpdatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await
        .context("update_attribute: writing")?;
        provenance::Entity::insert(provenance::ActiveModel {
            id: Set(Uuid::new_v4()),
            workspace_id: Set(entity.workspace_id),
            entity_id: Set(entity_id),
            attribute_id: Set(attribute_id),
            source_type: Set(SourceType::UserOverride.as_str().to_owned()),
            source_integration_id: Set(None),
            source_external_field: Set(None),
            last_updated_at: Set(now),
            override_by_user: Set(true),
            override_at: Set(Some(now)),
            // The shadow value, if any, stays as the integration last wrote it.
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                provenance::Column::EntityId,
                provenance::Column::AttributeId,
            ])
            .update_columns([
                provenance::Column::SourceType,
                provenance::Column::SourceIntegrationId,
                provenance::Column::SourceExternalField,
                provenance::Column::LastUpdatedAt,
                provenance::Column::OverrideByUser,
                provenance::Column::OverrideAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&transaction)
        .await
        .context("update_attribute: writing")?;
        let changes = self.announce(&transaction, &entity, key).await?;
        transaction
            .commit()
            .await
            .context("update_attribute: committing")?;
        self.published(changes);
        Ok(expected_sync_version + 1)
    }

    /// Removes the user override of attribute `key` on `entity_id`, if the entity is still at
    /// `expected_sync_version`: the attribute gets back the latest value observed from its
    /// integration (the shadow value) with that value's provenance, with no provider call. An
    /// attribute no integration ever wrote keeps the user's value, no longer pinned.
    pub async fn clear_override(
        &self,
        entity_id: Uuid,
        key: &str,
        expected_sync_version: i64,
    ) -> Result<i64, EngineError> {
        let now = self.now();
        let transaction = crate::begin_write(&self.db)
            .await
            .context("clear_override: beginning a transaction")?;
        let entity = bump_version(&transaction, entity_id, expected_sync_version, now).await?;
        let attribute = attribute_of(&transaction, &entity, key).await?;
        let origin = provenance::Entity::find()
            .filter(provenance::Column::EntityId.eq(entity_id))
            .filter(provenance::Column::AttributeId.eq(attribute.id))
            .filter(provenance::Column::OverrideByUser.eq(true))
            .one(&transaction)
            .await
            .context("clear_override: reading")?
            .ok_or_else(|| EngineError::NotFound(format!("an override of `{key}`")))?;
        restore_observed(&transaction, &entity, &origin, now, self.user_id).await?;
        let changes = self.announce(&transaction, &entity, key).await?;
        transaction
            .commit()
            .await
            .context("clear_override: committing")?;
        self.published(changes);
        Ok(expected_sync_version + 1)
    }

    /// Decides a conflict on attribute `key` of `entity_id` (an override and a newer, different
    /// provider value): `keep_user` keeps the override and marks the provider's value as seen
    /// (the conflict ends until the provider changes it again); otherwise the provider's value and
    /// provenance replace the override. A conflict that no longer exists is `NotFound`; a stale
    /// `expected_sync_version` is a `Conflict`.
    pub async fn resolve_conflict(
        &self,
        entity_id: Uuid,
        key: &str,
        keep_user: bool,
        expected_sync_version: i64,
    ) -> Result<i64, EngineError> {
        let now = self.now();
        let transaction = crate::begin_write(&self.db)
            .await
            .context("resolve_conflict: beginning a transaction")?;
        let entity = bump_version(&transaction, entity_id, expected_sync_version, now).await?;
        let attribute = attribute_of(&transaction, &entity, key).await?;
        let origin = provenance::Entity::find()
            .filter(provenance::Column::EntityId.eq(entity_id))
            .filter(provenance::Column::AttributeId.eq(attribute.id))
            .one(&transaction)
            .await
            .context("resolve_conflict: reading")?;
        let value = attribute_values::Entity::find()
            .filter(attribute_values::Column::EntityId.eq(entity_id))
            .filter(attribute_values::Column::AttributeId.eq(attribute.id))
            .one(&transaction)
            .await
            .context("resolve_conflict: reading")?
            .map(|row| row.value);
        let Some(origin) = origin.filter(|origin| is_conflict(origin, value.as_ref())) else {
            transaction
                .rollback()
                .await
                .context("resolve_conflict: rolling back")?;
            return Err(EngineError::NotFound(format!(
                "a conflict on `{key}` of entity {entity_id}"
            )));
        };
        if keep_user {
            // The provider's value stays the shadow value; the override is now the newer word
            // (no earlier than the observation it answers, whatever the clocks say).
            let decided = origin
                .observed_at
                .map_or(now, |observed| Ord::max(observed, now));
            provenance::Entity::update_many()
                .col_expr(provenance::Column::OverrideAt, Expr::value(decided))
                .col_expr(provenance::Column::LastUpdatedAt, Expr::value(now))
                .filter(provenance::Column::Id.eq(origin.id))
                .exec(&transaction)
                .await
                .context("resolve_conflict: writing")?;
            append_history(
                &transaction,
                Change {
                    workspace_id: entity.workspace_id,
                    entity_id,
                    attribute_id: origin.attribute_id,
                    old_value: value.clone(),
                    new_value: value,
                    source_type: SourceType::UserOverride,
                    integration_id: None,
                    external_field: None,
                    user_id: self.user_id,
                    at: now,
                },
            )
            .await?;
        } else {
            restore_observed(&transaction, &entity, &origin, now, self.user_id).await?;
        }
        let changes = self.announce(&transaction, &entity, key).await?;
        transaction
            .commit()
            .await
            .context("resolve_conflict: committing")?;
        self.published(changes);
        Ok(expected_sync_version + 1)
    }
}

/// Whether `origin` (with the attribute's current `value`) is a conflict: a user override, and a
/// provider value observed after it that differs from the user's.
pub fn is_conflict(origin: &provenance::Model, value: Option<&Value>) -> bool {
    origin.override_by_user
        && origin.observed_value.is_some()
        && origin.observed_value.as_ref() != value
        && match (origin.observed_at, origin.override_at) {
            (Some(observed), Some(overridden)) => observed > overridden,
            (Some(_), None) => true,
            _ => false,
        }
}

/// Ends an override: the attribute takes its shadow value and that value's provenance back, or,
/// with none, keeps its value unpinned.
async fn restore_observed(
    transaction: &DatabaseTransaction,
    entity: &entities::Model,
    origin: &provenance::Model,
    now: DateTime<FixedOffset>,
    user_id: Option<Uuid>,
) -> Result<(), EngineError> {
    let previous = current_value(transaction, origin.entity_id, origin.attribute_id).await?;
    let mut update = provenance::Entity::update_many()
        .col_expr(provenance::Column::OverrideByUser, Expr::value(false))
        .col_expr(
            provenance::Column::OverrideAt,
            Expr::value(Option::<DateTime<FixedOffset>>::None),
        );
    match (&origin.observed_value, origin.observed_integration_id) {
        (Some(observed), Some(integration_id)) => {
            append_history(
                transaction,
                Change {
                    workspace_id: entity.workspace_id,
                    entity_id: origin.entity_id,
                    attribute_id: origin.attribute_id,
                    old_value: previous,
                    new_value: Some(observed.clone()),
                    source_type: SourceType::Integration,
                    integration_id: Some(integration_id),
                    external_field: origin.observed_external_field.clone(),
                    user_id,
                    at: now,
                },
            )
            .await?;
            attribute_values::Entity::update_many()
                .col_expr(
                    attribute_values::Column::Value,
                    Expr::value(observed.clone()),
                )
                .col_expr(attribute_values::Column::UpdatedAt, Expr::value(now))
                .filter(attribute_values::Column::EntityId.eq(origin.entity_id))
                .filter(attribute_values::Column::AttributeId.eq(origin.attribute_id))
                .exec(transaction)
                .await
                .context("restore_observed: writing")?;
            update = update
                .col_expr(
                    provenance::Column::SourceType,
                    Expr::value(SourceType::Integration),
                )
                .col_expr(
                    provenance::Column::SourceIntegrationId,
                    Expr::value(Some(integration_id)),
                )
                .col_expr(
                    provenance::Column::SourceExternalField,
                    Expr::value(origin.observed_external_field.clone()),
                )
                .col_expr(
                    provenance::Column::LastUpdatedAt,
                    Expr::value(origin.observed_updated_at.unwrap_or(now)),
                );
        }
        _ => {
            update = update.col_expr(provenance::Column::LastUpdatedAt, Expr::value(now));
        }
    }
    update
        .filter(provenance::Column::Id.eq(origin.id))
        .exec(transaction)
        .await
        .context("restore_observed: writing")?;
    Ok(())
}

/// The attribute's current value, if it has one.
async fn current_value(
    transaction: &DatabaseTransaction,
    entity_id: Uuid,
    attribute_id: Uuid,
) -> Result<Option<Value>, EngineError> {
    Ok(attribute_values::Entity::find()
        .filter(attribute_values::Column::EntityId.eq(entity_id))
        .filter(attribute_values::Column::AttributeId.eq(attribute_id))
        .one(transaction)
        .await
        .context("current_value: reading")?
        .map(|row| row.value))
}

/// One change of an attribute, for its history.
struct Change {
    workspace_id: Uuid,
    entity_id: Uuid,
    attribute_id: Uuid,
    old_value: Option<Value>,
    new_value: Option<Value>,
    source_type: SourceType,
    integration_id: Option<Uuid>,
    external_field: Option<String>,
    user_id: Option<Uuid>,
    at: DateTime<FixedOffset>,
}

/// Appends `change` to the attribute's history.
async fn append_history(
    transaction: &DatabaseTransaction,
    change: Change,
) -> Result<(), EngineError> {
    history::Entity::insert(history::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(change.workspace_id),
        entity_id: Set(change.entity_id),
        attribute_id: Set(change.attribute_id),
        old_value: Set(change.old_value.as_ref().map(crate::sanitized_value)),
        new_value: Set(change.new_value.as_ref().map(crate::sanitized_value)),
        source_type: Set(change.source_type.as_str().to_owned()),
        source_integration_id: Set(change.integration_id),
        source_external_field: Set(change.external_field),
        sync_run_id: Set(None),
        user_id: Set(change.user_id),
        changed_at: Set(change.at),
    })
    .exec_without_returning(transaction)
    .await
    .context("append_history: writing")?;
    Ok(())
}

/// The attribute definition `key` of the entity's type.
async fn attribute_of(
    transaction: &DatabaseTransaction,
    entity: &entities::Model,
    key: &str,
) -> Result<attribute_definitions::Model, EngineError> {
    attribute_definitions::Entity::find()
        .filter(attribute_definitions::Column::WorkspaceId.eq(entity.workspace_id))
        .filter(attribute_definitions::Column::EntityType.eq(entity.entity_type.clone()))
        .filter(attribute_definitions::Column::Key.eq(key))
        .one(transaction)
        .await
        .context("attribute_of: reading")?
        .ok_or_else(|| EngineError::NotFound(format!("attribute `{key}`")))
}

/// Moves the entity from `expected` to the next version, or explains why not.
async fn bump_version(
    transaction: &DatabaseTransaction,
    entity_id: Uuid,
    expected: i64,
    now: DateTime<FixedOffset>,
) -> Result<entities::Model, EngineError> {
    let bumped = entities::Entity::update_many()
        .col_expr(
            entities::Column::SyncVersion,
            Expr::col(entities::Column::SyncVersion).add(1),
        )
        .col_expr(entities::Column::UpdatedAt, Expr::value(now))
        .filter(entities::Column::Id.eq(entity_id))
        .filter(entities::Column::SyncVersion.eq(expected))
        .exec(transaction)
        .await
        .context("bump_version: writing")?;
    let entity = entities::Entity::find_by_id(entity_id)
        .one(transaction)
        .await
        .context("bump_version: reading")?
        .ok_or_else(|| EngineError::NotFound(format!("entity {entity_id}")))?;
    if bumped.rows_affected == 0 {
        return Err(EngineError::Conflict(format!(
            "entity {entity_id} is at sync_version {}, not {expected}: reload and retry",
            entity.sync_version
        )));
    }
    Ok(entity)
}

/// The id of attribute `key` of the entity's type, defining it when new.
async fn attribute_id(
    transaction: &DatabaseTransaction,
    entity: &entities::Model,
    key: &str,
    now: DateTime<FixedOffset>,
) -> Result<Uuid, EngineError> {
    attribute_definitions::Entity::insert(attribute_definitions::ActiveModel {
        id: Set(Uuid::new_v4()),
        workspace_id: Set(entity.workspace_id),
        entity_type: Set(entity.entity_type.clone()),
        key: Set(key.to_owned()),
        label: Set(key.replace('_', " ")),
        data_type: Set("TEXT".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([
        attribute_definitions::Column::WorkspaceId,
        attribute_definitions::Column::EntityType,
        attribute_definitions::Column::Key,
    ])
    .exec_without_returning(transaction)
    .await
    .context("attribute_id: writing")?;
    let attribute = attribute_definitions::Entity::find()
        .filter(attribute_definitions::Column::WorkspaceId.eq(entity.workspace_id))
        .filter(attribute_definitions::Column::EntityType.eq(entity.entity_type.clone()))
        .filter(attribute_definitions::Column::Key.eq(key))
        .one(transaction)
        .await
        .context("attribute_id: reading")?
        .ok_or_else(|| EngineError::NotFound(format!("attribute `{key}`")))?;
    Ok(attribute.id)
}
