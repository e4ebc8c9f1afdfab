//! Entities as a Relay connection with per-attribute provenance. A page costs a constant number
//! of statements whatever its size: the page of entities (with the membership check in the same
//! statement; a second statement tells "not a member" from "empty" only when it returns nothing),
//! then one batched load of every attribute with its provenance; the integrations they name come
//! from the process's catalog cache (async-graphql DataLoaders, created per request so nothing
//! crosses tenants).

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use async_graphql::{ComplexObject, Context, InputObject, Json, Result, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, FixedOffset, Utc};
use entity::{entities, integration_definitions};
use integrations::EntityAfter;
use sea_orm::{ConnectionTrait as _, DbBackend, EntityTrait as _};
use uuid::Uuid;

use super::attribute_list::AttributeList;
use super::context::RequestDb;
use super::errors::{Code, db, error, internal};
use super::types::{AttributeSourceType, EntitySourceType, Integration};

/// The per-request, cached attributes loader.
pub type Attributes = DataLoader<AttributesLoader, HashMapCache>;
/// The per-request, cached integrations loader.
pub type Integrations = DataLoader<IntegrationsLoader, HashMapCache>;

/// The most entities one page may ask for.
pub const MAX_PAGE: u64 = 100;

/// Filters of the entity list.
#[derive(InputObject, Debug, Clone, Default)]
pub struct EntityFilter {
    /// Only this entity type (`person`, `company`, …).
    pub entity_type: Option<String>,
    /// Only entities synced from this integration (slug).
    pub source_integration: Option<String>,
    /// Only entities changed at or after this time.
    pub updated_since: Option<DateTime<Utc>>,
    /// Only entities with (true) or without (false) a user override.
    pub has_overrides: Option<bool>,
}

/// Where an entity came from.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct EntitySource {
    /// How it came to be.
    #[graphql(name = "type")]
    pub source_type: EntitySourceType,
    /// The provider's id of the record.
    pub external_id: Option<String>,
    /// A link to the record at the provider.
    pub url: Option<String>,
    /// When it was first synced.
    pub first_synced_at: Option<DateTime<Utc>>,
    /// When a sync last wrote it (created it, changed a value, its name or link, or unarchived
    /// it); a record read again unchanged leaves it as it was.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The entity's version (optimistic concurrency for edits).
    pub sync_version: i64,
    #[graphql(skip)]
    pub integration_id: Option<Uuid>,
}

#[ComplexObject]
impl EntitySource {
    /// The integration it was synced from.
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<std::sync::Arc<Integration>>> {
        load_integration(ctx, self.integration_id).await
    }
}

/// Where one attribute's value came from.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Provenance {
    /// Who or what wrote it.
    pub source_type: AttributeSourceType,
    /// The provider field it was read from.
    pub external_field: Option<String>,
    /// When the value was last written (for syncs: the provider's modification time).
    pub last_updated_at: DateTime<Utc>,
    /// Whether a user's value pins it against syncs.
    pub overridden_by_user: bool,
    /// When the user pinned it.
    pub override_at: Option<DateTime<Utc>>,
    #[graphql(skip)]
    pub integration_id: Option<Uuid>,
    #[graphql(skip)]
    pub sync_run_id: Option<Uuid>,
}

#[ComplexObject]
impl Provenance {
    /// The integration the value came from.
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<std::sync::Arc<Integration>>> {
        load_integration(ctx, self.integration_id).await
    }

    /// The sync run that last wrote the value (lineage: its start, connection and object type).
    async fn sync_run(&self, ctx: &Context<'_>) -> Result<Option<super::history::SyncRun>> {
        super::history::load_run(ctx, self.sync_run_id).await
    }
}

/// One attribute of an entity.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Attribute {
    /// The attribute key.
    pub key: String,
    /// Its value.
    pub value: Json<serde_json::Value>,
    /// Where it came from (absent for values written before provenance existed).
    pub provenance: Option<Provenance>,
    #[graphql(skip)]
    pub entity_id: Uuid,
    #[graphql(skip)]
    pub attribute_id: Uuid,
}

