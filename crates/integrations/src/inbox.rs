//! The webhook inbox (seed 003): a verified event is stored once by its dedupe key in
//! `webhook_events` (expiring after 30 days) and handed to the job queue in the same transaction;
//! a duplicate — the same delivery twice, or a hundred times at once — is acknowledged and not
//! processed again. Events are routed to their connection by the provider account id.

use anyhow::Context as _;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use entity::{
    integration_connections as connections, integration_definitions as definitions, webhook_events,
};
use providers::{Clock, ProviderKind, VerifiedEvent};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait as _, DatabaseConnection, DbBackend, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, RelationTrait as _, Set, Statement,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::EngineError;
use crate::jobs::{Job, NewJob, enqueue_many_on};

/// The stored dedupe key of a provider's event key for one connection.
pub fn tenant_key(connection_id: Uuid, dedupe_key: &str) -> String {
    format!("{connection_id}:{dedupe_key}")
}

/// How long webhook events are gathered into one sync: the sync of an event's object runs at the
/// end of the bucket the event arrived in, so a burst costs one incremental read per bucket, and
/// every event is read by a sync that starts after it arrived.
pub const WEBHOOK_SYNC_BUCKET_SECONDS: i64 = 10;

/// The syncs an accepted event asks for: its object type's, or every object's when the event
/// does not name a synced one (Gmail's push, an unknown object), due at the end of the event's
/// bucket and keyed by it.
fn follow_up_syncs(
    event: &VerifiedEvent,
    connection_id: Uuid,
    now: DateTime<FixedOffset>,
) -> Vec<NewJob> {
    let objects = providers::objects(event.provider);
    let targets: Vec<&str> = match objects.iter().find(|synced| {
        synced_object_matches(synced, event.object_type.as_deref().unwrap_or_default())
    }) {
        Some(object) => vec![object],
        None => objects.to_vec(),
    };
    let bucket = now.timestamp().div_euclid(WEBHOOK_SYNC_BUCKET_SECONDS) + 1;
    let due = DateTime::from_timestamp(bucket * WEBHOOK_SYNC_BUCKET_SECONDS, 0)
        .map_or(now, |time| time.fixed_offset());
    targets
        .into_iter()
        .map(|object| {
            NewJob::new(Job::Sync {
                connection_id,
                object_type: object.to_owned(),
            })
            .with_key(format!("sync:{connection_id}:{object}:webhook:{bucket}"))
            .at(due)
        })
        .collect()
}

/// Whether a webhook's object type (`contact`, `customer`, `Account`, `ticket`, …) is the synced
/// object (`contacts`, `customers`, `Account`, `tickets`, …).
fn synced_object_matches(synced: &str, event_object: &str) -> bool {
    let event_object = event_object.to_ascii_lowercase();
    let synced = synced.to_ascii_lowercase();
    !event_object.is_empty()
        && (synced == event_object
            || synced == format!("{event_object}s")
            || synced == format!("{}ies", event_object.trim_end_matches('y'))
            || (synced == "charges" && event_object == "charge"))
}

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
    /// On PostgreSQL, the connections an account was last routed to (see [`Routes`]).
    routes: Arc<std::sync::Mutex<Routes>>,
}

/// The connections of each (provider, account id) as last read, kept so that a batch routed by
/// them is one statement: [`TAKE_PG`] checks in its own snapshot that every route it was given
/// is still exactly the connections the database routes that account to, and stores nothing if
/// one is not (the batch is routed afresh and taken again). So a stale route never stores an
/// event: a disconnected connection, or a second workspace connecting the same account, is seen
/// by the next batch. Only non-empty routes are kept: an unknown account is read every time,
/// since a batch of unknown accounts stores nothing and so checks nothing.
type Routes = HashMap<(ProviderKind, String), Vec<Uuid>>;

/// Most routes kept; past it the map starts again empty.
const MAX_ROUTES: usize = 4096;

/// Times a batch is routed afresh when its routes keep changing under it, before it fails.
const ROUTING_ATTEMPTS: usize = 3;

