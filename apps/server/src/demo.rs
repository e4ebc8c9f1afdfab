//! The embedded default's welcome: a demo user and workspace (created once) and a development
//! token for them, so a newcomer can run a GraphQL query a minute after `cargo run -p server`.

use anyhow::Context as _;
use sea_orm::{EntityTrait as _, Set};
use uuid::Uuid;

use crate::AppState;
use crate::graphql::auth::{Claims, sign};

/// The demo user's id (fixed, so restarts reuse it).
pub const DEMO_USER_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
/// The demo workspace's id.
pub const DEMO_WORKSPACE_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0002);

/// What a newcomer needs to query the API.
#[derive(Debug)]
pub struct DemoAccess {
    /// A bearer token for the demo user, valid for 24 hours.
    pub token: String,
    /// Where GraphiQL is served.
    pub graphiql_url: String,
}

/// Creates the demo user, workspace and membership when absent, and signs a 24-hour token.
pub async fn seed_demo(state: &AppState) -> anyhow::Result<DemoAccess> {
    let secret = state
        .settings
        .auth_jwt_secret
        .as_ref()
        .context("AUTH_JWT_SECRET is needed to sign the demo token")?;
    let now = chrono::Utc::now().fixed_offset();
    entity::users::Entity::insert(entity::users::ActiveModel {
        id: Set(DEMO_USER_ID),
        email: Set("demo@example.com".to_owned()),
        display_name: Set(Some("Demo user".to_owned())),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([entity::users::Column::Id])
    .exec_without_returning(&state.db)
    .await?;
    entity::workspaces::Entity::insert(entity::workspaces::ActiveModel {
        id: Set(DEMO_WORKSPACE_ID),
        name: Set("Demo workspace".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([entity::workspaces::Column::Id])
    .exec_without_returning(&state.db)
    .await?;
    entity::workspace_members::Entity::insert(entity::workspace_members::ActiveModel {
        workspace_id: Set(DEMO_WORKSPACE_ID),
        user_id: Set(DEMO_USER_ID),
        role: Set("OWNER".to_owned()),
        created_at: Set(now),
    })
    .on_conflict_do_nothing_on([
        entity::workspace_members::Column::WorkspaceId,
        entity::workspace_members::Column::UserId,
    ])
    .exec_without_returning(&state.db)
    .await?;
    let exp = u64::try_from(now.timestamp() + 24 * 60 * 60).unwrap_or_default();
    let token = sign(
        &Claims {
            sub: DEMO_USER_ID.to_string(),
            email: Some("demo@example.com".to_owned()),
            exp,
        },
        secret,
    )?;
    Ok(DemoAccess {
        token,
        graphiql_url: format!(
            "{}/graphql",
            state.settings.public_base_url.trim_end_matches('/')
        ),
    })
}
