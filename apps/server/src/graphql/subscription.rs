//! Subscriptions over `GET /graphql/ws` (the `graphql-transport-ws` protocol, and the older
//! `graphql-ws`): the bearer token travels in `connection_init`'s payload (browsers cannot set
//! headers on a WebSocket), and a connection without a valid one is closed. Each subscription
//! checks membership once, through an RLS transaction, then streams events.

use async_graphql::futures_util::Stream;
use async_graphql::futures_util::stream;
use async_graphql::{Context, Data, Result, SimpleObject, Subscription as SubscriptionRoot};
use integrations::{ProgressFeed, SyncProgress};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::auth::{self, Viewer};
use super::context::RequestDb;
use super::errors::{Code, db, error, internal};
use super::query::role_in;

/// The subscription root.
#[derive(Debug, Default)]
pub struct Subscription;

/// What a WebSocket connection carries once initialised.
#[derive(Debug, Clone)]
pub struct SocketContext {
    /// The signed-in user.
    pub viewer: Viewer,
    /// The pool (each subscription's check opens its own RLS transaction).
    pub pool: DatabaseConnection,
    /// Where sync progress arrives.
    pub feed: ProgressFeed,
}

/// The bearer token of a `connection_init` payload: `{"Authorization": "Bearer …"}`,
/// `{"authorization": "Bearer …"}` or `{"token": "…"}`.
pub fn bearer_of(payload: &Value) -> Option<String> {
    let header = ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(*key).and_then(Value::as_str))
        .map(str::to_owned);
    header.or_else(|| {
        payload
            .get("token")
            .and_then(Value::as_str)
            .map(|token| format!("Bearer {token}"))
    })
}

/// Authenticates a WebSocket's `connection_init`: the connection's data, or an error that closes
/// it.
pub async fn connection_init(
    payload: Value,
    pool: DatabaseConnection,
    worker: DatabaseConnection,
    verifier: std::sync::Arc<auth::Verifier>,
    feed: ProgressFeed,
) -> Result<Data> {
    let authorization = bearer_of(&payload);
    let viewer = match auth::authenticate(
        &worker,
        authorization.as_deref(),
        &verifier,
        &auth::KnownUsers::default(),
    )
    .await
    {
        Ok(Ok(viewer)) => viewer,
        Ok(Err(why)) => return Err(error(Code::Unauthenticated, why.to_string())),
        Err(cause) => return Err(db(cause)),
    };
    let mut data = Data::default();
    data.insert(SocketContext { viewer, pool, feed });
    Ok(data)
}

/// One step of a sync's progress.
#[derive(SimpleObject, Debug, Clone)]
pub struct SyncProgressEvent {
    /// The connection.
    pub connection_id: Uuid,
    /// The object type being synced.
    pub object_type: String,
    /// Pages committed so far in this run.
    pub pages: i64,
    /// Entities created so far.
    pub created: i64,
    /// Entities updated so far.
    pub updated: i64,
    /// Entities archived so far.
    pub deleted: i64,
    /// Attribute values kept because a user override pins them.
    pub conflicts: i64,
    /// `SYNCING`, then `IDLE` (finished) or `ERROR`.
    pub status: super::types::SyncStatus,
    /// Why the run failed.
    pub error: Option<String>,
    /// Whether this is the run's last event.
    pub done: bool,
}

impl From<SyncProgress> for SyncProgressEvent {
    fn from(event: SyncProgress) -> Self {
        Self {
            done: event.is_final(),
            connection_id: event.connection_id,
            object_type: event.object_type,
            pages: event.pages.into(),
            created: event.created.into(),
            updated: event.updated.into(),
            deleted: event.deleted.into(),
            conflicts: event.conflicts.into(),
            status: super::types::SyncStatus::from_stored(&event.status),
            error: event.error,
        }
    }
}

/// What happened to an entity.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityChangeKind {
    /// It was created.
    Created,
    /// Some of its attributes changed (or it was unarchived).
    Updated,
    /// It was archived (deleted at the provider).
    Archived,
}

/// One entity's change, as it committed.
#[derive(SimpleObject, Debug, Clone)]
pub struct EntityChangeEvent {
    /// The entity.
    pub entity_id: Uuid,
    /// What happened.
    pub kind: EntityChangeKind,
    /// The attribute keys whose value changed.
    pub keys: Vec<String>,
    /// The sync run that made the change (absent for a user's edit).
    pub sync_run_id: Option<Uuid>,
    /// The user who made it (absent for a sync).
    pub user_id: Option<Uuid>,
}

