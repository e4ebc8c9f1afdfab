//! Conflicts in the API: `conflicts(workspaceId, first, after)`, a Relay page of attributes where
//! a user override and a newer, different provider value disagree, read by the engine on the
//! request's RLS transaction (members read; another workspace is `NOT_FOUND`), and
//! `resolveConflict`, which keeps the user's value or takes the provider's.

use async_graphql::{ComplexObject, Context, Enum, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::entities::{Entity, PageInfo};
use super::types::Integration;

/// An attribute whose user override disagrees with a newer provider value.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct AttributeConflict {
    /// The entity's id.
    pub entity_id: Uuid,
    /// The attribute's key.
    pub key: String,
    /// The value the user set (it is what the attribute holds).
    pub user_value: Json<serde_json::Value>,
    /// The value the provider has sent since.
    pub provider_value: Json<serde_json::Value>,
    /// The provider's modification time of its value.
    pub provider_updated_at: Option<DateTime<Utc>>,
    /// Since when they disagree (when the provider's value was observed).
    pub since: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub integration_id: Option<Uuid>,
}

#[ComplexObject]
impl AttributeConflict {
    /// The entity.
    async fn entity(&self, ctx: &Context<'_>) -> Result<Option<Entity>> {
        let (_, request_db) = super::query::signed_in(ctx)?;
        super::entities::one(request_db, self.entity_id).await
    }

    /// The integration the provider's value came from.
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<std::sync::Arc<Integration>>> {
        super::entities::load_integration(ctx, self.integration_id).await
    }
}

/// An edge of the conflict connection.
#[derive(SimpleObject, Debug, Clone)]
pub struct AttributeConflictEdge {
    /// An opaque cursor to continue after this conflict.
    pub cursor: String,
    /// The conflict.
    pub node: AttributeConflict,
}

/// A page of conflicts.
#[derive(SimpleObject, Debug, Clone)]
pub struct AttributeConflictConnection {
    /// The conflicts of this page, oldest first.
    pub edges: Vec<AttributeConflictEdge>,
    /// Where this page stands.
    pub page_info: PageInfo,
}

/// Which side of a conflict wins.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictResolution {
    /// Keep the user's value; the provider's stays recorded, and the conflict ends until the
    /// provider sends another value.
    User,
    /// Take the provider's value and provenance; the override ends.
    Provider,
}

/// One page of `workspace_id`'s conflicts for the viewer.
pub async fn page(
    ctx: &Context<'_>,
    workspace_id: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<AttributeConflictConnection> {
    let (viewer, request_db) = super::query::signed_in(ctx)?;
    let first = super::paging::first(first)?;
    let after = after
        .as_deref()
        .map(|cursor| super::paging::row_of("conflict", cursor))
        .transpose()?;
    let transaction = request_db.lock().await;
    super::query::role_in(&*transaction, viewer.user_id, workspace_id).await?;
    let mut rows = integrations::conflicts(&*transaction, workspace_id, first + 1, after)
        .await
        .map_err(super::errors::engine)?;
    drop(transaction);
    let has_next_page = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let edges: Vec<AttributeConflictEdge> = rows
        .into_iter()
        .map(|row| AttributeConflictEdge {
            cursor: super::paging::cursor("conflict", row.id),
            node: AttributeConflict {
                entity_id: row.entity_id,
                key: row.key,
                user_value: Json(row.user_value),
                provider_value: Json(row.provider_value),
                provider_updated_at: row.provider_updated_at.map(|time| time.to_utc()),
                since: row.since.map(|time| time.to_utc()),
                integration_id: row.integration_id,
            },
        })
        .collect();
    Ok(AttributeConflictConnection {
        page_info: PageInfo {
            has_next_page,
            has_previous_page: after.is_some(),
            start_cursor: edges.first().map(|edge| edge.cursor.clone()),
            end_cursor: edges.last().map(|edge| edge.cursor.clone()),
        },
        edges,
    })
}
