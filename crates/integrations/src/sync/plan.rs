//! The merge decision of a page, as a pure function: given the page's records and what the
//! database holds for them, [`plan`] says which entities to upsert or archive, which attribute
//! values and provenance rows to write, and what the page counts. `write_page` reads the rows,
//! calls it, and executes the plan; the rules live here and are tested without a database.
//!
//! The rules, per attribute of a mapped record:
//! 1. a user override wins: the value is not written; a different incoming value is a conflict,
//!    and the observation (the shadow value) is kept in [`PagePlan::pinned`] unless it is the one
//!    already kept, or older than it;
//! 2. an older snapshot from the same integration (by the provider's modification time) never
//!    overwrites a newer one;
//! 3. the same value from the same integration and field writes nothing;
//! 4. anything else is written with this integration's provenance.
//!
//! A deleted record archives its entity (once); a record of an archived entity unarchives it. The
//! last version of a record in a page wins.
//!
//! A record whose [`fingerprint`] matches the one its entity carries ([`ExistingEntity::seals`])
//! is unchanged without reading its values: the entity holds what this record, under this mapping
//! and these rules, would write again, and nothing else has written it since. A plan writes the
//! fingerprint with the entity ([`EntityWrite::fingerprint`]) only when applying the record again
//! would change nothing and count no conflict.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset};
use providers::Record;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{SyncReport, display_name, field_value};

/// An entity the integration already wrote, as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingEntity {
    /// Its id.
    pub id: Uuid,
    /// It is archived.
    pub archived: bool,
    /// Its name as stored.
    pub display_name: Option<String>,
    /// Its link into the provider's app as stored.
    pub source_url: Option<String>,
    /// Its version (every writer of its attributes but the sync's unchanged records raises it).
    pub sync_version: i64,
    /// `entities.sync_fingerprint` as stored: the [`fingerprint`] of the record a sync last
    /// applied, then the version it left the entity at (8 bytes, big-endian).
    pub fingerprint: Option<Vec<u8>>,
}

impl ExistingEntity {
    /// The entity is live and holds what a record with fingerprint `print` writes: a sync applied
    /// that record, and its version has not moved since (no edit, no archiving, no other write).
    pub fn seals(&self, print: &Fingerprint) -> bool {
        !self.archived && self.fingerprint.as_deref() == Some(&stamp(print, self.sync_version)[..])
    }
}

/// A digest of what a record gives a plan: its id, time, link and mapped values, with the mapping
/// (field, key and attribute id), the writing integration and [`RULES`].
pub type Fingerprint = [u8; 16];

/// The version of the merge rules in every [`fingerprint`]: raise it when a rule changes what a
/// record writes, so that no fingerprint written under the old rules skips the new ones.
const RULES: u8 = 1;

/// The [`Fingerprint`] of a live record (`None` for a deleted one, which is always planned).
pub fn fingerprint(input: &PlanInput<'_>, record: &Record) -> Option<Fingerprint> {
    /// Feeds the hash as a writer, for `serde_json`.
    struct Feed<'a>(&'a mut Sha256);
    impl std::io::Write for Feed<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    fn text(hash: &mut Sha256, text: &str) {
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    if record.deleted {
        return None;
    }
    let mut hash = Sha256::new();
    hash.update([RULES]);
    hash.update(input.integration_id.as_bytes());
    text(&mut hash, &record.external_id);
    match record.updated_at {
        Some(time) => {
            hash.update([1]);
            hash.update(time.timestamp_micros().to_le_bytes());
        }
        None => hash.update([0]),
    }
    match &record.source_url {
        Some(url) => {
            hash.update([1]);
            text(&mut hash, url);
        }
        None => hash.update([0]),
    }
    for (external_field, key) in input.fields {
        text(&mut hash, external_field);
        text(&mut hash, key);
        match input.attribute_ids.get(key) {
            Some(id) => {
                hash.update([1]);
                hash.update(id.as_bytes());
            }
            None => hash.update([0]),
        }
        match field_value(&record.fields, external_field) {
            Some(value) => {
                hash.update([1]);
                // A JSON text ends itself; a value that does not encode has no fingerprint.
                serde_json::to_writer(Feed(&mut hash), value).ok()?;
            }
            None => hash.update([0]),
        }
    }
    let digest = hash.finalize();
    let mut print = [0; 16];
    print.copy_from_slice(&digest[..16]);
    Some(print)
}

/// `entities.sync_fingerprint` for `print` on an entity at `version`.
fn stamp(print: &Fingerprint, version: i64) -> [u8; 24] {
    let mut stamp = [0; 24];
    stamp[..16].copy_from_slice(print);
    stamp[16..].copy_from_slice(&version.to_be_bytes());
    stamp
}

