//! A page's writes on PostgreSQL as set-based statements: each table gets one
//! `INSERT … SELECT … FROM unnest($1, $2, …) … ON CONFLICT` whose rows travel as one typed array
//! per column, in PostgreSQL's binary format. The statement text is the same for every page
//! (prepared once per connection, planned in constant time), and the rows cost no text parsing
//! but that of the JSON values themselves (ids, times and names arrive as binary). The rules are
//! the same as the generic path's (`write_rows` in `sync.rs`, used on SQLite); the sync tests run
//! on both back ends.
//!
//! An array element cannot be SQL `NULL` here (sea-orm binds arrays of values only), so an
//! optional text rides as a JSON string or JSON `null` (read back with `#>> '{}'`), an optional
//! JSON value wrapped in a JSON array (`[value]` or `[]`, read back with `-> 0`), and an absent
//! fingerprint as empty bytes (a fingerprint never is). Times are sent as bound parameters are:
//! microseconds, truncated.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::Value;
use uuid::Uuid;

use super::SyncClaim;
use super::plan::{EntityWrite, PagePlan, ValueWrite};
use crate::EngineError;
use crate::lifecycle::SourceType;

/// Upserts the page's entities: new ones are inserted, known ones get their sync time, link,
/// name and unarchiving, and a version step when something changed.
const ENTITIES: &str =
    "INSERT INTO entities (id, workspace_id, entity_type, display_name, archived_at,
        created_by, created_at, updated_at, source_type, source_integration_id, source_external_id,
        source_url, first_synced_at, last_synced_at, sync_version, sync_fingerprint)
    SELECT r.id, $7, $8, r.display_name #>> '{}', NULL, NULL, $10, $10, $11, $9, r.external_id,
        r.source_url #>> '{}', $10, $10, r.changed, NULLIF(r.fingerprint, ''::bytea)
    FROM unnest($1::uuid[], $2::jsonb[], $3::text[], $4::jsonb[], $5::int8[], $6::bytea[])
        AS r (id, display_name, external_id, source_url, changed, fingerprint)
    ON CONFLICT (workspace_id, source_integration_id, source_external_id)
        WHERE source_integration_id IS NOT NULL AND source_external_id IS NOT NULL
    DO UPDATE SET last_synced_at = excluded.last_synced_at, source_url = excluded.source_url,
        display_name = excluded.display_name, archived_at = excluded.archived_at,
        sync_version = entities.sync_version + excluded.sync_version,
        updated_at = CASE WHEN excluded.sync_version > 0 THEN excluded.updated_at
                          ELSE entities.updated_at END,
        sync_fingerprint = excluded.sync_fingerprint";

/// Writes the fingerprints of entities the page leaves otherwise as they are (see
/// [`super::plan::EntityWrite::synced`]).
const FINGERPRINTS: &str =
    "UPDATE entities AS e SET sync_fingerprint = NULLIF(r.fingerprint, ''::bytea)
    FROM unnest($1::uuid[], $2::bytea[]) AS r (id, fingerprint)
    WHERE e.id = r.id AND e.workspace_id = $3";

/// The insert of a page's values: [`NEW_VALUES`] as it is, [`VALUES`] with its conflict clause.
macro_rules! insert_values {
    () => {
        "INSERT INTO entity_attribute_values (entity_id, attribute_id, value, updated_at, workspace_id)
    SELECT r.entity_id, r.attribute_id, r.value, $4, $5
    FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) AS r (entity_id, attribute_id, value)"
    };
}

/// The insert of a page's provenance: [`NEW_PROVENANCE`] as it is, [`PROVENANCE`] with its
/// conflict clause. Its rows are [`provenance_columns`].
macro_rules! insert_provenance {
    () => {
        "INSERT INTO entity_attribute_provenance (id, entity_id, attribute_id,
        source_type, source_integration_id, source_external_field, last_updated_at,
        override_by_user, override_at, observed_value, observed_integration_id,
        observed_external_field, observed_updated_at, observed_at, sync_run_id, workspace_id)
    SELECT r.id, r.entity_id, r.attribute_id, $7, $8, r.external_field, r.observed_at, FALSE, NULL,
        r.value, $8, r.external_field, r.observed_at, $9, $10, $11
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::jsonb[])
        AS r (id, entity_id, attribute_id, external_field, observed_at, value)"
    };
}

/// Writes the values; an override written since the page's read still wins.
const VALUES: &str = concat!(
    insert_values!(),
    "
    ON CONFLICT (entity_id, attribute_id)
    DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
    WHERE NOT EXISTS (SELECT 1 FROM entity_attribute_provenance p
        WHERE p.entity_id = excluded.entity_id AND p.attribute_id = excluded.attribute_id
          AND p.override_by_user)"
);

/// Inserts the values of entities this page creates: nothing can hold a row for an id that is
/// only now being inserted, so no conflict arbiter is needed (each row then costs one index
/// probe fewer).
const NEW_VALUES: &str = insert_values!();