impl WebhookInbox {
    /// An inbox on `db`.
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            routes: Arc::default(),
        }
    }

    fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// The connections `event` is routed to: the kept route on PostgreSQL, else the database's
    /// (kept when not empty).
    async fn routed(
        &self,
        event: &VerifiedEvent,
        account_id: &str,
    ) -> Result<Vec<Uuid>, EngineError> {
        if !self.is_postgres() {
            return self.route(event).await;
        }
        let key = (event.provider, account_id.to_owned());
        if let Some(targets) = self.kept_routes().get(&key) {
            return Ok(targets.clone());
        }
        let targets = self.route(event).await?;
        if !targets.is_empty() {
            let mut routes = self.kept_routes();
            if routes.len() >= MAX_ROUTES {
                routes.clear();
            }
            routes.insert(key, targets.clone());
        }
        Ok(targets)
    }

    fn kept_routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        // A panic while holding the lock cannot leave the map half-written: keep using it.
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let intakes = self.take_many(&[(event, connection_id)]).await?;
        intakes
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::InvalidInput("no intake for the event".to_owned()))
    }

    /// Takes many verified events in one transaction: the dedupe rows and the jobs of the new
    /// ones, one commit (on PostgreSQL one statement, routes checked in it: see [`Routes`]). An
    /// event repeated within `events` is taken once (its later copies are duplicates). All or
    /// nothing: on error none is stored.
    pub async fn take_many(
        &self,
        events: &[(&VerifiedEvent, Option<Uuid>)],
    ) -> Result<Vec<Intake>, EngineError> {
        for _ in 0..ROUTING_ATTEMPTS {
            if let Some(intakes) = self.try_take_many(events).await? {
                return Ok(intakes);
            }
        }
        Err(EngineError::Unexpected(anyhow::anyhow!(
            "take_many: the batch's routes changed {ROUTING_ATTEMPTS} times while it was taken"
        )))
    }

    /// [`Self::take_many`] once: `None` when a kept route was stale (and is now forgotten).
    async fn try_take_many(
        &self,
        events: &[(&VerifiedEvent, Option<Uuid>)],
    ) -> Result<Option<Vec<Intake>>, EngineError> {
        let mut routes: HashMap<(ProviderKind, &str), Vec<Uuid>> = HashMap::new();
        let mut intakes = vec![Intake::UnknownAccount; events.len()];
        // Keys are per connection: `<connection id>:<provider key>`, so one event delivered to
        // two workspaces is taken once by each, and no tenant can claim another's ids.
        let mut seen_keys: HashSet<String> = HashSet::new();
        let mut candidates: Vec<(usize, Uuid, String)> = Vec::new();
        for (index, (event, connection_id)) in events.iter().enumerate() {
            let targets = match (connection_id, event.account_id.as_deref()) {
                (Some(id), _) => vec![*id],
                (None, None) => Vec::new(),
                (None, Some(account_id)) => match routes.get(&(event.provider, account_id)) {
                    Some(targets) => targets.clone(),
                    None => {
                        let targets = self.routed(event, account_id).await?;
                        routes.insert((event.provider, account_id), targets.clone());
                        targets
                    }
                },
            };
            if targets.is_empty() {
                tracing::info!(provider = %event.provider, account = ?event.account_id, "webhook for an unknown account acknowledged");
                continue;
            }
            intakes[index] = Intake::Duplicate;
            for target in targets {
                let key = tenant_key(target, &event.dedupe_key);
                if seen_keys.insert(key.clone()) {
                    candidates.push((index, target, key));
                }
            }
        }
        if candidates.is_empty() {
            return Ok(Some(intakes));
        }
        let now = self.now();
        if self.is_postgres() {
            let Some(inserted) = self.insert_pg(events, &candidates, &routes, now).await? else {
                let mut kept = self.kept_routes();
                for (provider, account_id) in routes.keys() {
                    kept.remove(&(*provider, (*account_id).to_owned()));
                }
                return Ok(None);
            };
            for (index, connection_id, key) in candidates {
                if inserted.contains(&key) && !matches!(intakes[index], Intake::Accepted { .. }) {
                    intakes[index] = Intake::Accepted { connection_id };
                }
            }
            return Ok(Some(intakes));
        }
        let transaction = crate::begin_write(&self.db)
            .await
            .context("take_many: beginning a transaction")?;
        let rows = candidates.iter().map(|(index, connection_id, key)| {
            let event = events[*index].0;
            webhook_events::ActiveModel {
                id: Set(Uuid::now_v7()),
                event_id: Set(key.clone()),
                provider: Set(event.provider.slug().to_owned()),
                connection_id: Set(Some(*connection_id)),
                event_type: Set(Some(event.event_type.clone())),
                processed_at: Set(Some(now)),
                expires_at: Set(now + chrono::Duration::days(WEBHOOK_RETENTION_DAYS)),
            }
        });
        let inserted: HashSet<String> = match webhook_events::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([webhook_events::Column::EventId])
            .exec_with_returning_many(&transaction)
            .await
            .context("take_many: writing")?
        {
            sea_orm::TryInsertResult::Inserted(models) => {
                models.into_iter().map(|model| model.event_id).collect()
            }
            sea_orm::TryInsertResult::Conflicted | sea_orm::TryInsertResult::Empty => {
                HashSet::new()
            }
        };
        let mut jobs = Vec::new();
        for (index, connection_id, key) in candidates {
            let event = events[index].0;
            if !inserted.contains(&key) {
                continue;
            }
            if !matches!(intakes[index], Intake::Accepted { .. }) {
                intakes[index] = Intake::Accepted { connection_id };
            }
            jobs.extend(follow_up_syncs(event, connection_id, now));
        }
        if jobs.is_empty() {
            transaction
                .rollback()
                .await
                .context("take_many: rolling back")?;
        } else {
            enqueue_many_on(&transaction, now, jobs).await?;
            transaction
                .commit()
                .await
                .context("take_many: committing")?;
        }
        Ok(Some(intakes))
    }

    /// On PostgreSQL the routes' check, the dedupe rows and the jobs of the new ones are one
    /// statement (so one round trip and its own commit, instead of a route query, `BEGIN`, two
    /// inserts and `COMMIT`): each job carries the keys of the events that ask for it, and is
    /// inserted only if one of their rows was. Answers the keys inserted, or `None`, having
    /// stored nothing, when one of `routes` is no longer the database's.
    async fn insert_pg(
        &self,
        events: &[(&VerifiedEvent, Option<Uuid>)],
        candidates: &[(usize, Uuid, String)],
        routes: &HashMap<(ProviderKind, &str), Vec<Uuid>>,
        now: DateTime<FixedOffset>,
    ) -> Result<Option<HashSet<String>>, EngineError> {
        // The rows as columns, bound as arrays (PostgreSQL's binary format: nothing to parse).
        let n = candidates.len();
        let (mut ids, mut event_ids, mut providers, mut connection_ids, mut event_types) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        // A batch's events mostly ask for the same few syncs (one per object and bucket): each
        // job is sent once, with the keys of every event that asks for it.
        let mut jobs: Vec<JobRow<'_>> = Vec::new();
        let mut job_of_key: HashMap<String, usize> = HashMap::new();
        for (index, connection_id, key) in candidates {
            let event = events[*index].0;
            ids.push(Uuid::now_v7());
            event_ids.push(key.clone());
            providers.push(event.provider.slug().to_owned());
            connection_ids.push(*connection_id);
            event_types.push(event.event_type.clone());
            for job in follow_up_syncs(event, *connection_id, now) {
                let asked = job
                    .job_key
                    .as_ref()
                    .and_then(|job_key| job_of_key.get(job_key).copied());
                match asked {
                    Some(at) => jobs[at].event_ids.push(key),
                    None => {
                        if let Some(job_key) = &job.job_key {
                            job_of_key.insert(job_key.clone(), jobs.len());
                        }
                        jobs.push(JobRow {
                            event_ids: vec![key],
                            job: crate::jobs::queued_row(now, job)?,
                        });
                    }
                }
            }
        }
        let routes: Vec<RouteRow<'_>> = routes
            .iter()
            .filter(|(_, targets)| !targets.is_empty())
            .map(|((provider, account_id), targets)| RouteRow {
                provider: provider.slug(),
                account_id,
                connection_ids: targets,
            })
            .collect();
        let jobs = serde_json::to_string(&jobs).context("take_many: encoding the jobs")?;
        let routes = serde_json::to_string(&routes).context("take_many: encoding the routes")?;
        let answered = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                TAKE_PG,
                [
                    ids.into(),
                    event_ids.into(),
                    providers.into(),
                    connection_ids.into(),
                    event_types.into(),
                    now.into(),
                    (now + chrono::Duration::days(WEBHOOK_RETENTION_DAYS)).into(),
                    jobs.into(),
                    routes.into(),
                    crate::Lifecycle::Disconnected.as_str().into(),
                ],
            ))
            .await
            .context("take_many: writing")?;
        let mut inserted = HashSet::with_capacity(answered.len());
        for row in answered {
            let key = row
                .try_get_by_index::<Option<String>>(0)
                .context("take_many: reading the inserted keys")?;
            match key {
                Some(key) => inserted.insert(key),
                // A stale route's row: nothing was stored.
                None => return Ok(None),
            };
        }
        Ok(Some(inserted))
    }

    /// Every connection of the event's provider whose stored external account id is the
    /// event's, but disconnected ones (an app-level event reaches each workspace connected to
    /// that account). `TAKE_PG`'s `stale` checks a kept route by the same conditions.
    async fn route(&self, event: &VerifiedEvent) -> Result<Vec<Uuid>, EngineError> {
        let Some(account_id) = event.account_id.as_deref() else {
            return Ok(Vec::new());
        };
        let connections = connections::Entity::find()
            .join(
                sea_orm::JoinType::InnerJoin,
                connections::Relation::IntegrationDefinitions.def(),
            )
            .filter(definitions::Column::Slug.eq(event.provider.slug()))
            .filter(
                Expr::cust("CAST(integration_connections.connection_metadata ->> 'external_account_id' AS TEXT)")
                    .eq(account_id),
            )
            .filter(connections::Column::Status.ne(crate::Lifecycle::Disconnected))
            .order_by_asc(connections::Column::CreatedAt)
            .select_only()
            .column(connections::Column::Id)
            .into_tuple::<Uuid>()
            .all(&self.db)
            .await
            .context("route: reading")?;
        Ok(connections)
    }

    /// Deletes dedupe keys past their expiry; returns how many.
    pub async fn cleanup_expired(&self) -> Result<u64, EngineError> {
        let deleted = webhook_events::Entity::delete_many()
            .filter(webhook_events::Column::ExpiresAt.lt(self.now()))
            .exec(&self.db)
            .await
            .context("cleanup_expired: writing")?;
        Ok(deleted.rows_affected)
    }
}

