//! Seed 002 V002: per-attribute provenance — which integration and external field each value of an
//! entity came from, and whether a user override pins it (`override_by_user`, `override_at`).

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS entity_attribute_provenance (
            id {uuid} PRIMARY KEY {uuid_default},
            entity_id {uuid} NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
            attribute_id {uuid} NOT NULL REFERENCES attribute_definitions (id) ON DELETE CASCADE,
            source_type VARCHAR(50) NOT NULL DEFAULT 'USER_CREATED'
                CONSTRAINT chk_entity_attribute_provenance_source_type
                CHECK (source_type IN ('USER_CREATED', 'USER_OVERRIDE', 'INTEGRATION', 'IMPORT', 'API')),
            source_integration_id {uuid} {fk_definitions},
            source_external_field TEXT,
            last_updated_at {tstz} NOT NULL DEFAULT {now},
            override_by_user BOOLEAN NOT NULL DEFAULT FALSE,
            override_at {tstz},
            CONSTRAINT uq_entity_attribute_provenance_entity_attribute UNIQUE (entity_id, attribute_id),
            CONSTRAINT chk_entity_attribute_provenance_override_at
                CHECK (override_by_user = FALSE OR override_at IS NOT NULL)
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_entity_attribute_provenance_entity_id
            ON entity_attribute_provenance (entity_id)",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_entity_attribute_provenance_source_integration_id
            ON entity_attribute_provenance (source_integration_id) WHERE source_integration_id IS NOT NULL",
    ),
    Postgres(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON entity_attribute_provenance TO authenticated",
    ),
];

const DOWN: &[Stmt] = &[Both("DROP TABLE IF EXISTS entity_attribute_provenance")];