/// Writes the values' provenance and observation, unless an override holds.
const PROVENANCE: &str = concat!(
    insert_provenance!(),
    "
    ON CONFLICT (entity_id, attribute_id)
    DO UPDATE SET source_type = excluded.source_type,
        source_integration_id = excluded.source_integration_id,
        source_external_field = excluded.source_external_field,
        last_updated_at = excluded.last_updated_at, sync_run_id = excluded.sync_run_id,
        observed_value = excluded.observed_value,
        observed_integration_id = excluded.observed_integration_id,
        observed_external_field = excluded.observed_external_field,
        observed_updated_at = excluded.observed_updated_at, observed_at = excluded.observed_at
    WHERE entity_attribute_provenance.override_by_user = FALSE"
);

/// Inserts the provenance and observation of new entities' values (see [`NEW_VALUES`]).
const NEW_PROVENANCE: &str = insert_provenance!();

/// Keeps only the observation (the shadow value) of values an override holds out. Its rows are
/// [`provenance_columns`].
const OBSERVATIONS: &str = "INSERT INTO entity_attribute_provenance (id, entity_id, attribute_id,
        source_type, source_integration_id, source_external_field, last_updated_at,
        override_by_user, override_at, observed_value, observed_integration_id,
        observed_external_field, observed_updated_at, observed_at, workspace_id)
    SELECT r.id, r.entity_id, r.attribute_id, $7, NULL, NULL, $9, TRUE, $9, r.value, $8,
        r.external_field, r.observed_at, $9, $10
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::jsonb[])
        AS r (id, entity_id, attribute_id, external_field, observed_at, value)
    ON CONFLICT (entity_id, attribute_id)
    DO UPDATE SET observed_value = excluded.observed_value,
        observed_integration_id = excluded.observed_integration_id,
        observed_external_field = excluded.observed_external_field,
        observed_updated_at = excluded.observed_updated_at, observed_at = excluded.observed_at";

/// Appends the attribute history of the written values.
const HISTORY: &str = "INSERT INTO entity_attribute_history (id, workspace_id, entity_id,
        attribute_id, old_value, new_value, source_type, source_integration_id,
        source_external_field, sync_run_id, user_id, changed_at)
    SELECT r.id, $7, r.entity_id, r.attribute_id, r.old_value -> 0, r.new_value, $8, $9,
        r.external_field, $10, NULL, $11
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::jsonb[], $5::jsonb[], $6::text[])
        AS r (id, entity_id, attribute_id, old_value, new_value, external_field)";

/// An optional text as a JSON string or `null` (read back with `#>> '{}'`).
fn optional_text(text: Option<&str>) -> Value {
    text.map_or(Value::Null, |text| Value::String(text.to_owned()))
}

/// A fingerprint as bytes, empty for none (read back with `NULLIF(…, ''::bytea)`).
fn fingerprint_bytes(fingerprint: Option<&[u8]>) -> Vec<u8> {
    fingerprint.map(<[u8]>::to_vec).unwrap_or_default()
}

/// The provenance (or observation) columns of `writes`, each row with a new id: `$1`–`$6` of
/// [`NEW_PROVENANCE`], [`PROVENANCE`] and [`OBSERVATIONS`].
fn provenance_columns<'a>(
    writes: impl ExactSizeIterator<Item = &'a ValueWrite>,
) -> Vec<sea_orm::Value> {
    let n = writes.len();
    let mut ids = Vec::with_capacity(n);
    let mut entity_ids = Vec::with_capacity(n);
    let mut attribute_ids = Vec::with_capacity(n);
    let mut fields = Vec::with_capacity(n);
    let mut observed_at: Vec<DateTime<FixedOffset>> = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for write in writes {
        ids.push(Uuid::now_v7());
        entity_ids.push(write.entity_id);
        attribute_ids.push(write.attribute_id);
        fields.push(write.external_field.clone());
        observed_at.push(write.observed_at);
        values.push(write.value.clone());
    }
    vec![
        ids.into(),
        entity_ids.into(),
        attribute_ids.into(),
        fields.into(),
        observed_at.into(),
        values.into(),
    ]
}

/// Runs `sql` with `columns` (its arrays, `$1` on) followed by `scalars`.
async fn run<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    mut columns: Vec<sea_orm::Value>,
    scalars: Vec<sea_orm::Value>,
    step: &'static str,
) -> Result<(), EngineError> {
    columns.extend(scalars);
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        columns,
    ))
    .await
    .context(step)?;
    Ok(())
}