#[ComplexObject]
impl Attribute {
    /// Its changes of value or provenance, newest first (`first` ≤ 100), within the retention
    /// (`ATTRIBUTE_HISTORY_DAYS`).
    #[graphql(complexity = "first.unwrap_or(20).clamp(1, 100) as usize * child_complexity")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many changes, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "Continue after this cursor (an edge's `cursor` or `endCursor`).")]
        after: Option<String>,
    ) -> Result<super::history::AttributeChangeConnection> {
        super::history::page(ctx, self.entity_id, self.attribute_id, first, after).await
    }
}

/// An entity of a workspace.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Entity {
    /// Its id.
    pub id: Uuid,
    /// Its type.
    pub entity_type: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// When it was archived (deleted at the provider).
    pub archived_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Where it came from.
    pub source: EntitySource,
    /// The time its attributes are read at (`entity(id, asOf)`); now when absent.
    #[graphql(skip)]
    pub as_of: Option<DateTime<Utc>>,
}

#[ComplexObject]
impl Entity {
    /// Its global id (opaque; for `node(id:)`).
    pub(crate) async fn node_id(&self, _ctx: &Context<'_>) -> async_graphql::ID {
        super::node::global_id(super::node::NodeKind::Entity, self.id)
    }

    /// Its attributes with their provenance, by key (as they stood at `asOf` when the entity was
    /// asked for at a time: provenance is then the change that set each value, when the history
    /// has it).
    async fn attributes(&self, ctx: &Context<'_>) -> Result<AttributeList> {
        if let Some(as_of) = self.as_of {
            return attributes_as_of(ctx, self.id, as_of)
                .await
                .map(AttributeList);
        }
        let loader = ctx
            .data::<Attributes>()
            .map_err(|_| internal("attributes loader missing"))?;
        Ok(AttributeList(
            loader.load_one(self.id).await?.unwrap_or_default(),
        ))
    }
}

/// An edge of the entity connection.
#[derive(SimpleObject, Debug, Clone)]
pub struct EntityEdge {
    /// An opaque cursor to continue after this entity.
    pub cursor: String,
    /// The entity.
    pub node: Entity,
}

/// Relay page information.
#[derive(SimpleObject, Debug, Clone)]
pub struct PageInfo {
    /// Whether more entities follow.
    pub has_next_page: bool,
    /// Whether entities precede this page (true when it was asked for `after` a cursor).
    pub has_previous_page: bool,
    /// The cursor of the first edge.
    pub start_cursor: Option<String>,
    /// The cursor of the last edge.
    pub end_cursor: Option<String>,
}

/// A page of entities.
#[derive(SimpleObject, Debug, Clone)]
pub struct EntityConnection {
    /// The entities.
    pub edges: Vec<EntityEdge>,
    /// Where this page is.
    pub page_info: PageInfo,
    /// How many entities match the filter, across all pages (counted only when asked for).
    pub total_count: i64,
}

/// The order of the entity list.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntityOrder {
    /// By id, ascending: the order entities were created in (ids are time-ordered UUIDv7).
    /// The default.
    #[default]
    IdAsc,
    /// Most recently changed first; ties by id.
    UpdatedAtDesc,
    /// By display name, A to Z (by code point), entities without one last; ties by id.
    DisplayNameAsc,
}

fn cursor_of(backend: DbBackend, order: EntityOrder, model: &entities::Model) -> String {
    let text = match order {
        EntityOrder::IdAsc => format!("entity:{}", model.id),
        EntityOrder::UpdatedAtDesc => format!(
            "updated:{}:{}",
            integrations::updated_key(backend, model.updated_at),
            model.id
        ),
        EntityOrder::DisplayNameAsc => match &model.display_name {
            Some(name) => format!("name:{}:n:{name}", model.id),
            None => format!("name:{}:-", model.id),
        },
    };
    URL_SAFE_NO_PAD.encode(text)
}