/// [`WebhookInbox::insert_pg`]'s statement. `stale` holds a row for each route given that is no
/// longer the database's (see [`Routes`]): then nothing is inserted, and the answer is a `NULL`
/// key per stale route. A job (sent once per key) is inserted only if one of the events asking
/// for it is inserted by this statement; its row is
/// `jobs::queued_row`'s, the one `jobs::enqueue_many_on` writes.
const TAKE_PG: &str = "WITH stale AS (
        SELECT 1
        FROM jsonb_to_recordset($9::jsonb)
            AS k (provider text, account_id text, connection_ids uuid[])
        CROSS JOIN LATERAL (
            SELECT COALESCE(array_agg(c.id), '{}') AS ids
            FROM integration_connections c
            JOIN integration_definitions d ON d.id = c.integration_id
            WHERE d.slug = k.provider
                AND c.connection_metadata ->> 'external_account_id' = k.account_id
                AND c.status <> $10
        ) AS db
        WHERE NOT (db.ids @> k.connection_ids AND k.connection_ids @> db.ids)
    ), inserted AS (
        INSERT INTO webhook_events (id, event_id, provider, connection_id, event_type,
            processed_at, expires_at)
        SELECT r.id, r.event_id, r.provider, r.connection_id, r.event_type, $6, $7
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[])
            AS r (id, event_id, provider, connection_id, event_type)
        WHERE NOT EXISTS (SELECT FROM stale)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), jobs AS (
        INSERT INTO job_queue
        SELECT r.*
        FROM jsonb_to_recordset($8::jsonb) AS j (event_ids text[], job jsonb)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::job_queue, j.job) AS r
        WHERE j.event_ids && ARRAY(SELECT event_id FROM inserted)
        ON CONFLICT (job_key) DO NOTHING
    )
    SELECT event_id FROM inserted
    UNION ALL
    SELECT NULL FROM stale";