/// Where an attribute's current value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The integration that wrote it (`None`: a user or another source).
    pub source_integration_id: Option<Uuid>,
    /// The provider field it came from.
    pub source_external_field: Option<String>,
    /// The provider's modification time of that value.
    pub last_updated_at: DateTime<FixedOffset>,
    /// A user override pins it.
    pub override_by_user: bool,
    /// The latest value observed from an integration (the shadow value, kept under an override).
    /// This and the two below are only read under an override (PostgreSQL's lookup only
    /// fetches them then).
    pub observed_value: Option<Value>,
    /// The provider field of the observation.
    pub observed_external_field: Option<String>,
    /// The provider's modification time of the observation.
    pub observed_updated_at: Option<DateTime<FixedOffset>>,
}

/// What the database holds for a page's records.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// External id → entity.
    pub entities: HashMap<String, ExistingEntity>,
    /// (entity, attribute) → value.
    pub values: HashMap<(Uuid, Uuid), Value>,
    /// (entity, attribute) → provenance.
    pub origins: HashMap<(Uuid, Uuid), Origin>,
}

/// The fixed inputs of a plan: which integration writes, and how fields map.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The writing integration (catalog definition).
    pub integration_id: Uuid,
    /// External field → attribute key.
    pub fields: &'a BTreeMap<String, String>,
    /// Attribute key → attribute id.
    pub attribute_ids: &'a HashMap<String, Uuid>,
    /// The modification time of values whose record has none.
    pub now: DateTime<FixedOffset>,
}

/// An entity row to upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityWrite {
    /// Its id (new for a record never seen).
    pub id: Uuid,
    /// The provider's id.
    pub external_id: String,
    /// The name to show.
    pub display_name: Option<String>,
    /// A link into the provider's app.
    pub source_url: Option<String>,
    /// It is new.
    pub created: bool,
    /// Something about it changed (a value, or it was unarchived): its version goes up.
    pub changed: bool,
    /// Something of it is written (it is new, changed, renamed or relinked), so its sync time
    /// moves; `false`: only its fingerprint is.
    pub synced: bool,
    /// Its new `sync_fingerprint` (`None`: the record counted a conflict, so it must be planned
    /// again next time).
    pub fingerprint: Option<Vec<u8>>,
}

/// An attribute value (and its provenance) to write.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueWrite {
    /// The entity.
    pub entity_id: Uuid,
    /// The attribute.
    pub attribute_id: Uuid,
    /// The value.
    pub value: Value,
    /// The provider field it came from.
    pub external_field: String,
    /// The provider's modification time (the plan's `now` when the record has none).
    pub observed_at: DateTime<FixedOffset>,
    /// The value it replaces (`None`: the attribute had none), for the attribute's history.
    pub previous: Option<Value>,
}

/// The merge decision of one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PagePlan {
    /// Entities to upsert: each live record that is new or changed something of its entity.
    pub entities: Vec<EntityWrite>,
    /// Values to write, each with this integration's provenance.
    pub values: Vec<ValueWrite>,
    /// Provider values a user override kept out: only their observation (the shadow value) is
    /// written.
    pub pinned: Vec<ValueWrite>,
    /// Entities to archive.
    pub archive: Vec<Uuid>,
    /// What the page counts (pages stays 0: the caller counts pages).
    pub counts: SyncReport,
    /// The newest provider modification time seen in the page.
    pub newest: Option<DateTime<FixedOffset>>,
}

/// A page's records as a plan applies them: the last version of each record, in the order the
/// page first names it, with its [`fingerprint`]. Built once per page: the engine reads the
/// database by its [`keys`](Self::keys), then plans it.
#[derive(Debug, Clone, Default)]
pub struct PageRecords {
    records: Vec<(Record, Option<Fingerprint>)>,
}

impl PageRecords {
    /// `records` as a plan under `input` applies them.
    pub fn of(input: &PlanInput<'_>, records: Vec<Record>) -> Self {
        let mut at: HashMap<String, usize> = HashMap::with_capacity(records.len());
        let mut latest: Vec<Record> = Vec::with_capacity(records.len());
        for record in records {
            match at.get(&record.external_id) {
                Some(&index) => latest[index] = record,
                None => {
                    at.insert(record.external_id.clone(), latest.len());
                    latest.push(record);
                }
            }
        }
        let records = latest
            .into_iter()
            .map(|record| {
                let print = fingerprint(input, &record);
                (record, print)
            })
            .collect();
        Self { records }
    }

    /// Each record's external id and fingerprint, sorted by id.
    pub fn keys(&self) -> Vec<(&str, Option<Fingerprint>)> {
        let mut keys: Vec<(&str, Option<Fingerprint>)> = self
            .records
            .iter()
            .map(|(record, print)| (record.external_id.as_str(), *print))
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        keys
    }
}

/// Decides what a page writes (`records` taken under the same `input`'s mapping). `new_id` names
/// an entity for a record never seen (the engine passes `Uuid::now_v7`).
pub fn plan(
    input: &PlanInput<'_>,
    records: PageRecords,
    existing: &Existing,
    mut new_id: impl FnMut() -> Uuid,
) -> PagePlan {
    let mut out = PagePlan::default();
    for (record, print) in records.records {
        plan_record(input, record, print, existing, &mut new_id, &mut out);
    }
    out
}

