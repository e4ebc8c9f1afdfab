//! Mutations available so far: creating a workspace (the caller becomes its OWNER).

use async_graphql::{Context, Object, Result};
use entity::{workspace_members, workspaces};
use sea_orm::{EntityTrait as _, Set};
use uuid::Uuid;

use super::errors::{Code, db, error, internal};
use super::query::viewer;
use super::types::{Role, Workspace};

/// The mutation root: workspace and entity edits, and connection management.
#[derive(async_graphql::MergedObject, Debug, Default)]
pub struct Mutation(EditMutation, ConnectionMutation);

/// Workspace and entity edits.
#[derive(Debug, Default)]
pub struct EditMutation;

#[Object]
impl EditMutation {
    /// Creates a workspace owned by the viewer.
    async fn create_workspace(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Its name (1 to 200 characters).")] name: String,
    ) -> Result<Workspace> {
        let viewer = viewer(ctx)?;
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(error(
                Code::BadUserInput,
                "a workspace name has 1 to 200 characters",
            ));
        }
        // No workspace exists for RLS to check yet: the application writes it, as owner of the
        // tables, with the caller as its OWNER.
        let pool = &super::query::request(ctx)?.pool;
        let now = chrono::Utc::now().fixed_offset();
        let id = Uuid::new_v4();
        let transaction = integrations::begin_write(pool).await.map_err(db)?;
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
        #[graphql(desc = "The entity.")] entity_id: Uuid,
        #[graphql(desc = "The attribute's key.")] key: String,
        #[graphql(desc = "The new value (any JSON).")] value: async_graphql::Json<
            serde_json::Value,
        >,
        #[graphql(desc = "The entity's `syncVersion` the edit was made against.")]
        expected_sync_version: i64,
    ) -> Result<EditResult> {
        let pool = member_pool(ctx, entity_id).await?;
        let editor =
            integrations::AttributeEditor::new(pool, std::sync::Arc::new(providers::SystemClock))
                .acting_as(viewer(ctx)?.user_id);
        let editor = match ctx.data::<integrations::ProgressFeed>() {
            Ok(feed) => editor.with_feed(feed.clone()),
            Err(_) => editor,
        };
        let sync_version = editor
            .update_attribute(entity_id, &key, value.0, expected_sync_version)
            .await
            .map_err(super::errors::engine)?;
        Ok(EditResult {
            entity_id,
            sync_version,
        })
    }

    /// Removes the viewer's override of an attribute: it takes back the latest value the
    /// integration sent (kept under the override) with that value's provenance, at once.
    async fn clear_attribute_override(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity.")] entity_id: Uuid,
        #[graphql(desc = "The attribute's key.")] key: String,
        #[graphql(desc = "The entity's `syncVersion` the change was made against.")]
        expected_sync_version: i64,
    ) -> Result<EditResult> {
        let pool = member_pool(ctx, entity_id).await?;
        let editor =
            integrations::AttributeEditor::new(pool, std::sync::Arc::new(providers::SystemClock))
                .acting_as(viewer(ctx)?.user_id);
        let editor = match ctx.data::<integrations::ProgressFeed>() {
            Ok(feed) => editor.with_feed(feed.clone()),
            Err(_) => editor,
        };
        let sync_version = editor
            .clear_override(entity_id, &key, expected_sync_version)
            .await
            .map_err(super::errors::engine)?;
        Ok(EditResult {
            entity_id,
            sync_version,
        })
    }

    /// Decides a conflict on an attribute (a user override and a newer, different provider
    /// value): `USER` keeps the override, `PROVIDER` takes the provider's value and provenance.
    /// A conflict that no longer exists is `NOT_FOUND`; a stale `expectedSyncVersion` is a
    /// `CONFLICT`; either changes nothing.
    async fn resolve_conflict(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity.")] entity_id: Uuid,
        #[graphql(desc = "The attribute's key.")] key: String,
        #[graphql(desc = "Which value wins.")] keep: super::conflicts::ConflictResolution,
        #[graphql(desc = "The entity's `syncVersion` the decision was made against.")]
        expected_sync_version: i64,
    ) -> Result<EditResult> {
        let pool = member_pool(ctx, entity_id).await?;
        let editor =
            integrations::AttributeEditor::new(pool, std::sync::Arc::new(providers::SystemClock))
                .acting_as(viewer(ctx)?.user_id);
        let editor = match ctx.data::<integrations::ProgressFeed>() {
            Ok(feed) => editor.with_feed(feed.clone()),
            Err(_) => editor,
        };
        let keep_user = keep == super::conflicts::ConflictResolution::User;
        let sync_version = editor
            .resolve_conflict(entity_id, &key, keep_user, expected_sync_version)
            .await
            .map_err(super::errors::engine)?;
        Ok(EditResult {
            entity_id,
            sync_version,
        })
    }
}