/// A route of [`TAKE_PG`] to check: the connections a batch's events of this provider and account
/// were routed to.
#[derive(Serialize)]
struct RouteRow<'a> {
    provider: &'a str,
    account_id: &'a str,
    connection_ids: &'a [Uuid],
}

/// A `job_queue` row of [`TAKE_PG`], once per job key, with the keys of the events that ask for
/// it.
#[derive(Serialize)]
struct JobRow<'a> {
    event_ids: Vec<&'a str>,
    job: entity::job_queue::Model,
}

/// Most deliveries one transaction takes.
const MAX_BATCH: usize = 256;

/// Transactions that may be in flight at once (per process). One: a batch is one statement on
/// PostgreSQL, so while it runs the next batch gathers every delivery that arrives meanwhile, and
/// fewer, larger batches cost fewer commits. Against two flushers, in 3 alternating pairs, intake
/// went from ~9,100 to ~10,500 deliveries/s API-only, and PostgreSQL's CPU per delivery from ~75
/// to ~50 µs (bench/NOTES.md). The inbox's own statements never wait on each other's locks
/// within a process (only replicas' batches can meet on a key, for a commit's time).
const FLUSHERS: usize = 1;

/// Why a batched intake failed (the cause is logged where it happened).
pub type IntakeError = Arc<EngineError>;

