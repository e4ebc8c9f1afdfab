//! The webhook inbox (seed 003): a verified event is stored once by its dedupe key in
//! `webhook_events` (expiring after 30 days) and handed to the job queue in the same transaction;
//! a duplicate — the same delivery twice, or a hundred times at once — is acknowledged and not
//! processed again. Events are routed to their connection by the provider account id.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::{
    integration_connections as connections, integration_definitions as definitions, webhook_events,
};
use providers::{Clock, VerifiedEvent};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _, QuerySelect as _,
    RelationTrait as _, Set, TransactionTrait as _,
};
use serde_json::json;
use uuid::Uuid;

use crate::EngineError;
use crate::jobs::{NewJob, enqueue_on};

/// How long a dedupe key is kept.
pub const WEBHOOK_RETENTION_DAYS: i64 = 30;

/// What the inbox did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// First delivery: stored and queued for processing.
    Accepted {
        /// The connection it belongs to.
        connection_id: Uuid,
    },
    /// Seen before: acknowledged, not processed again.
    Duplicate,
    /// Valid, but for an account no connection has: acknowledged and logged, not processed.
    UnknownAccount,
}

/// Stores and routes verified webhook events.
#[derive(Debug, Clone)]
pub struct WebhookInbox {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl WebhookInbox {
    /// An inbox on `db`.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now().fixed_offset()
    }

    /// Takes one verified event. `connection_id` is given for per-connection endpoints; otherwise
    /// the event is routed by its account id.
    pub async fn take(
        &self,
        event: &VerifiedEvent,
        connection_id: Option<Uuid>,
    ) -> Result<Intake, EngineError> {
        let connection_id = match connection_id {
            Some(id) => Some(id),
            None => self.route(event).await?,
        };
        let Some(connection_id) = connection_id else {
            tracing::info!(provider = %event.provider, account = ?event.account_id, "webhook for an unknown account acknowledged");
            return Ok(Intake::UnknownAccount);
        };
        let now = self.now();
        let transaction = self.db.begin().await?;
        let inserted = webhook_events::Entity::insert(webhook_events::ActiveModel {
            id: Set(Uuid::new_v4()),
            event_id: Set(event.dedupe_key.clone()),
            provider: Set(event.provider.slug().to_owned()),
            connection_id: Set(Some(connection_id)),
            event_type: Set(Some(event.event_type.clone())),
            processed_at: Set(Some(now)),
            expires_at: Set(now + chrono::Duration::days(WEBHOOK_RETENTION_DAYS)),
        })
        .on_conflict_do_nothing_on([webhook_events::Column::EventId])
        .exec_without_returning(&transaction)
        .await?;
        if !matches!(inserted, sea_orm::TryInsertResult::Inserted(1)) {
            transaction.rollback().await?;
            return Ok(Intake::Duplicate);
        }
        let job = NewJob::new(
            "webhook",
            json!({
                "connection_id": connection_id,
                "provider": event.provider.slug(),
                "event_type": event.event_type,
                "object_type": event.object_type,
                "object_id": event.object_id,
                "payload": event.payload,
            }),
        )
        .with_key(format!("webhook:{}", event.dedupe_key));
        enqueue_on(&transaction, now, job).await?;
        transaction.commit().await?;
        Ok(Intake::Accepted { connection_id })
    }

    /// The connection of the event's provider whose stored external account id is the event's.
    async fn route(&self, event: &VerifiedEvent) -> Result<Option<Uuid>, EngineError> {
        let Some(account_id) = event.account_id.as_deref() else {
            return Ok(None);
        };
        let connection = connections::Entity::find()
            .join(
                sea_orm::JoinType::InnerJoin,
                connections::Relation::IntegrationDefinitions.def(),
            )
            .filter(definitions::Column::Slug.eq(event.provider.slug()))
            .filter(
                Expr::cust("CAST(integration_connections.connection_metadata ->> 'external_account_id' AS TEXT)")
                    .eq(account_id),
            )
            .one(&self.db)
            .await?;
        Ok(connection.map(|connection| connection.id))
    }

    /// Deletes dedupe keys past their expiry; returns how many.
    pub async fn cleanup_expired(&self) -> Result<u64, EngineError> {
        let deleted = webhook_events::Entity::delete_many()
            .filter(webhook_events::Column::ExpiresAt.lt(self.now()))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
