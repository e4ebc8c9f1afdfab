//! Shadow values: every attribute keeps the latest value observed from its integration — the
//! value, the integration, the external field, the provider's modification time and when it was
//! observed — even while a user override holds, so clearing the override restores the provider's
//! value at once, with no provider call, and a newer provider value under an override is a
//! conflict someone can list and decide.
//!
//! The columns live on `entity_attribute_provenance`, so its row-level security covers them.
//! Existing rows written by an integration get their current value as the observation. A partial
//! index finds the overridden attributes with an observation (the conflicts page). `down` drops
//! the index and the columns.

use crate::sql::Stmt::{self, Both};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN observed_value {json}"),
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN observed_integration_id {uuid}"),
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN observed_external_field TEXT"),
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN observed_updated_at {tstz}"),
    Both("ALTER TABLE entity_attribute_provenance ADD COLUMN observed_at {tstz}"),
    Both(
        "UPDATE entity_attribute_provenance SET
            observed_value = (SELECT v.value FROM entity_attribute_values v
                              WHERE v.entity_id = entity_attribute_provenance.entity_id
                                AND v.attribute_id = entity_attribute_provenance.attribute_id),
            observed_integration_id = source_integration_id,
            observed_external_field = source_external_field,
            observed_updated_at = last_updated_at,
            observed_at = last_updated_at
         WHERE source_type = 'INTEGRATION' AND source_integration_id IS NOT NULL",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_provenance_overridden_observed
         ON entity_attribute_provenance (entity_id)
         WHERE override_by_user AND observed_value IS NOT NULL",
    ),
];

const DOWN: &[Stmt] = &[
    Both("DROP INDEX IF EXISTS idx_provenance_overridden_observed"),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN observed_at"),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN observed_updated_at"),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN observed_external_field"),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN observed_integration_id"),
    Both("ALTER TABLE entity_attribute_provenance DROP COLUMN observed_value"),
];
