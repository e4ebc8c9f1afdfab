//! Conflicts: attributes where a user override and a newer, different provider value disagree.
//! Every sync keeps the provider's value under an override (the shadow value, on the provenance
//! row); this reads a workspace's conflicts a page at a time, in a stable order, on whatever
//! connection the caller holds (the API's row-level-security transaction included).
//! [`AttributeEditor::resolve_conflict`](crate::AttributeEditor::resolve_conflict) decides one.

use chrono::{DateTime, FixedOffset};
use entity::{attribute_definitions, entities, entity_attribute_provenance as provenance};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, FromQueryResult, JoinType,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, RelationTrait as _,
};
use serde_json::Value;
use uuid::Uuid;

use crate::EngineError;

/// The user's value of the provenance row's attribute.
const USER_VALUE: &str = "(SELECT v.value FROM entity_attribute_values v
    WHERE v.entity_id = entity_attribute_provenance.entity_id
      AND v.attribute_id = entity_attribute_provenance.attribute_id)";

/// One conflict.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Conflict {
    /// Its provenance row (the page's order and cursor).
    pub id: Uuid,
    /// The entity.
    pub entity_id: Uuid,
    /// The attribute's key.
    pub key: String,
    /// The value the user set.
    pub user_value: Value,
    /// The value the provider has since sent.
    pub provider_value: Value,
    /// The provider's modification time of that value.
    pub provider_updated_at: Option<DateTime<FixedOffset>>,
    /// The integration (catalog definition) it came from.
    pub integration_id: Option<Uuid>,
    /// When the provider's value was observed: the conflict has existed since then.
    pub since: Option<DateTime<FixedOffset>>,
}

/// Up to `first` conflicts of `workspace_id` after the one with id `after`, oldest row first.
pub async fn conflicts<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
    first: u64,
    after: Option<Uuid>,
) -> Result<Vec<Conflict>, EngineError> {
    let mut select = provenance::Entity::find()
        .select_only()
        .column(provenance::Column::Id)
        .column(provenance::Column::EntityId)
        .column_as(attribute_definitions::Column::Key, "key")
        .column_as(Expr::cust(USER_VALUE), "user_value")
        .column_as(provenance::Column::ObservedValue, "provider_value")
        .column_as(provenance::Column::ObservedUpdatedAt, "provider_updated_at")
        .column_as(provenance::Column::ObservedIntegrationId, "integration_id")
        .column_as(provenance::Column::ObservedAt, "since")
        .join(JoinType::InnerJoin, provenance::Relation::Entities.def())
        .join(
            JoinType::InnerJoin,
            provenance::Relation::AttributeDefinitions.def(),
        )
        .filter(entities::Column::WorkspaceId.eq(workspace_id))
        .filter(provenance::Column::OverrideByUser.eq(true))
        .filter(provenance::Column::ObservedValue.is_not_null())
        .filter(Expr::cust(
            "(entity_attribute_provenance.override_at IS NULL
              OR entity_attribute_provenance.observed_at > entity_attribute_provenance.override_at)",
        ))
        .filter(Expr::cust(format!(
            "{USER_VALUE} <> entity_attribute_provenance.observed_value"
        )));
    if let Some(after) = after {
        select = select.filter(provenance::Column::Id.gt(after));
    }
    let rows = select
        .order_by_asc(provenance::Column::Id)
        .limit(first)
        .into_model::<Conflict>()
        .all(db)
        .await
        .map_err(|error| {
            EngineError::Unexpected(anyhow::Error::new(error).context("reading conflicts"))
        })?;
    Ok(rows)
}