/// Per-connection settings of `startConnection`.
#[derive(async_graphql::InputObject, Debug, Clone, Default)]
pub struct ConnectionConfigInput {
    /// Zendesk: the account's subdomain.
    pub zendesk_subdomain: Option<String>,
    /// Salesforce: a sandbox org.
    pub salesforce_sandbox: Option<bool>,
    /// Intercom: `us`, `eu` or `au`.
    pub intercom_region: Option<String>,
}

/// A started authorization (what `startConnection` returns).
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub struct ConnectionAuthorization {
    /// The pending connection.
    pub connection_id: Uuid,
    /// Where to send the user.
    pub authorization_url: String,
}

/// Admin mutations on connections.
#[derive(Debug, Default)]
pub struct ConnectionMutation;

fn engine<'a>(ctx: &Context<'a>) -> Result<&'a super::EngineHandle> {
    ctx.data::<super::EngineHandle>()
        .map_err(|_| internal("engine handle missing"))
}

fn factory(ctx: &Context<'_>) -> Result<std::sync::Arc<dyn integrations::ProviderFactory>> {
    engine(ctx)?.factory.clone().ok_or_else(|| {
        error(
            Code::ProviderError,
            "no provider is configured on this server",
        )
    })
}

/// The pool, once the viewer is an OWNER or ADMIN of `workspace_id` (a member is `FORBIDDEN`,
/// anyone else `NOT_FOUND`).
async fn admin_pool(
    ctx: &Context<'_>,
    workspace_id: Uuid,
) -> Result<(Uuid, sea_orm::DatabaseConnection)> {
    let viewer = viewer(ctx)?;
    let pool = super::query::request(ctx)?.pool.clone();
    let role = super::query::role_in(&pool, viewer.user_id, workspace_id).await?;
    if !role.manages() {
        return Err(error(
            Code::Forbidden,
            "only an OWNER or ADMIN manages connections",
        ));
    }
    Ok((viewer.user_id, pool))
}

/// A connection an OWNER or ADMIN of its workspace acts on: its row, its provider, the viewer and
/// the pool.
struct AdminConnection {
    connection: entity::integration_connections::Model,
    kind: providers::ProviderKind,
    user_id: Uuid,
    pool: sea_orm::DatabaseConnection,
}

impl AdminConnection {
    /// `CONFLICT` for a disconnected connection: nothing runs on it until it is connected again.
    fn refuse_disconnected(&self) -> Result<()> {
        if self.connection.status == integrations::Lifecycle::Disconnected.as_str() {
            return Err(error(
                Code::Conflict,
                "the connection is disconnected: connect it again first",
            ));
        }
        Ok(())
    }
}

/// The connection, once the viewer is an OWNER or ADMIN of its workspace. Another workspace's
/// connection answers exactly as one that does not exist (`connection <id> not found`), never
/// naming that workspace.
async fn admin_of_connection(ctx: &Context<'_>, connection_id: Uuid) -> Result<AdminConnection> {
    let not_found = || {
        error(
            Code::NotFound,
            format!("connection {connection_id} not found"),
        )
    };
    let pool = super::query::request(ctx)?.pool.clone();
    let (connection, definition) = integrations::connection_with_definition(&pool, connection_id)
        .await
        .map_err(super::errors::engine)?
        .ok_or_else(not_found)?;
    let kind = definition
        .and_then(|definition| providers::ProviderKind::from_slug(&definition.slug))
        .ok_or_else(not_found)?;
    match admin_pool(ctx, connection.workspace_id).await {
        Ok((user_id, pool)) => Ok(AdminConnection {
            connection,
            kind,
            user_id,
            pool,
        }),
        Err(refused) if super::query::is_not_found(&refused) => Err(not_found()),
        Err(refused) => Err(refused),
    }
}

fn manager(
    ctx: &Context<'_>,
    pool: sea_orm::DatabaseConnection,
) -> Result<integrations::ConnectionManager> {
    Ok(integrations::ConnectionManager::new(
        pool,
        std::sync::Arc::new(providers::SystemClock),
        engine(ctx)?.keyring.clone(),
    ))
}

