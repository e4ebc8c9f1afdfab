//! The reads the API serves, on whatever connection the caller holds (the API's row-level-security
//! transaction included), so the server asks the engine instead of querying tables itself:
//! entities (one, or a keyset page in a total order), connections (one, or a workspace's, with
//! their catalog definitions), and a connection's sync states and health checks.

use chrono::{DateTime, FixedOffset, Utc};
use entity::{
    entities, entity_attribute_provenance as provenance, integration_connections as connections,
    integration_definitions as definitions, integration_health_logs as health_logs,
    integration_sync_states as sync_states, workspace_members,
};
use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DbBackend, EntityTrait as _,
    FromQueryResult as _, PaginatorTrait as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    Select,
};
use uuid::Uuid;

use crate::EngineError;

/// One attribute of an entity with its provenance (absent for a value written before provenance
/// existed), as [`attribute_rows`] reads them.
#[derive(Debug, Clone, PartialEq, sea_orm::FromQueryResult)]
pub struct AttributeRow {
    /// The entity.
    pub entity_id: Uuid,
    /// The attribute.
    pub attribute_id: Uuid,
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: serde_json::Value,
    /// Who or what wrote it.
    pub source_type: Option<String>,
    /// The integration it came from.
    pub source_integration_id: Option<Uuid>,
    /// The provider field.
    pub source_external_field: Option<String>,
    /// When it was written (for syncs: the provider's modification time).
    pub last_updated_at: Option<DateTime<FixedOffset>>,
    /// A user override pins it.
    pub override_by_user: Option<bool>,
    /// When the user pinned it.
    pub override_at: Option<DateTime<FixedOffset>>,
    /// The sync run that last wrote it.
    pub sync_run_id: Option<Uuid>,
}

/// Every attribute, with provenance, of `entity_ids`, in one statement, by key.
pub async fn attribute_rows<C: ConnectionTrait>(
    db: &C,
    entity_ids: &[Uuid],
) -> Result<Vec<AttributeRow>, EngineError> {
    let rows = db
        .query_all(&attribute_rows_statement(entity_ids))
        .await
        .map_err(read("reading attributes"))?;
    rows.iter()
        .map(|row| AttributeRow::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()
        .map_err(read("reading attributes"))
}

/// The statement [`attribute_rows`] runs (for `EXPLAIN`: the page's plan under row-level
/// security is tested).
pub fn attribute_rows_statement(entity_ids: &[Uuid]) -> sea_orm::sea_query::SelectStatement {
    use entity::{attribute_definitions, entity_attribute_values as values};
    use sea_orm::sea_query::{Alias, JoinType};
    let v = Alias::new("v");
    let a = Alias::new("a");
    let p = Alias::new("p");
    Query::select()
        .expr_as(
            Expr::col((v.clone(), values::Column::EntityId)),
            Alias::new("entity_id"),
        )
        .expr_as(
            Expr::col((a.clone(), attribute_definitions::Column::Key)),
            Alias::new("key"),
        )
        .expr_as(
            Expr::col((v.clone(), values::Column::Value)),
            Alias::new("value"),
        )
        .expr_as(
            Expr::col((v.clone(), values::Column::AttributeId)),
            Alias::new("attribute_id"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::SyncRunId)),
            Alias::new("sync_run_id"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::SourceType)),
            Alias::new("source_type"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::SourceIntegrationId)),
            Alias::new("source_integration_id"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::SourceExternalField)),
            Alias::new("source_external_field"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::LastUpdatedAt)),
            Alias::new("last_updated_at"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::OverrideByUser)),
            Alias::new("override_by_user"),
        )
        .expr_as(
            Expr::col((p.clone(), provenance::Column::OverrideAt)),
            Alias::new("override_at"),
        )
        .from_as(values::Entity, v.clone())
        .join_as(
            JoinType::InnerJoin,
            attribute_definitions::Entity,
            a.clone(),
            Expr::col((a.clone(), attribute_definitions::Column::Id))
                .equals((v.clone(), values::Column::AttributeId)),
        )
        .join_as(
            JoinType::LeftJoin,
            provenance::Entity,
            p.clone(),
            Expr::col((p.clone(), provenance::Column::EntityId))
                .equals((v.clone(), values::Column::EntityId))
                .and(
                    Expr::col((p.clone(), provenance::Column::AttributeId))
                        .equals((v.clone(), values::Column::AttributeId)),
                ),
        )
        .and_where(
            Expr::col((v.clone(), values::Column::EntityId)).is_in(entity_ids.iter().copied()),
        )
        .order_by(
            (a, attribute_definitions::Column::Key),
            sea_orm::sea_query::Order::Asc,
        )
        .to_owned()
}

fn read(what: &'static str) -> impl Fn(sea_orm::DbErr) -> EngineError {
    move |error| EngineError::Unexpected(anyhow::Error::new(error).context(what))
}

