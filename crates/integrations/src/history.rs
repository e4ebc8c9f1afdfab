//! Reads of attribute history and sync lineage, on whatever connection the caller holds (the
//! API's row-level-security transaction included): one attribute's changes a page at a time,
//! newest first, and one sync run.

use entity::{entity_attribute_history as history, sync_runs};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, QueryOrder as _,
    QuerySelect as _,
};
use uuid::Uuid;

use crate::EngineError;

/// Up to `first` changes of `attribute_id` on `entity_id`, newest first, before the change
/// `before` (its id; ids are time-ordered).
pub async fn attribute_history<C: ConnectionTrait>(
    db: &C,
    entity_id: Uuid,
    attribute_id: Uuid,
    first: u64,
    before: Option<Uuid>,
) -> Result<Vec<history::Model>, EngineError> {
    let mut select = history::Entity::find()
        .filter(history::Column::EntityId.eq(entity_id))
        .filter(history::Column::AttributeId.eq(attribute_id));
    if let Some(before) = before {
        select = select.filter(history::Column::Id.lt(before));
    }
    select
        .order_by_desc(history::Column::Id)
        .limit(first)
        .all(db)
        .await
        .map_err(|error| {
            EngineError::Unexpected(anyhow::Error::new(error).context("reading attribute history"))
        })
}

/// The sync run `id`, if the caller may see it.
pub async fn sync_run<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<sync_runs::Model>, EngineError> {
    sync_runs::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(|error| {
            EngineError::Unexpected(anyhow::Error::new(error).context("reading a sync run"))
        })
}

/// One attribute of an entity as it stood at a past time.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeAsOf {
    /// The attribute.
    pub attribute_id: Uuid,
    /// Its key.
    pub key: String,
    /// Its value then.
    pub value: serde_json::Value,
    /// The change that set it, when it is in the history (absent: the value is older than the
    /// history, and is the current one).
    pub set_by: Option<history::Model>,
}

/// The attributes of `entity_id` as they stood at `as_of`: for each attribute, the value the
/// first change after `as_of` replaced, or the current value when nothing changed since; an
/// attribute first set after `as_of` is absent. The caller bounds `as_of` by the history's
/// retention (before it, changes may be gone).
pub async fn attributes_as_of<C: ConnectionTrait>(
    db: &C,
    entity_id: Uuid,
    as_of: chrono::DateTime<chrono::FixedOffset>,
) -> Result<Vec<AttributeAsOf>, EngineError> {
    use entity::{attribute_definitions, entity_attribute_values as values};
    use std::collections::BTreeMap;
    let context = |what: &'static str| {
        move |error: sea_orm::DbErr| {
            EngineError::Unexpected(anyhow::Error::new(error).context(what))
        }
    };
    let changes = history::Entity::find()
        .filter(history::Column::EntityId.eq(entity_id))
        .order_by_asc(history::Column::ChangedAt)
        .order_by_asc(history::Column::Id)
        .all(db)
        .await
        .map_err(context("reading the entity's history"))?;
    let current = values::Entity::find()
        .filter(values::Column::EntityId.eq(entity_id))
        .all(db)
        .await
        .map_err(context("reading the entity's values"))?;
    let mut attribute_ids: Vec<Uuid> = current.iter().map(|row| row.attribute_id).collect();
    attribute_ids.extend(changes.iter().map(|change| change.attribute_id));
    attribute_ids.sort_unstable();
    attribute_ids.dedup();
    let keys: BTreeMap<Uuid, String> = attribute_definitions::Entity::find()
        .filter(attribute_definitions::Column::Id.is_in(attribute_ids.iter().copied()))
        .all(db)
        .await
        .map_err(context("reading the entity's attribute keys"))?
        .into_iter()
        .map(|definition| (definition.id, definition.key))
        .collect();
    let mut out = Vec::new();
    for attribute_id in attribute_ids {
        let mine = changes
            .iter()
            .filter(|change| change.attribute_id == attribute_id);
        let (before, after): (Vec<&history::Model>, Vec<&history::Model>) =
            mine.partition(|change| change.changed_at <= as_of);
        let value = match after.first() {
            Some(next) => next.old_value.clone(),
            None => current
                .iter()
                .find(|row| row.attribute_id == attribute_id)
                .map(|row| row.value.clone()),
        };
        let (Some(value), Some(key)) = (value, keys.get(&attribute_id)) else {
            continue;
        };
        out.push(AttributeAsOf {
            attribute_id,
            key: key.clone(),
            value,
            set_by: before.last().map(|change| (*change).clone()),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