/// The subscription root: live sync progress and entity changes.
#[SubscriptionRoot]
impl Subscription {
    /// Streams the changes of a workspace's entities of one type as they commit (from any server
    /// process on PostgreSQL; in-process on SQLite): created, updated or archived, with the keys
    /// that changed and the sync run or user. Members of the workspace only.
    async fn entity_changes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The workspace to watch.")] workspace_id: Uuid,
        #[graphql(desc = "The entity type to watch (`person`, `company`, …).")] entity_type: String,
    ) -> Result<impl Stream<Item = EntityChangeEvent> + use<>> {
        let socket = ctx.data::<SocketContext>().map_err(|_| {
            error(
                Code::BadUserInput,
                "subscriptions are served on the WebSocket at /graphql/ws",
            )
        })?;
        if !integrations::is_synced_entity_type(&entity_type) {
            return Err(error(
                Code::BadUserInput,
                format!("`{entity_type}` is not an entity type"),
            ));
        }
        let request_db = RequestDb::begin(&socket.pool, &socket.viewer)
            .await
            .map_err(db)?;
        let member = {
            let transaction = request_db.lock().await;
            role_in(&*transaction, socket.viewer.user_id, workspace_id)
                .await
                .is_ok()
        };
        request_db.finish(true).await.map_err(internal)?;
        if !member {
            return Err(error(
                Code::NotFound,
                format!("workspace {workspace_id} not found"),
            ));
        }
        let receiver = socket.feed.subscribe_changes();
        let pending: std::collections::VecDeque<EntityChangeEvent> =
            std::collections::VecDeque::new();
        Ok(stream::unfold(
            (receiver, pending),
            move |(mut receiver, mut pending)| {
                let entity_type = entity_type.clone();
                async move {
                    loop {
                        if let Some(event) = pending.pop_front() {
                            return Some((event, (receiver, pending)));
                        }
                        match receiver.recv().await {
                            Ok(batch)
                                if batch.workspace_id == workspace_id
                                    && batch.entity_type == entity_type =>
                            {
                                pending.extend(batch.changes.into_iter().map(|change| {
                                    EntityChangeEvent {
                                        entity_id: change.entity_id,
                                        kind: match change.kind {
                                            integrations::ChangeKind::Created => {
                                                EntityChangeKind::Created
                                            }
                                            integrations::ChangeKind::Updated => {
                                                EntityChangeKind::Updated
                                            }
                                            integrations::ChangeKind::Archived => {
                                                EntityChangeKind::Archived
                                            }
                                        },
                                        keys: change.keys,
                                        sync_run_id: batch.sync_run_id,
                                        user_id: batch.user_id,
                                    }
                                }));
                            }
                            Ok(_) => {}
                            Err(RecvError::Lagged(skipped)) => {
                                tracing::debug!(skipped, "an entity-change watcher fell behind");
                            }
                            Err(RecvError::Closed) => return None,
                        }
                    }
                }
            },
        ))
    }

    /// Streams the progress of a connection's syncs, page by page, as each page commits (from
    /// any server process). Every member of the connection's workspace may watch.
    async fn sync_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The connection to watch.")] connection_id: Uuid,
    ) -> Result<impl Stream<Item = SyncProgressEvent> + use<>> {
        let socket = ctx.data::<SocketContext>().map_err(|_| {
            error(
                Code::BadUserInput,
                "subscriptions are served on the WebSocket at /graphql/ws",
            )
        })?;
        let not_found = || {
            error(
                Code::NotFound,
                format!("connection {connection_id} not found"),
            )
        };
        let request_db = RequestDb::begin(&socket.pool, &socket.viewer)
            .await
            .map_err(db)?;
        let visible = {
            let transaction = request_db.lock().await;
            match integrations::connection(&*transaction, connection_id)
                .await
                .map_err(super::errors::engine)?
            {
                Some(model) => role_in(&*transaction, socket.viewer.user_id, model.workspace_id)
                    .await
                    .is_ok(),
                None => false,
            }
        };
        request_db.finish(true).await.map_err(internal)?;
        if !visible {
            return Err(not_found());
        }
        let receiver = socket.feed.subscribe();
        Ok(stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) if event.connection_id == connection_id => {
                        return Some((SyncProgressEvent::from(event), receiver));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "a progress watcher fell behind");
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }))
    }
}
