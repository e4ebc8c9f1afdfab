//! Queries: the viewer, their workspaces, the integration catalog and a workspace's connections.
//! Each resolver checks membership itself and reads through the request's RLS transaction.

use async_graphql::{Context, Json, Object, Result};
use entity::{integration_connections, integration_definitions, workspace_members, workspaces};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, EntityTrait as _, QueryFilter as _, QueryOrder as _,
};
use uuid::Uuid;

use super::context::{AuthErrorCode, RequestContext, RequestDb};
use super::errors::{Code, db, error};
use super::types::{
    ConnectedAccountStatus, HealthStatus, Integration, IntegrationConnection, Role, SyncStatus,
    ValidationStatus, Viewer, Workspace,
};

/// The query root.
#[derive(Debug, Default)]
pub struct Query;

/// The request's context; absent on the WebSocket, which serves subscriptions only.
pub(crate) fn request<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext> {
    ctx.data::<RequestContext>().map_err(|_| {
        error(
            Code::BadUserInput,
            "queries and mutations are served on POST /graphql; the WebSocket serves subscriptions",
        )
    })
}

/// The signed-in user, or `UNAUTHENTICATED`.
pub(crate) fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a super::auth::Viewer> {
    match &request(ctx)?.viewer {
        Ok(viewer) => Ok(viewer),
        Err(AuthErrorCode::Invalid) => Err(error(
            Code::Unauthenticated,
            "the bearer token is invalid or expired",
        )),
        Err(AuthErrorCode::Missing) => {
            Err(error(Code::Unauthenticated, "sign in: send a bearer token"))
        }
    }
}

/// The signed-in user and the request's RLS transaction (queries), or `UNAUTHENTICATED`.
/// Mutations have no request transaction: they take one pooled connection at a time.
pub(crate) fn signed_in<'a>(ctx: &Context<'a>) -> Result<(&'a super::auth::Viewer, &'a RequestDb)> {
    let viewer = viewer(ctx)?;
    let db = request(ctx)?
        .db
        .as_ref()
        .ok_or_else(|| super::errors::internal("a query resolver ran without its transaction"))?;
    Ok((viewer, db))
}

/// The viewer's role in `workspace_id`, or `NOT_FOUND` (another workspace is indistinguishable
/// from none).
pub(crate) async fn role_in<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    workspace_id: Uuid,
) -> Result<Role> {
    let membership = workspace_members::Entity::find_by_id((workspace_id, user_id))
        .one(db)
        .await
        .map_err(super::errors::db)?;
    membership
        .and_then(|membership| Role::parse(&membership.role))
        .ok_or_else(|| {
            error(
                Code::NotFound,
                format!("workspace {workspace_id} not found"),
            )
        })
}

pub(crate) fn is_not_found(error: &async_graphql::Error) -> bool {
    error
        .extensions
        .as_ref()
        .and_then(|extensions| extensions.get("code"))
        .is_some_and(|code| *code == async_graphql::Value::from("NOT_FOUND"))
}

fn connection(model: integration_connections::Model, slug: String) -> IntegrationConnection {
    let utc = |time: Option<chrono::DateTime<chrono::FixedOffset>>| time.map(|time| time.to_utc());
    IntegrationConnection {
        id: model.id,
        workspace_id: model.workspace_id,
        integration_slug: slug,
        status: ConnectedAccountStatus::from_stored(&model.status),
        connection_status: ValidationStatus::from_stored(&model.connection_status),
        health_status: HealthStatus::from_stored(&model.health_status),
        sync_status: SyncStatus::from_stored(&model.sync_status),
        account_info: model.account_info.map(Json),
        validation_error: model.validation_error,
        last_connection_validation: utc(model.last_connection_validation),
        last_health_check: utc(model.last_health_check),
        last_sync_at: utc(model.last_sync_at),
    }
}

