//! A page's writes on PostgreSQL as set-based statements: each table gets one
//! `INSERT … SELECT … FROM jsonb_to_recordset($1) … ON CONFLICT` whose rows travel as one JSON
//! parameter. The statement text is the same for every page (prepared once per connection, planned
//! in constant time), and the rows cost one parse of a JSON document instead of thousands of bound
//! parameters. The rules are the same as the generic path's (`write_rows` in `sync.rs`, used on
//! SQLite); the sync tests run on both back ends.
//!
//! JSON values ride wrapped in a one-element array (`[value]`, read back as `-> 0`) so that a
//! JSON `null` stays a JSON `null` and an absent value stays SQL `NULL`; times are sent with
//! microseconds, truncated, as the bound parameters were.

use std::collections::HashSet;

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::Serialize;
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
    SELECT r.id, $2, $3, r.display_name, NULL, NULL, $5, $5, $6, $4, r.external_id, r.source_url,
        $5, $5, r.changed, decode(r.fingerprint, 'hex')
    FROM jsonb_to_recordset($1::jsonb)
        AS r (id uuid, display_name text, external_id text, source_url text, changed bigint,
            fingerprint text)
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
    "UPDATE entities AS e SET sync_fingerprint = decode(r.fingerprint, 'hex')
    FROM jsonb_to_recordset($1::jsonb) AS r (id uuid, fingerprint text)
    WHERE e.id = r.id AND e.workspace_id = $2";

/// The insert of a page's values: [`NEW_VALUES`] as it is, [`VALUES`] with its conflict clause.
macro_rules! insert_values {
    () => {
        "INSERT INTO entity_attribute_values (entity_id, attribute_id, value, updated_at, workspace_id)
    SELECT r.entity_id, r.attribute_id, r.value -> 0, $2, $3
    FROM jsonb_to_recordset($1::jsonb) AS r (entity_id uuid, attribute_id uuid, value jsonb)"
    };
}

/// The insert of a page's provenance: [`NEW_PROVENANCE`] as it is, [`PROVENANCE`] with its
/// conflict clause.
macro_rules! insert_provenance {
    () => {
        "INSERT INTO entity_attribute_provenance (id, entity_id, attribute_id,
        source_type, source_integration_id, source_external_field, last_updated_at,
        override_by_user, override_at, observed_value, observed_integration_id,
        observed_external_field, observed_updated_at, observed_at, sync_run_id, workspace_id)
    SELECT r.id, r.entity_id, r.attribute_id, $2, $3, r.external_field, r.observed_at, FALSE, NULL,
        r.value -> 0, $3, r.external_field, r.observed_at, $4, $5, $6
    FROM jsonb_to_recordset($1::jsonb) AS r (id uuid, entity_id uuid, attribute_id uuid,
        external_field text, observed_at timestamptz, value jsonb)"
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

/// Keeps only the observation (the shadow value) of values an override holds out.
const OBSERVATIONS: &str = "INSERT INTO entity_attribute_provenance (id, entity_id, attribute_id,
        source_type, source_integration_id, source_external_field, last_updated_at,
        override_by_user, override_at, observed_value, observed_integration_id,
        observed_external_field, observed_updated_at, observed_at, workspace_id)
    SELECT r.id, r.entity_id, r.attribute_id, $2, NULL, NULL, $4, TRUE, $4, r.value -> 0, $3,
        r.external_field, r.observed_at, $4, $5
    FROM jsonb_to_recordset($1::jsonb) AS r (id uuid, entity_id uuid, attribute_id uuid,
        external_field text, observed_at timestamptz, value jsonb)
    ON CONFLICT (entity_id, attribute_id)
    DO UPDATE SET observed_value = excluded.observed_value,
        observed_integration_id = excluded.observed_integration_id,
        observed_external_field = excluded.observed_external_field,
        observed_updated_at = excluded.observed_updated_at, observed_at = excluded.observed_at";

/// Appends the attribute history of the written values.
const HISTORY: &str = "INSERT INTO entity_attribute_history (id, workspace_id, entity_id,
        attribute_id, old_value, new_value, source_type, source_integration_id,
        source_external_field, sync_run_id, user_id, changed_at)
    SELECT r.id, $2, r.entity_id, r.attribute_id, r.old_value -> 0, r.new_value -> 0, $3, $4,
        r.external_field, $5, NULL, $6
    FROM jsonb_to_recordset($1::jsonb) AS r (id uuid, entity_id uuid, attribute_id uuid,
        old_value jsonb, new_value jsonb, external_field text)";