#[Object]
impl ConnectionMutation {
    /// Starts connecting an integration by OAuth and returns the provider's authorization URL.
    async fn start_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace (the viewer must be an OWNER or ADMIN).")]
        workspace_id: Uuid,
        #[graphql(desc = "The integration (`hubspot`, `salesforce`, …).")] integration_slug: String,
        #[graphql(desc = "Settings some providers need (Zendesk's subdomain, …).")] config: Option<
            ConnectionConfigInput,
        >,
    ) -> Result<ConnectionAuthorization> {
        let (user_id, pool) = admin_pool(ctx, workspace_id).await?;
        let kind = providers::ProviderKind::from_slug(&integration_slug).ok_or_else(|| {
            error(
                Code::NotFound,
                format!("integration `{integration_slug}` not found"),
            )
        })?;
        let config = config.unwrap_or_default();
        let config = providers::ConnectionConfig {
            zendesk_subdomain: config.zendesk_subdomain,
            salesforce_sandbox: config.salesforce_sandbox.unwrap_or(false),
            intercom_region: match config.intercom_region.as_deref() {
                None => None,
                Some(name) => {
                    Some(providers::IntercomRegion::from_name(name).ok_or_else(|| {
                        error(Code::BadUserInput, "intercomRegion is `us`, `eu` or `au`")
                    })?)
                }
            },
        };
        let oauth = factory(ctx)?
            .oauth(kind, &config)
            .map_err(super::errors::engine)?;
        let started = manager(ctx, pool)?
            .start(
                integrations::StartConnection {
                    workspace_id,
                    user_id,
                    integration_slug,
                    config,
                },
                &oauth,
            )
            .await
            .map_err(super::errors::engine)?;
        Ok(ConnectionAuthorization {
            connection_id: started.connection_id,
            authorization_url: started.authorization_url,
        })
    }

    /// Completes an OAuth connection with the completion code `/oauth/callback` gave the browser
    /// (`?complete=` on the app's URL); returns the connection id. Only the user who started the
    /// authorization may complete it: anyone else is `FORBIDDEN` and nothing is connected.
    async fn complete_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `complete` value the app's URL received after the callback.")]
        code: String,
    ) -> Result<Uuid> {
        let viewer = viewer(ctx)?;
        let (state, provider_code) = crate::oauth::open_completion(&engine(ctx)?.keyring, &code)
            .map_err(|why| error(Code::BadUserInput, why))?;
        let factory = factory(ctx)?;
        let oauth_for = move |kind: providers::ProviderKind,
                              config: &providers::ConnectionConfig|
              -> std::result::Result<
            providers::OAuthClient,
            integrations::EngineError,
        > { factory.oauth(kind, config) };
        let pool = super::query::request(ctx)?.pool.clone();
        manager(ctx, pool)?
            .complete(
                integrations::OAuthCallback {
                    state,
                    code: Some(provider_code),
                    error: None,
                    user_id: viewer.user_id,
                },
                &oauth_for,
            )
            .await
            .map_err(super::errors::engine)
    }

    /// Connects Stripe with an API key (a restricted key is recommended); returns the connection id.
    async fn connect_with_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace (the viewer must be an OWNER or ADMIN).")]
        workspace_id: Uuid,
        #[graphql(desc = "The integration (`stripe`).")] integration_slug: String,
        #[graphql(desc = "The API key; stored sealed, never returned.")] api_key: String,
    ) -> Result<Uuid> {
        let (user_id, pool) = admin_pool(ctx, workspace_id).await?;
        let api_key = providers::secrecy::SecretString::from(api_key);
        manager(ctx, pool)?
            .connect_with_api_key(workspace_id, user_id, &integration_slug, &api_key)
            .await
            .map_err(super::errors::engine)
    }

    /// Disconnects: revokes at the provider where possible, deletes the credentials, stops syncs.
    async fn disconnect(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection.")] connection_id: Uuid,
    ) -> Result<Uuid> {
        let AdminConnection {
            connection,
            kind,
            user_id,
            pool,
        } = admin_of_connection(ctx, connection_id).await?;
        let workspace_id = connection.workspace_id;
        let oauth = engine(ctx)?.factory.as_ref().and_then(|factory| {
            factory
                .oauth(
                    kind,
                    &integrations::config_from_json(&connection.connection_metadata),
                )
                .ok()
        });
        // The provider client, so the engine removes the webhook endpoint it registered (Stripe,
        // Zendesk); without one (no provider configured, credentials unreadable) it disconnects
        // all the same and logs what it left.
        let api = match &engine(ctx)?.factory {
            Some(factory) => {
                let clock: std::sync::Arc<dyn providers::Clock> =
                    std::sync::Arc::new(providers::SystemClock);
                let credentials = integrations::CredentialStore::new(
                    pool.clone(),
                    clock.clone(),
                    engine(ctx)?.keyring.clone(),
                );
                let worker = integrations::Worker::new(
                    pool.clone(),
                    clock,
                    credentials,
                    factory.clone(),
                    "api-disconnect",
                );
                match worker.api_client(connection_id).await {
                    Ok(client) => Some(client),
                    Err(error) => {
                        tracing::warn!(%connection_id, %error, "no provider client to remove the webhook with");
                        None
                    }
                }
            }
            None => None,
        };
        manager(ctx, pool)?
            .disconnect(
                workspace_id,
                connection_id,
                user_id,
                oauth.as_ref(),
                api.as_ref(),
            )
            .await
            .map_err(super::errors::engine)?;
        Ok(connection_id)
    }

    /// Queues a sync of one object type, or of all the provider syncs; returns the jobs queued
    /// (a sync still waiting in the queue is not queued again).
    async fn trigger_sync(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection.")] connection_id: Uuid,
        #[graphql(desc = "One object type (`contacts`, …); all of the provider's when absent.")]
        object_type: Option<String>,
    ) -> Result<i32> {
        self.queue(ctx, connection_id, Requested::Sync(object_type))
            .await
    }

    /// Queues a validation of the connection.
    async fn validate_connection(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection.")] connection_id: Uuid,
    ) -> Result<i32> {
        self.queue(ctx, connection_id, Requested::Validate).await
    }

    /// Queues a health check of the connection.
    async fn run_health_check(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection.")] connection_id: Uuid,
    ) -> Result<i32> {
        self.queue(ctx, connection_id, Requested::HealthCheck).await
    }

    /// Replaces the connection's custom field mappings (`{"contacts": {"hs_score": "score"}}`).
    async fn update_property_mappings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection.")] connection_id: Uuid,
        #[graphql(desc = "Object type → provider field → attribute key.")]
        mappings: async_graphql::Json<serde_json::Value>,
    ) -> Result<Uuid> {
        let admin = admin_of_connection(ctx, connection_id).await?;
        admin.refuse_disconnected()?;
        let workspace_id = admin.connection.workspace_id;
        manager(ctx, admin.pool)?
            .update_property_mappings(workspace_id, connection_id, admin.user_id, mappings.0, None)
            .await
            .map_err(super::errors::engine)?;
        Ok(connection_id)
    }
}