/// The query root: the viewer, their workspaces, the catalog, connections and entities.
#[Object]
impl Query {
    /// The signed-in user.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let (viewer, _) = signed_in(ctx)?;
        Ok(Viewer {
            id: viewer.user_id,
            email: viewer.email.clone(),
        })
    }

    /// The workspaces the viewer belongs to, oldest first.
    async fn workspaces(&self, ctx: &Context<'_>) -> Result<Vec<Workspace>> {
        let (viewer, request_db) = signed_in(ctx)?;
        let transaction = request_db.lock().await;
        let memberships = workspace_members::Entity::find()
            .filter(workspace_members::Column::UserId.eq(viewer.user_id))
            .find_also_related(workspaces::Entity)
            .order_by_asc(workspace_members::Column::CreatedAt)
            .all(&*transaction)
            .await
            .map_err(db)?;
        Ok(memberships
            .into_iter()
            .filter_map(|(membership, workspace)| {
                let workspace = workspace?;
                Some(Workspace {
                    id: workspace.id,
                    name: workspace.name,
                    role: Role::parse(&membership.role)?,
                    created_at: workspace.created_at.to_utc(),
                })
            })
            .collect())
    }

    /// The integration catalog: every active definition with its capabilities.
    async fn integrations(&self, ctx: &Context<'_>) -> Result<Vec<Integration>> {
        let (_, request_db) = signed_in(ctx)?;
        let transaction = request_db.lock().await;
        let definitions = integration_definitions::Entity::find()
            .filter(integration_definitions::Column::Active.eq(true))
            .order_by_asc(integration_definitions::Column::Slug)
            .all(&*transaction)
            .await
            .map_err(db)?;
        Ok(definitions
            .into_iter()
            .map(|definition| Integration {
                id: definition.id,
                slug: definition.slug,
                name: definition.name,
                category: definition.category,
                description: definition.description,
                capabilities: Json(definition.capabilities),
                auth_config: Json(definition.auth_config),
            })
            .collect())
    }

    /// The connections of a workspace the viewer belongs to.
    async fn connections(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace.")] workspace_id: Uuid,
    ) -> Result<Vec<IntegrationConnection>> {
        let (viewer, request_db) = signed_in(ctx)?;
        let transaction = request_db.lock().await;
        role_in(&*transaction, viewer.user_id, workspace_id).await?;
        let rows = integrations::connections_of(&*transaction, workspace_id)
            .await
            .map_err(super::errors::engine)?;
        Ok(rows
            .into_iter()
            .map(|(model, definition)| {
                let slug = definition
                    .map(|definition| definition.slug)
                    .unwrap_or_default();
                connection(model, slug)
            })
            .collect())
    }

    /// The entities of a workspace the viewer belongs to, a page at a time (`first` ≤ 100), with
    /// their attributes and per-attribute provenance. The order is `orderBy`, by default `ID_ASC`
    /// (creation order); every order is total (ties by id), so pages never skip or repeat.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity")]
    async fn entities(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace.")] workspace_id: Uuid,
        #[graphql(desc = "Which entities (all when absent).")] filter: Option<
            super::entities::EntityFilter,
        >,
        #[graphql(desc = "The order (default `ID_ASC`).")] order_by: Option<
            super::entities::EntityOrder,
        >,
        #[graphql(desc = "How many entities, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (an edge's `cursor` or `endCursor`).")]
        after: Option<String>,
    ) -> Result<super::entities::EntityConnection> {
        let (viewer, request_db) = signed_in(ctx)?;
        let (first, after) = super::entities::page_arguments(first, after)?;
        let count = ctx.look_ahead().field("totalCount").exists();
        // The page checks membership itself; only an empty one needs telling "not a member"
        // (an error) from "nothing here" (an empty page).
        let page = super::entities::page(
            request_db,
            viewer.user_id,
            workspace_id,
            filter.unwrap_or_default(),
            super::entities::PageRequest {
                first,
                after,
                order: order_by.unwrap_or_default(),
                count,
            },
        )
        .await?;
        if page.edges.is_empty() {
            let transaction = request_db.lock().await;
            role_in(&*transaction, viewer.user_id, workspace_id).await?;
        }
        super::entities::prefetch(ctx, &page).await?;
        Ok(page)
    }

    /// Attributes of a workspace where a user's override and a newer, different provider value
    /// disagree, a page at a time (`first` ≤ 100), oldest first. Members read; decide one with
    /// `resolveConflict`.
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity")]
    async fn conflicts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace.")] workspace_id: Uuid,
        #[graphql(desc = "How many conflicts, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (an edge's `cursor` or `endCursor`).")]
        after: Option<String>,
    ) -> Result<super::conflicts::AttributeConflictConnection> {
        super::conflicts::page(ctx, workspace_id, first, after).await
    }

    /// One sync run (lineage: when it started, its connection and object type, the cursor it
    /// started from, its counts), or null when the viewer may not see it.
    async fn sync_run(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The run's id.")] id: Uuid,
    ) -> Result<Option<super::history::SyncRun>> {
        super::history::load_run(ctx, Some(id)).await
    }

    /// Any object with a global id (`nodeId`): an entity, a workspace or a connected account, if the viewer may read it; null otherwise (another workspace's object is
    /// indistinguishable from none).
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id (`nodeId`).")] id: async_graphql::ID,
    ) -> Result<Option<super::node::Node>> {
        use super::node::{Node, NodeKind};
        let (kind, uuid) = super::node::parse_global_id(&id)?;
        let found = match kind {
            NodeKind::Entity => self.entity(ctx, uuid, None).await.map(Node::Entity),
            NodeKind::ConnectedAccount => {
                self.connection(ctx, uuid).await.map(Node::ConnectedAccount)
            }
            NodeKind::Workspace => {
                let workspaces = self.workspaces(ctx).await?;
                return Ok(workspaces
                    .into_iter()
                    .find(|workspace| workspace.id == uuid)
                    .map(Node::Workspace));
            }
        };
        match found {
            Ok(node) => Ok(Some(node)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// One entity, if its workspace is one of the viewer's; with `asOf`, its attributes as they
    /// stood then (within `ATTRIBUTE_HISTORY_DAYS`; a time before that or in the future is
    /// `BAD_USER_INPUT`).
    async fn entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity's id.")] id: Uuid,
        #[graphql(desc = "Read its attributes as they stood at this time.")] as_of: Option<
            chrono::DateTime<chrono::Utc>,
        >,
    ) -> Result<super::entities::Entity> {
        let (viewer, request_db) = signed_in(ctx)?;
        if let Some(as_of) = as_of {
            let now = chrono::Utc::now();
            let days = ctx
                .data::<super::HistoryRetention>()
                .map_or(integrations::DEFAULT_ATTRIBUTE_HISTORY_DAYS, |retention| {
                    retention.0
                });
            if as_of > now + chrono::Duration::seconds(5) {
                return Err(error(Code::BadUserInput, "`asOf` is in the future"));
            }
            if as_of < now - chrono::Duration::days(days) {
                return Err(error(
                    Code::BadUserInput,
                    format!("`asOf` is before the {days} days of history kept"),
                ));
            }
        }
        let not_found = || error(Code::NotFound, format!("entity {id} not found"));
        let entity = super::entities::one(request_db, id)
            .await?
            .ok_or_else(not_found)?;
        let workspace_id = {
            let transaction = request_db.lock().await;
            let model = integrations::entity(&*transaction, id)
                .await
                .map_err(super::errors::engine)?
                .ok_or_else(not_found)?;
            role_in(&*transaction, viewer.user_id, model.workspace_id)
                .await
                .map_err(|_| not_found())?;
            model.workspace_id
        };
        let _ = workspace_id;
        Ok(super::entities::Entity { as_of, ..entity })
    }

    /// One connection, if its workspace is one of the viewer's.
    async fn connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection's id.")] id: Uuid,
    ) -> Result<IntegrationConnection> {
        let (viewer, request_db) = signed_in(ctx)?;
        let transaction = request_db.lock().await;
        let not_found = || error(Code::NotFound, format!("connection {id} not found"));
        let (model, definition) = integrations::connection_with_definition(&*transaction, id)
            .await
            .map_err(super::errors::engine)?
            .ok_or_else(not_found)?;
        role_in(&*transaction, viewer.user_id, model.workspace_id)
            .await
            .map_err(|_| not_found())?;
        let slug = definition
            .map(|definition| definition.slug)
            .unwrap_or_default();
        Ok(connection(model, slug))
    }
}