fn plan_record(
    input: &PlanInput<'_>,
    record: Record,
    print: Option<Fingerprint>,
    existing: &Existing,
    new_id: &mut impl FnMut() -> Uuid,
    out: &mut PagePlan,
) {
    let updated_at = record.updated_at.map(|time| time.fixed_offset());
    out.newest = Ord::max(out.newest, updated_at);
    let current = existing.entities.get(&record.external_id);
    if record.deleted {
        match current {
            Some(entity) if !entity.archived => {
                out.archive.push(entity.id);
                out.counts.deleted += 1;
            }
            _ => out.counts.unchanged += 1,
        }
        return;
    }
    if let (Some(entity), Some(print)) = (current, &print)
        && entity.seals(print)
    {
        out.counts.unchanged += 1;
        return;
    }
    let entity_id = current.map_or_else(&mut *new_id, |entity| entity.id);
    let mut changed = current.is_some_and(|entity| entity.archived);
    let mut conflicted = false;
    let mut mapped: HashMap<&str, &Value> = HashMap::new();
    for (external_field, key) in input.fields {
        let (Some(value), Some(attribute_id)) = (
            field_value(&record.fields, external_field),
            input.attribute_ids.get(key),
        ) else {
            continue;
        };
        mapped.insert(key.as_str(), value);
        let slot = (entity_id, *attribute_id);
        let origin = existing.origins.get(&slot);
        let held = existing.values.get(&slot);
        // The write is only built (its value copied) when something is written.
        let write = || ValueWrite {
            entity_id,
            attribute_id: *attribute_id,
            value: value.clone(),
            external_field: external_field.clone(),
            observed_at: updated_at.unwrap_or(input.now),
            previous: held.cloned(),
        };
        match decide(
            input.integration_id,
            origin,
            held,
            (value, external_field),
            updated_at,
        ) {
            Decision::Pinned { conflict, observe } => {
                if conflict {
                    conflicted = true;
                    out.counts.conflicts += 1;
                }
                if observe {
                    out.pinned.push(write());
                }
            }
            Decision::Keep => {}
            Decision::Write => {
                changed = true;
                out.values.push(write());
            }
        }
    }
    if current.is_none() {
        out.counts.created += 1;
    } else if changed {
        out.counts.updated += 1;
    } else {
        out.counts.unchanged += 1;
    }
    let display_name = display_name(&mapped, &record.external_id);
    let relabelled = current.is_some_and(|entity| {
        entity.display_name != display_name || entity.source_url != record.source_url
    });
    let changed = current.is_none() || changed;
    // What the entity will carry: this record's fingerprint at the version this write leaves.
    let version = current.map_or(0, |entity| entity.sync_version) + i64::from(changed);
    let fingerprint = print
        .filter(|_| !conflicted)
        .map(|print| stamp(&print, version).to_vec());
    let resealed = current.is_some_and(|entity| entity.fingerprint != fingerprint);
    if current.is_none() || changed || relabelled || resealed {
        out.entities.push(EntityWrite {
            id: entity_id,
            display_name,
            external_id: record.external_id,
            source_url: record.source_url,
            created: current.is_none(),
            changed,
            synced: changed || relabelled,
            fingerprint,
        });
    }
}

/// What happens to one incoming attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// A user override holds; `conflict` when the incoming value differs from it, `observe` when
    /// it is a new observation (not the shadow value already kept, nor older than it).
    Pinned { conflict: bool, observe: bool },
    /// Nothing to write: stale, or the same value from the same field.
    Keep,
    /// Write the value and this integration's provenance.
    Write,
}

/// `incoming`: the value and the provider field it came from.
fn decide(
    integration_id: Uuid,
    origin: Option<&Origin>,
    held: Option<&Value>,
    (value, external_field): (&Value, &str),
    updated_at: Option<DateTime<FixedOffset>>,
) -> Decision {
    if let Some(origin) = origin.filter(|origin| origin.override_by_user) {
        let same = origin.observed_value.as_ref() == Some(value)
            && origin.observed_external_field.as_deref() == Some(external_field);
        let older = origin
            .observed_updated_at
            .is_some_and(|observed| updated_at.is_some_and(|incoming| observed > incoming));
        return Decision::Pinned {
            conflict: held != Some(value),
            observe: !same && !older,
        };
    }
    let ours = origin.filter(|origin| origin.source_integration_id == Some(integration_id));
    // Stripe's events arrive newest first, so an object's earlier state can come on a later page.
    let stale = ours
        .is_some_and(|origin| updated_at.is_some_and(|incoming| origin.last_updated_at > incoming));
    let same = held == Some(value)
        && ours
            .is_some_and(|origin| origin.source_external_field.as_deref() == Some(external_field));
    if stale || same {
        Decision::Keep
    } else {
        Decision::Write
    }
}

#[cfg(test)]
mod tests;
