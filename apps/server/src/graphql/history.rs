//! Attribute history and sync lineage in the API: `Attribute.history(first, after)` (newest
//! first), `Provenance.syncRun` and `syncRun(id)`. Read by the engine on the request's RLS
//! transaction: members of the workspace see them, nobody else (checked by the application too,
//! for SQLite). An attribute's history is reached only through its entity, which is checked.

use async_graphql::{ComplexObject, Context, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::entities::PageInfo;
use super::types::{AttributeSourceType, Integration};

/// One change of an attribute's value or provenance.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct AttributeChange {
    /// The value before (null when the attribute had none).
    pub old_value: Option<Json<serde_json::Value>>,
    /// The value after.
    pub new_value: Option<Json<serde_json::Value>>,
    /// Who or what wrote it.
    pub source_type: AttributeSourceType,
    /// The provider field it came from (syncs).
    pub external_field: Option<String>,
    /// The user who made it (edits).
    pub user_id: Option<Uuid>,
    /// When.
    pub changed_at: DateTime<Utc>,
    #[graphql(skip)]
    pub integration_id: Option<Uuid>,
    #[graphql(skip)]
    pub sync_run_id: Option<Uuid>,
}

#[ComplexObject]
impl AttributeChange {
    /// The integration the value came from (syncs).
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<std::sync::Arc<Integration>>> {
        super::entities::load_integration(ctx, self.integration_id).await
    }

    /// The sync run that wrote it (syncs).
    async fn sync_run(&self, ctx: &Context<'_>) -> Result<Option<SyncRun>> {
        load_run(ctx, self.sync_run_id).await
    }
}

/// An edge of the change connection.
#[derive(SimpleObject, Debug, Clone)]
pub struct AttributeChangeEdge {
    /// An opaque cursor to continue after this change.
    pub cursor: String,
    /// The change.
    pub node: AttributeChange,
}

/// A page of an attribute's changes, newest first.
#[derive(SimpleObject, Debug, Clone)]
pub struct AttributeChangeConnection {
    /// The changes of this page.
    pub edges: Vec<AttributeChangeEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

/// One sync run of one object type of a connection.
#[derive(SimpleObject, Debug, Clone)]
pub struct SyncRun {
    /// Its id.
    pub id: Uuid,
    /// The connection.
    pub connection_id: Uuid,
    /// The provider object type.
    pub object_type: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// The stored cursor it started from (opaque; null for a first, full read).
    pub start_cursor: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Entities it created.
    pub created: i32,
    /// Entities it updated.
    pub updated: i32,
    /// Entities it archived.
    pub deleted: i32,
    /// Values a user override kept out.
    pub conflicts: i32,
    /// Why it failed.
    pub error_message: Option<String>,
}

impl From<entity::sync_runs::Model> for SyncRun {
    fn from(run: entity::sync_runs::Model) -> Self {
        Self {
            id: run.id,
            connection_id: run.connection_id,
            object_type: run.object_type,
            status: run.status,
            start_cursor: run.cursor_from,
            started_at: run.started_at.to_utc(),
            finished_at: run.finished_at.map(|time| time.to_utc()),
            created: run.created,
            updated: run.updated,
            deleted: run.deleted,
            conflicts: run.conflicts,
            error_message: run.error_message,
        }
    }
}

/// The sync run `id`, if the viewer may see it.
pub async fn load_run(ctx: &Context<'_>, id: Option<Uuid>) -> Result<Option<SyncRun>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let (viewer, request_db) = super::query::signed_in(ctx)?;
    let transaction = request_db.lock().await;
    let Some(run) = integrations::sync_run(&*transaction, id)
        .await
        .map_err(super::errors::engine)?
    else {
        return Ok(None);
    };
    // The application's own check (SQLite has no row-level security): members only.
    if super::query::role_in(&*transaction, viewer.user_id, run.workspace_id)
        .await
        .is_err()
    {
        return Ok(None);
    }
    Ok(Some(SyncRun::from(run)))
}

/// A page of one attribute's changes.
pub async fn page(
    ctx: &Context<'_>,
    entity_id: Uuid,
    attribute_id: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AttributeChangeConnection> {
    let first = super::paging::first(first)?;
    let before = after
        .as_deref()
        .map(|cursor| super::paging::row_of("change", cursor))
        .transpose()?;
    let (_, request_db) = super::query::signed_in(ctx)?;
    let transaction = request_db.lock().await;
    let mut rows =
        integrations::attribute_history(&*transaction, entity_id, attribute_id, first + 1, before)
            .await
            .map_err(super::errors::engine)?;
    drop(transaction);
    let has_next_page = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let edges: Vec<AttributeChangeEdge> = rows
        .into_iter()
        .map(|row| AttributeChangeEdge {
            cursor: super::paging::cursor("change", row.id),
            node: AttributeChange {
                old_value: row.old_value.map(Json),
                new_value: row.new_value.map(Json),
                source_type: AttributeSourceType::from_stored(&row.source_type),
                external_field: row.source_external_field,
                user_id: row.user_id,
                changed_at: row.changed_at.to_utc(),
                integration_id: row.source_integration_id,
                sync_run_id: row.sync_run_id,
            },
        })
        .collect();
    Ok(AttributeChangeConnection {
        page_info: PageInfo {
            has_next_page,
            has_previous_page: before.is_some(),
            start_cursor: edges.first().map(|edge| edge.cursor.clone()),
            end_cursor: edges.last().map(|edge| edge.cursor.clone()),
        },
        edges,
    })
}