/// One entity.
pub async fn entity<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<entities::Model>, EngineError> {
    entities::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(read("reading an entity"))
}

/// One connection.
pub async fn connection<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<connections::Model>, EngineError> {
    connections::Entity::find_by_id(id)
        .one(db)
        .await
        .map_err(read("reading a connection"))
}

/// One connection with its catalog definition.
pub async fn connection_with_definition<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<(connections::Model, Option<definitions::Model>)>, EngineError> {
    connections::Entity::find_by_id(id)
        .find_also_related(definitions::Entity)
        .one(db)
        .await
        .map_err(read("reading a connection"))
}

/// A workspace's connections with their catalog definitions, oldest first.
pub async fn connections_of<C: ConnectionTrait>(
    db: &C,
    workspace_id: Uuid,
) -> Result<Vec<(connections::Model, Option<definitions::Model>)>, EngineError> {
    connections::Entity::find()
        .filter(connections::Column::WorkspaceId.eq(workspace_id))
        .find_also_related(definitions::Entity)
        .order_by_asc(connections::Column::CreatedAt)
        .all(db)
        .await
        .map_err(read("reading a workspace's connections"))
}

/// A connection's sync states, by object type.
pub async fn sync_states<C: ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
) -> Result<Vec<sync_states::Model>, EngineError> {
    sync_states::Entity::find()
        .filter(sync_states::Column::ConnectionId.eq(connection_id))
        .order_by_asc(sync_states::Column::ObjectType)
        .all(db)
        .await
        .map_err(read("reading sync states"))
}

/// A connection's newest `last` health checks, newest first.
pub async fn health_logs<C: ConnectionTrait>(
    db: &C,
    connection_id: Uuid,
    last: u64,
) -> Result<Vec<health_logs::Model>, EngineError> {
    health_logs::Entity::find()
        .filter(health_logs::Column::ConnectionId.eq(connection_id))
        .order_by_desc(health_logs::Column::CheckedAt)
        .limit(last)
        .all(db)
        .await
        .map_err(read("reading health checks"))
}

/// The order of an entity page; every order is total (ties by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntityOrder {
    /// By id (creation order: ids are UUIDv7).
    #[default]
    IdAsc,
    /// Most recently changed first.
    UpdatedAtDesc,
    /// By display name, entities without one last.
    DisplayNameAsc,
}

/// Where a page continues: the key of the previous page's last entity in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityAfter {
    /// [`EntityOrder::IdAsc`].
    Id(Uuid),
    /// [`EntityOrder::UpdatedAtDesc`]: [`updated_key`] and the id.
    UpdatedAt(i64, Uuid),
    /// [`EntityOrder::DisplayNameAsc`]: the name (absent for entities without one) and the id.
    DisplayName(Option<String>, Uuid),
}

/// Which entities, in which order, from where.
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    /// The workspace.
    pub workspace_id: Uuid,
    /// The reader, who must be a member (checked in the same statement).
    pub viewer_id: Uuid,
    /// Only this entity type.
    pub entity_type: Option<String>,
    /// Only entities from the integration with this slug.
    pub source_integration: Option<String>,
    /// Only entities changed since.
    pub updated_since: Option<DateTime<FixedOffset>>,
    /// Only entities with (or without) a user override.
    pub has_overrides: Option<bool>,
    /// The order.
    pub order: EntityOrder,
    /// Continue after.
    pub after: Option<EntityAfter>,
    /// At most this many.
    pub limit: u64,
    /// Also count every match.
    pub count: bool,
}

/// SQLite's expression of [`updated_key`].
const SQLITE_UPDATED_KEY: &str =
    "CAST(ROUND((julianday(entities.updated_at) - 2440587.5) * 86400000.0) AS INTEGER)";

/// The `updatedAt` order's key, an integer both back ends compute alike: PostgreSQL stores
/// microseconds, so its key is the column itself (compared as a time); SQLite stores text in
/// whatever format wrote it, so its key is milliseconds since the epoch as SQLite's own date
/// functions read the text, rounded as they round.
pub fn updated_key(backend: DbBackend, updated_at: DateTime<FixedOffset>) -> i64 {
    match backend {
        DbBackend::Sqlite => {
            let nanos = i64::from(updated_at.timestamp_subsec_nanos());
            updated_at.timestamp() * 1_000 + (nanos + 500_000) / 1_000_000
        }
        _ => updated_at.timestamp_micros(),
    }
}