fn after_of_cursor(cursor: &str) -> Result<EntityAfter> {
    let bad = || {
        error(
            Code::BadUserInput,
            "`after` is not a cursor this API issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let uuid = |text: &str| Uuid::parse_str(text).map_err(|_| bad());
    if let Some(id) = text.strip_prefix("entity:") {
        return Ok(EntityAfter::Id(uuid(id)?));
    }
    if let Some(rest) = text.strip_prefix("updated:") {
        let (micros, id) = rest.split_once(':').ok_or_else(bad)?;
        return Ok(EntityAfter::UpdatedAt(
            micros.parse().map_err(|_| bad())?,
            uuid(id)?,
        ));
    }
    if let Some(rest) = text.strip_prefix("name:") {
        let (id, name) = rest.split_at_checked(36).ok_or_else(bad)?;
        let name = match name {
            ":-" => None,
            other => Some(other.strip_prefix(":n:").ok_or_else(bad)?.to_owned()),
        };
        return Ok(EntityAfter::DisplayName(name, uuid(id)?));
    }
    Err(bad())
}

fn entity(model: entities::Model) -> Entity {
    let utc = |time: Option<DateTime<FixedOffset>>| time.map(|time| time.to_utc());
    Entity {
        id: model.id,
        entity_type: model.entity_type,
        display_name: model.display_name,
        archived_at: utc(model.archived_at),
        updated_at: model.updated_at.to_utc(),
        source: EntitySource {
            source_type: EntitySourceType::from_stored(&model.source_type),
            external_id: model.source_external_id,
            url: model.source_url,
            first_synced_at: utc(model.first_synced_at),
            last_synced_at: utc(model.last_synced_at),
            sync_version: model.sync_version,
            integration_id: model.source_integration_id,
        },
        as_of: None,
    }
}

/// The attributes of `entity_id` as they stood at `as_of`.
async fn attributes_as_of(
    ctx: &Context<'_>,
    entity_id: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Vec<Attribute>> {
    let (_, request_db) = super::query::signed_in(ctx)?;
    let transaction = request_db.lock().await;
    let rows = integrations::attributes_as_of(&*transaction, entity_id, as_of.fixed_offset())
        .await
        .map_err(super::errors::engine)?;
    Ok(rows
        .into_iter()
        .map(|row| Attribute {
            key: row.key,
            value: Json(row.value),
            provenance: row.set_by.map(|change| Provenance {
                overridden_by_user: change.source_type
                    == integrations::SourceType::UserOverride.as_str(),
                source_type: AttributeSourceType::from_stored(&change.source_type),
                external_field: change.source_external_field,
                last_updated_at: change.changed_at.to_utc(),
                override_at: None,
                integration_id: change.source_integration_id,
                sync_run_id: change.sync_run_id,
            }),
            entity_id,
            attribute_id: row.attribute_id,
        })
        .collect())
}

/// What one page asks for.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// How many entities (1 to [`MAX_PAGE`]).
    pub first: u64,
    /// Where to continue.
    pub after: Option<EntityAfter>,
    /// The order.
    pub order: EntityOrder,
    /// Whether to count every match (`totalCount` was selected).
    pub count: bool,
}

/// One page of the workspace's entities in `request.order`, after `request.after`, read by the
/// engine on the request's transaction.
pub async fn page(
    request_db: &RequestDb,
    viewer_id: Uuid,
    workspace_id: Uuid,
    filter: EntityFilter,
    request: PageRequest,
) -> Result<EntityConnection> {
    let transaction = request_db.lock().await;
    let backend = transaction.get_database_backend();
    let order = match request.order {
        EntityOrder::IdAsc => integrations::EntityOrder::IdAsc,
        EntityOrder::UpdatedAtDesc => integrations::EntityOrder::UpdatedAtDesc,
        EntityOrder::DisplayNameAsc => integrations::EntityOrder::DisplayNameAsc,
    };
    let first = request.first;
    let (mut rows, total) = integrations::entity_page(
        &*transaction,
        &integrations::EntityQuery {
            workspace_id,
            viewer_id,
            entity_type: filter.entity_type,
            source_integration: filter.source_integration,
            updated_since: filter.updated_since.map(|since| since.fixed_offset()),
            has_overrides: filter.has_overrides,
            order,
            after: request.after.clone(),
            limit: first + 1,
            count: request.count,
        },
    )
    .await
    .map_err(super::errors::engine)?;
    let total_count = total.map_or(0, |total| i64::try_from(total).unwrap_or(i64::MAX));
    let has_next_page = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let edges: Vec<EntityEdge> = rows
        .into_iter()
        .map(|model| EntityEdge {
            cursor: cursor_of(backend, request.order, &model),
            node: entity(model),
        })
        .collect();
    Ok(EntityConnection {
        page_info: PageInfo {
            has_next_page,
            has_previous_page: request.after.is_some(),
            start_cursor: edges.first().map(|edge| edge.cursor.clone()),
            end_cursor: edges.last().map(|edge| edge.cursor.clone()),
        },
        edges,
        total_count,
    })
}

/// Parses `after` and bounds `first`.
pub fn page_arguments(
    first: Option<i32>,
    after: Option<String>,
) -> Result<(u64, Option<EntityAfter>)> {
    let first = first.unwrap_or(20);
    let first = u64::try_from(first)
        .ok()
        .filter(|first| (1..=MAX_PAGE).contains(first))
        .ok_or_else(|| {
            error(
                Code::BadUserInput,
                format!("`first` must be between 1 and {MAX_PAGE}"),
            )
        })?;
    let after = after.as_deref().map(after_of_cursor).transpose()?;
    Ok((first, after))
}

/// One entity by id, if the caller may read it (the caller checks membership).
pub async fn one(request_db: &RequestDb, id: Uuid) -> Result<Option<Entity>> {
    let transaction = request_db.lock().await;
    Ok(integrations::entity(&*transaction, id)
        .await
        .map_err(super::errors::engine)?
        .map(entity))
}

/// Loads the attributes and integrations of a whole page in one batch each, before the fields
/// ask for them one entity at a time (the per-request loader caches then answer), so the
/// statement count does not depend on how the executor interleaves resolvers.
pub async fn prefetch(ctx: &Context<'_>, page: &EntityConnection) -> Result<()> {
    let (Ok(attributes), Ok(integrations)) = (ctx.data::<Attributes>(), ctx.data::<Integrations>())
    else {
        return Err(internal("loaders missing"));
    };
    // The loaders are called directly and their caches fed: `load_many` would wait for the
    // DataLoader's batching delay (a 1 ms timer, twice per page) although the keys are all known.
    let ids: Vec<Uuid> = page.edges.iter().map(|edge| edge.node.id).collect();
    let mut loaded = attributes.loader().load(&ids).await?;
    let mut integration_ids: Vec<Uuid> = page
        .edges
        .iter()
        .filter_map(|edge| edge.node.source.integration_id)
        .collect();
    integration_ids.extend(
        loaded
            .values()
            .flatten()
            .filter_map(|attribute| attribute.provenance.as_ref()?.integration_id),
    );
    integration_ids.sort_unstable();
    integration_ids.dedup();
    let named = integrations.loader().load(&integration_ids).await?;
    integrations.feed_many(named).await;
    // An entity without attributes is cached as such, so its resolver does not load it again.
    for id in ids {
        loaded.entry(id).or_default();
    }
    attributes.feed_many(loaded).await;
    Ok(())
}

/// The integration `id` names, shared (a page names the same few hundreds of times: each is an
/// `Arc`, not a copy of its JSON).
pub(crate) async fn load_integration(
    ctx: &Context<'_>,
    id: Option<Uuid>,
) -> Result<Option<std::sync::Arc<Integration>>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let loader = ctx
        .data::<Integrations>()
        .map_err(|_| internal("integrations loader missing"))?;
    // The fresh catalog answers without the loader's per-call bookkeeping; the loader reads it
    // again when it is stale or lacks the id.
    if let Some(found) = loader.loader().1.get(id) {
        return Ok(Some(found));
    }
    loader.load_one(id).await
}

/// Loads every attribute, with provenance, of many entities in one statement.
#[derive(Debug)]
pub struct AttributesLoader(pub RequestDb);

impl Loader<Uuid> for AttributesLoader {
    type Value = Vec<Attribute>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Attribute>>, Self::Error> {
        let transaction = self.0.lock().await;
        let rows = integrations::attribute_rows(&*transaction, keys)
            .await
            .map_err(super::errors::engine)?;
        let mut attributes: HashMap<Uuid, Vec<Attribute>> = HashMap::new();
        for row in rows {
            let provenance = match (row.source_type, row.last_updated_at) {
                (Some(source_type), Some(last_updated_at)) => Some(Provenance {
                    source_type: AttributeSourceType::from_stored(&source_type),
                    external_field: row.source_external_field,
                    last_updated_at: last_updated_at.to_utc(),
                    overridden_by_user: row.override_by_user.unwrap_or(false),
                    override_at: row.override_at.map(|time| time.to_utc()),
                    integration_id: row.source_integration_id,
                    sync_run_id: row.sync_run_id,
                }),
                _ => None,
            };
            attributes
                .entry(row.entity_id)
                .or_default()
                .push(Attribute {
                    key: row.key,
                    value: Json(row.value),
                    provenance,
                    entity_id: row.entity_id,
                    attribute_id: row.attribute_id,
                });
        }
        Ok(attributes)
    }
}

/// How long the integration catalog is served from memory before it is read again.
const CATALOG_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// The integration catalog (`integration_definitions`: global rows, written only by migrations),
/// shared by every request of the process and read again after a minute or when a request names an
/// id it does not hold. Tenant data is never cached.
#[derive(Debug, Default)]
pub struct IntegrationCatalog(std::sync::RwLock<Option<(std::time::Instant, Catalog)>>);

/// The catalog's definitions by id, each shared.
type Catalog = HashMap<Uuid, std::sync::Arc<Integration>>;

impl IntegrationCatalog {
    /// The definitions among `keys`, if the cached catalog is fresh and holds all of them.
    fn cached(&self, keys: &[Uuid]) -> Option<Catalog> {
        keys.iter()
            .map(|key| self.get(*key).map(|found| (*key, found)))
            .collect()
    }

    /// One definition, if the cached catalog is fresh and holds it.
    fn get(&self, id: Uuid) -> Option<std::sync::Arc<Integration>> {
        let cache = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (loaded_at, catalog) = cache.as_ref()?;
        if loaded_at.elapsed() >= CATALOG_TTL {
            return None;
        }
        catalog.get(&id).cloned()
    }

    fn store(&self, catalog: Catalog) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), catalog));
    }
}