#[derive(Serialize)]
struct EntityRow<'a> {
    id: Uuid,
    display_name: Option<&'a str>,
    external_id: &'a str,
    source_url: Option<&'a str>,
    changed: i64,
    fingerprint: Option<String>,
}

#[derive(Serialize)]
struct FingerprintRow {
    id: Uuid,
    fingerprint: Option<String>,
}

#[derive(Serialize)]
struct ValueRow<'a> {
    entity_id: Uuid,
    attribute_id: Uuid,
    value: [&'a Value; 1],
}

#[derive(Serialize)]
struct ProvenanceRow<'a> {
    id: Uuid,
    entity_id: Uuid,
    attribute_id: Uuid,
    external_field: &'a str,
    observed_at: String,
    value: [&'a Value; 1],
}

#[derive(Serialize)]
struct HistoryRow<'a> {
    id: Uuid,
    entity_id: Uuid,
    attribute_id: Uuid,
    old_value: Option<[Value; 1]>,
    new_value: [Value; 1],
    external_field: &'a str,
}

/// A time as PostgreSQL's `timestamptz` keeps it (microseconds), truncated as a bound parameter
/// is.
fn micros(time: &DateTime<FixedOffset>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The provenance (or observation) rows of `writes`, each with a new id.
fn provenance_rows<'a>(writes: impl Iterator<Item = &'a ValueWrite>) -> Vec<ProvenanceRow<'a>> {
    writes
        .map(|write| ProvenanceRow {
            id: Uuid::now_v7(),
            entity_id: write.entity_id,
            attribute_id: write.attribute_id,
            external_field: &write.external_field,
            observed_at: micros(&write.observed_at),
            value: [&write.value],
        })
        .collect()
}

async fn run<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    rows: &impl Serialize,
    mut values: Vec<sea_orm::Value>,
    step: &'static str,
) -> Result<(), EngineError> {
    let json = serde_json::to_string(rows).context(step)?;
    values.insert(0, json.into());
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
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
        let rows: Vec<EntityRow<'_>> = synced
            .iter()
            .map(|entity| EntityRow {
                id: entity.id,
                display_name: entity.display_name.as_deref(),
                external_id: &entity.external_id,
                source_url: entity.source_url.as_deref(),
                // For a new row this is its version; for an existing one, the increment.
                changed: i64::from(entity.changed),
                fingerprint: entity.fingerprint.as_deref().map(hex::encode),
            })
            .collect();
        run(
            db,
            ENTITIES,
            &rows,
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
        let rows: Vec<FingerprintRow> = resealed
            .iter()
            .map(|entity| FingerprintRow {
                id: entity.id,
                fingerprint: entity.fingerprint.as_deref().map(hex::encode),
            })
            .collect();
        run(
            db,
            FINGERPRINTS,
            &rows,
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
        let values: Vec<ValueRow<'_>> = writes
            .iter()
            .map(|write| ValueRow {
                entity_id: write.entity_id,
                attribute_id: write.attribute_id,
                value: [&write.value],
            })
            .collect();
        run(
            db,
            values_sql,
            &values,
            vec![now.into(), claim.workspace_id.into()],
            "upserting attribute values",
        )
        .await?;
        run(
            db,
            provenance_sql,
            &provenance_rows(writes.iter().copied()),
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
            &provenance_rows(planned.pinned.iter()),
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
        let history: Vec<HistoryRow<'_>> = planned
            .values
            .iter()
            .map(|write| HistoryRow {
                id: Uuid::now_v7(),
                entity_id: write.entity_id,
                attribute_id: write.attribute_id,
                // History never keeps a member whose key names a secret.
                old_value: write
                    .previous
                    .as_ref()
                    .map(|value| [crate::sanitized_value(value)]),
                new_value: [crate::sanitized_value(&write.value)],
                external_field: &write.external_field,
            })
            .collect();
        run(
            db,
            HISTORY,
            &history,
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
