//! Mutations available so far: creating a workspace (the caller becomes its OWNER).

use async_graphql::{Context, Object, Result};
use entity::{workspace_members, workspaces};
use sea_orm::{EntityTrait as _, Set, TransactionTrait as _};
use uuid::Uuid;

use super::context::RequestContext;
use super::errors::{Code, db, error, internal};
use super::query::signed_in;
use super::types::{Role, Workspace};

/// The mutation root.
#[derive(Debug, Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates a workspace owned by the viewer.
    async fn create_workspace(&self, ctx: &Context<'_>, name: String) -> Result<Workspace> {
        let (viewer, _) = signed_in(ctx)?;
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(error(
                Code::BadUserInput,
                "a workspace name has 1 to 200 characters",
            ));
        }
        // No workspace exists for RLS to check yet: the application writes it, as owner of the
        // tables, with the caller as its OWNER.
        let pool = &ctx
            .data::<RequestContext>()
            .map_err(|_| internal("request context missing"))?
            .pool;
        let now = chrono::Utc::now().fixed_offset();
        let id = Uuid::new_v4();
        let transaction = pool.begin().await.map_err(db)?;
        workspaces::Entity::insert(workspaces::ActiveModel {
            id: Set(id),
            name: Set(name.clone()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&transaction)
        .await
        .map_err(db)?;
        workspace_members::Entity::insert(workspace_members::ActiveModel {
            workspace_id: Set(id),
            user_id: Set(viewer.user_id),
            role: Set("OWNER".to_owned()),
            created_at: Set(now),
        })
        .exec_without_returning(&transaction)
        .await
        .map_err(db)?;
        transaction.commit().await.map_err(db)?;
        Ok(Workspace {
            id,
            name,
            role: Role::Owner,
            created_at: now.to_utc(),
        })
    }

    /// Sets an attribute of an entity as the viewer's override (any member may edit): later syncs
    /// leave it alone until the override is cleared. `expectedSyncVersion` is the version the
    /// edit was made against; a stale one is a `CONFLICT` that changes nothing.
    async fn update_entity_attribute(
        &self,
        ctx: &Context<'_>,
        entity_id: Uuid,
        key: String,
        value: async_graphql::Json<serde_json::Value>,
        expected_sync_version: i64,
    ) -> Result<EditResult> {
        let pool = member_pool(ctx, entity_id).await?;
        let editor =
            integrations::AttributeEditor::new(pool, std::sync::Arc::new(providers::SystemClock));
        let sync_version = editor
            .update_attribute(entity_id, &key, value.0, expected_sync_version)
            .await
            .map_err(super::errors::engine)?;
        Ok(EditResult {
            entity_id,
            sync_version,
        })
    }

    /// Removes the viewer's override of an attribute so the next sync writes the provider's
    /// value again.
    async fn clear_attribute_override(
        &self,
        ctx: &Context<'_>,
        entity_id: Uuid,
        key: String,
        expected_sync_version: i64,
    ) -> Result<EditResult> {
        let pool = member_pool(ctx, entity_id).await?;
        let editor =
            integrations::AttributeEditor::new(pool, std::sync::Arc::new(providers::SystemClock));
        let sync_version = editor
            .clear_override(entity_id, &key, expected_sync_version)
            .await
            .map_err(super::errors::engine)?;
        Ok(EditResult {
            entity_id,
            sync_version,
        })
    }
}

/// The outcome of an edit.
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub struct EditResult {
    /// The entity edited.
    pub entity_id: Uuid,
    /// Its new version.
    pub sync_version: i64,
}

/// The pool, once the viewer is known to be a member of the entity's workspace (another
/// workspace's entity is `NOT_FOUND`). Edits write as the application after this check.
async fn member_pool(ctx: &Context<'_>, entity_id: Uuid) -> Result<sea_orm::DatabaseConnection> {
    let (viewer, _) = signed_in(ctx)?;
    let pool = ctx
        .data::<RequestContext>()
        .map_err(|_| internal("request context missing"))?
        .pool
        .clone();
    let not_found = || error(Code::NotFound, format!("entity {entity_id} not found"));
    let entity = entity::entities::Entity::find_by_id(entity_id)
        .one(&pool)
        .await
        .map_err(db)?
        .ok_or_else(not_found)?;
    super::query::role_in(&pool, viewer.user_id, entity.workspace_id)
        .await
        .map_err(|_| not_found())?;
    Ok(pool)
}