/// Loads catalog definitions by id: from the process's [`IntegrationCatalog`] when it is fresh
/// and holds them, else the whole catalog in one statement (through the request's transaction).
#[derive(Debug)]
pub struct IntegrationsLoader(pub RequestDb, pub std::sync::Arc<IntegrationCatalog>);

impl Loader<Uuid> for IntegrationsLoader {
    type Value = std::sync::Arc<Integration>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<Catalog, Self::Error> {
        if let Some(found) = self.1.cached(keys) {
            return Ok(found);
        }
        let transaction = self.0.lock().await;
        let rows = integration_definitions::Entity::find()
            .all(&*transaction)
            .await
            .map_err(db)?;
        let catalog: Catalog = rows
            .into_iter()
            .map(|definition| {
                (
                    definition.id,
                    std::sync::Arc::new(Integration {
                        id: definition.id,
                        slug: definition.slug,
                        name: definition.name,
                        category: definition.category,
                        description: definition.description,
                        capabilities: Json(definition.capabilities),
                        auth_config: Json(definition.auth_config),
                    }),
                )
            })
            .collect();
        let found = keys
            .iter()
            .filter_map(|key| catalog.get(key).map(|found| (*key, found.clone())))
            .collect();
        self.1.store(catalog);
        Ok(found)
    }
}
