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
}