/// What a user asked to run on a connection.
enum Requested {
    /// A sync of one object type, or of every object.
    Sync(Option<String>),
    /// A validation.
    Validate,
    /// A health check.
    HealthCheck,
}

impl ConnectionMutation {
    async fn queue(
        &self,
        ctx: &Context<'_>,
        connection_id: Uuid,
        requested: Requested,
    ) -> Result<i32> {
        let admin = admin_of_connection(ctx, connection_id).await?;
        admin.refuse_disconnected()?;
        let (provider, pool) = (admin.kind, admin.pool);
        let sync = |object_type: &str| integrations::Job::Sync {
            connection_id,
            object_type: object_type.to_owned(),
        };
        let jobs: Vec<integrations::Job> = match requested {
            Requested::Sync(Some(object))
                if providers::objects(provider).contains(&object.as_str()) =>
            {
                vec![sync(&object)]
            }
            Requested::Sync(Some(object)) => {
                return Err(error(
                    Code::BadUserInput,
                    format!("{provider} does not sync `{object}`"),
                ));
            }
            Requested::Sync(None) => providers::objects(provider)
                .iter()
                .map(|object| sync(object))
                .collect(),
            Requested::Validate => vec![integrations::Job::Validate { connection_id }],
            Requested::HealthCheck => vec![integrations::Job::HealthCheck { connection_id }],
        };
        let queue =
            integrations::JobQueue::new(pool, std::sync::Arc::new(providers::SystemClock), "api");
        let mut n_queued = 0;
        for job in jobs {
            let object = match &job {
                integrations::Job::Sync { object_type, .. } => object_type.clone(),
                _ => String::new(),
            };
            let family = format!("{}:{connection_id}:{object}:manual:", job.kind());
            n_queued += i32::from(
                queue
                    .enqueue_unless_pending(integrations::NewJob::new(job), &family)
                    .await
                    .map_err(super::errors::engine)?,
            );
        }
        Ok(n_queued)
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
    let viewer = viewer(ctx)?;
    let pool = super::query::request(ctx)?.pool.clone();
    let not_found = || error(Code::NotFound, format!("entity {entity_id} not found"));
    let entity = integrations::entity(&pool, entity_id)
        .await
        .map_err(super::errors::engine)?
        .ok_or_else(not_found)?;
    super::query::role_in(&pool, viewer.user_id, entity.workspace_id)
        .await
        .map_err(|_| not_found())?;
    Ok(pool)
}
