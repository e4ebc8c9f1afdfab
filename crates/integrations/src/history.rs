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