/// One request's events waiting for a transaction.
#[derive(Debug)]
struct Pending {
    events: Vec<VerifiedEvent>,
    connection_id: Option<Uuid>,
    reply: oneshot::Sender<Result<Vec<Intake>, IntakeError>>,
}

/// Group commit in front of a [`WebhookInbox`]: deliveries arriving together share one transaction
/// (and one WAL flush) instead of paying one each. A delivery is answered only after the
/// transaction holding its events committed, so an acknowledged event is stored; when a shared
/// transaction fails, each delivery of it is retried alone, so one bad delivery fails only itself.
#[derive(Debug, Clone)]
pub struct BatchingInbox {
    sender: mpsc::Sender<Pending>,
}

impl BatchingInbox {
    /// Starts the flushers on the current tokio runtime; they stop when every handle is dropped.
    pub fn spawn(inbox: WebhookInbox) -> Self {
        let (sender, receiver) = mpsc::channel(MAX_BATCH * FLUSHERS);
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..FLUSHERS {
            tokio::spawn(flush(inbox.clone(), receiver.clone()));
        }
        Self { sender }
    }

    /// Takes one request's events (see [`WebhookInbox::take_many`]), sharing the transaction with
    /// whatever else is waiting.
    pub async fn take_all(
        &self,
        events: Vec<VerifiedEvent>,
        connection_id: Option<Uuid>,
    ) -> Result<Vec<Intake>, IntakeError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || {
            Arc::new(EngineError::InvalidInput(
                "the webhook inbox stopped".to_owned(),
            ))
        };
        self.sender
            .send(Pending {
                events,
                connection_id,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn flush(inbox: WebhookInbox, receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut n_events = first.events.len();
            batch.push(first);
            while n_events < MAX_BATCH {
                let Ok(more) = receiver.try_recv() else {
                    break;
                };
                n_events += more.events.len();
                batch.push(more);
            }
        }
        let events: Vec<(&VerifiedEvent, Option<Uuid>)> = batch
            .iter()
            .flat_map(|pending| {
                pending
                    .events
                    .iter()
                    .map(|event| (event, pending.connection_id))
            })
            .collect();
        match inbox.take_many(&events).await {
            Ok(intakes) => {
                let mut intakes = intakes.into_iter();
                for pending in batch {
                    let mine = intakes.by_ref().take(pending.events.len()).collect();
                    let _ = pending.reply.send(Ok(mine));
                }
            }
            Err(error) if batch.len() == 1 => {
                let _ = batch.remove(0).reply.send(Err(Arc::new(error)));
            }
            Err(error) => {
                tracing::warn!(%error, n_deliveries = batch.len(), "a shared webhook transaction failed; taking its deliveries one by one");
                for pending in batch {
                    let events: Vec<(&VerifiedEvent, Option<Uuid>)> = pending
                        .events
                        .iter()
                        .map(|event| (event, pending.connection_id))
                        .collect();
                    let result = inbox.take_many(&events).await.map_err(Arc::new);
                    let _ = pending.reply.send(result);
                }
            }
        }
    }
}