/// The workspace's entities that match `query`, for its viewer if a member (the application's
/// own check, in the same statement; row-level security applies as well on PostgreSQL).
fn matching(query: &EntityQuery) -> Select<entities::Entity> {
    let mut select = entities::Entity::find()
        .filter(entities::Column::WorkspaceId.eq(query.workspace_id))
        .filter(Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(workspace_members::Entity)
                .and_where(workspace_members::Column::WorkspaceId.eq(query.workspace_id))
                .and_where(workspace_members::Column::UserId.eq(query.viewer_id))
                .to_owned(),
        ));
    if let Some(entity_type) = &query.entity_type {
        select = select.filter(entities::Column::EntityType.eq(entity_type.clone()));
    }
    if let Some(slug) = &query.source_integration {
        select = select.filter(
            entities::Column::SourceIntegrationId.in_subquery(
                Query::select()
                    .column(definitions::Column::Id)
                    .from(definitions::Entity)
                    .and_where(definitions::Column::Slug.eq(slug.clone()))
                    .to_owned(),
            ),
        );
    }
    if let Some(since) = query.updated_since {
        select = select.filter(entities::Column::UpdatedAt.gte(since));
    }
    if let Some(has_overrides) = query.has_overrides {
        let overridden = Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(provenance::Entity)
                .and_where(
                    Expr::col((provenance::Entity, provenance::Column::EntityId))
                        .equals((entities::Entity, entities::Column::Id)),
                )
                .and_where(provenance::Column::OverrideByUser.eq(true))
                .to_owned(),
        );
        select = select.filter(if has_overrides {
            overridden
        } else {
            overridden.not()
        });
    }
    select
}

/// A page of entities for `query` and, when asked, how many match in all. An `after` of another
/// order, or out of range, is bad input.
pub async fn entity_page<C: ConnectionTrait>(
    db: &C,
    query: &EntityQuery,
) -> Result<(Vec<entities::Model>, Option<u64>), EngineError> {
    let total = if query.count {
        Some(
            matching(query)
                .count(db)
                .await
                .map_err(read("counting entities"))?,
        )
    } else {
        None
    };
    let rows = page_select(db.get_database_backend(), query)?
        .all(db)
        .await
        .map_err(read("reading a page of entities"))?;
    Ok((rows, total))
}

/// The statement [`entity_page`] runs for its rows on `backend` (for `EXPLAIN`).
pub fn entity_page_statement(
    backend: DbBackend,
    query: &EntityQuery,
) -> Result<sea_orm::Statement, EngineError> {
    Ok(sea_orm::QueryTrait::build(
        &page_select(backend, query)?,
        backend,
    ))
}

fn page_select(
    backend: DbBackend,
    query: &EntityQuery,
) -> Result<Select<entities::Entity>, EngineError> {
    use entities::Column;
    let sqlite = backend == DbBackend::Sqlite;
    let mut select = matching(query);
    if let Some(after) = &query.after {
        let order = match after {
            EntityAfter::Id(_) => EntityOrder::IdAsc,
            EntityAfter::UpdatedAt(..) => EntityOrder::UpdatedAtDesc,
            EntityAfter::DisplayName(..) => EntityOrder::DisplayNameAsc,
        };
        if order != query.order {
            return Err(EngineError::InvalidInput(
                "`after` is a cursor of another `orderBy`".to_owned(),
            ));
        }
        let condition = match after.clone() {
            EntityAfter::Id(id) => Condition::all().add(Column::Id.gt(id)),
            EntityAfter::UpdatedAt(key, id) if sqlite => {
                let updated = Expr::cust(SQLITE_UPDATED_KEY);
                Condition::any()
                    .add(updated.clone().lt(key))
                    .add(updated.eq(key).and(Column::Id.gt(id)))
            }
            EntityAfter::UpdatedAt(micros, id) => {
                let at = DateTime::<Utc>::from_timestamp_micros(micros)
                    .ok_or_else(|| EngineError::InvalidInput("`after` is out of range".to_owned()))?
                    .fixed_offset();
                Condition::any()
                    .add(Column::UpdatedAt.lt(at))
                    .add(Column::UpdatedAt.eq(at).and(Column::Id.gt(id)))
            }
            EntityAfter::DisplayName(Some(name), id) => Condition::any()
                .add(Column::DisplayName.gt(name.clone()))
                .add(Column::DisplayName.eq(name).and(Column::Id.gt(id)))
                .add(Column::DisplayName.is_null()),
            EntityAfter::DisplayName(None, id) => Condition::all()
                .add(Column::DisplayName.is_null())
                .add(Column::Id.gt(id)),
        };
        select = select.filter(condition);
    }
    select = match query.order {
        EntityOrder::IdAsc => select.order_by_asc(Column::Id),
        EntityOrder::UpdatedAtDesc if sqlite => select
            .order_by_desc(Expr::cust(SQLITE_UPDATED_KEY))
            .order_by_asc(Column::Id),
        EntityOrder::UpdatedAtDesc => select
            .order_by_desc(Column::UpdatedAt)
            .order_by_asc(Column::Id),
        EntityOrder::DisplayNameAsc => select
            .order_by_asc(Expr::col((entities::Entity, Column::DisplayName)).is_null())
            .order_by_asc(Column::DisplayName)
            .order_by_asc(Column::Id),
    };
    Ok(select.limit(query.limit))
}