/// Writes `planned`'s entities, values, provenance, observations and history.
pub(super) async fn write<C: ConnectionTrait>(
    db: &C,
    claim: &SyncClaim,
    now: DateTime<FixedOffset>,
    planned: &PagePlan,
) -> Result<(), EngineError> {
    let integration = SourceType::Integration.as_str();
    let (synced, resealed): (Vec<&EntityWrite>, Vec<&EntityWrite>) =
        planned.entities.iter().partition(|entity| entity.synced);
    if !synced.is_empty() {
        let n = synced.len();
        let mut ids = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        let mut external_ids = Vec::with_capacity(n);
        let mut urls = Vec::with_capacity(n);
        let mut changed = Vec::with_capacity(n);
        let mut fingerprints = Vec::with_capacity(n);
        for entity in &synced {
            ids.push(entity.id);
            names.push(optional_text(entity.display_name.as_deref()));
            external_ids.push(entity.external_id.clone());
            urls.push(optional_text(entity.source_url.as_deref()));
            // For a new row this is its version; for an existing one, the increment.
            changed.push(i64::from(entity.changed));
            fingerprints.push(fingerprint_bytes(entity.fingerprint.as_deref()));
        }
        run(
            db,
            ENTITIES,
            vec![
                ids.into(),
                names.into(),
                external_ids.into(),
                urls.into(),
                changed.into(),
                fingerprints.into(),
            ],
            vec![
                claim.workspace_id.into(),
                claim.mapping.entity_type.into(),
                claim.integration_id.into(),
                now.into(),
                integration.into(),
            ],
            "upserting entities",
        )
        .await?;
    }
    if !resealed.is_empty() {
        let ids: Vec<Uuid> = resealed.iter().map(|entity| entity.id).collect();
        let fingerprints: Vec<Vec<u8>> = resealed
            .iter()
            .map(|entity| fingerprint_bytes(entity.fingerprint.as_deref()))
            .collect();
        run(
            db,
            FINGERPRINTS,
            vec![ids.into(), fingerprints.into()],
            vec![claim.workspace_id.into()],
            "writing entities' fingerprints",
        )
        .await?;
    }
    // Values of entities created by this page are inserted; the others upserted.
    let created: HashSet<Uuid> = planned
        .entities
        .iter()
        .filter(|entity| entity.created)
        .map(|entity| entity.id)
        .collect();
    let (new, known): (Vec<&ValueWrite>, Vec<&ValueWrite>) = planned
        .values
        .iter()
        .partition(|write| created.contains(&write.entity_id));
    for (writes, values_sql, provenance_sql) in [
        (new, NEW_VALUES, NEW_PROVENANCE),
        (known, VALUES, PROVENANCE),
    ] {
        if writes.is_empty() {
            continue;
        }
        let entity_ids: Vec<Uuid> = writes.iter().map(|write| write.entity_id).collect();
        let attribute_ids: Vec<Uuid> = writes.iter().map(|write| write.attribute_id).collect();
        let values: Vec<Value> = writes.iter().map(|write| write.value.clone()).collect();
        run(
            db,
            values_sql,
            vec![entity_ids.into(), attribute_ids.into(), values.into()],
            vec![now.into(), claim.workspace_id.into()],
            "upserting attribute values",
        )
        .await?;
        run(
            db,
            provenance_sql,
            provenance_columns(writes.iter().copied()),
            vec![
                integration.into(),
                claim.integration_id.into(),
                now.into(),
                claim.run_id.into(),
                claim.workspace_id.into(),
            ],
            "upserting provenance",
        )
        .await?;
    }
    if !planned.pinned.is_empty() {
        run(
            db,
            OBSERVATIONS,
            provenance_columns(planned.pinned.iter()),
            vec![
                SourceType::UserOverride.as_str().into(),
                claim.integration_id.into(),
                now.into(),
                claim.workspace_id.into(),
            ],
            "keeping observed values under overrides",
        )
        .await?;
    }
    if !planned.values.is_empty() {
        let n = planned.values.len();
        let mut ids = Vec::with_capacity(n);
        let mut entity_ids = Vec::with_capacity(n);
        let mut attribute_ids = Vec::with_capacity(n);
        let mut old_values = Vec::with_capacity(n);
        let mut new_values = Vec::with_capacity(n);
        let mut fields = Vec::with_capacity(n);
        for write in &planned.values {
            ids.push(Uuid::now_v7());
            entity_ids.push(write.entity_id);
            attribute_ids.push(write.attribute_id);
            // History never keeps a member whose key names a secret.
            old_values.push(Value::Array(
                write
                    .previous
                    .as_ref()
                    .map(crate::sanitized_value)
                    .into_iter()
                    .collect(),
            ));
            new_values.push(crate::sanitized_value(&write.value));
            fields.push(write.external_field.clone());
        }
        run(
            db,
            HISTORY,
            vec![
                ids.into(),
                entity_ids.into(),
                attribute_ids.into(),
                old_values.into(),
                new_values.into(),
                fields.into(),
            ],
            vec![
                claim.workspace_id.into(),
                integration.into(),
                claim.integration_id.into(),
                claim.run_id.into(),
                now.into(),
            ],
            "appending attribute history",
        )
        .await?;
    }
    Ok(())
}
