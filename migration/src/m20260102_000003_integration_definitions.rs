//! Seed 002 V003: the global integration catalog (`integration_definitions`, no workspace, no RLS)
//! and the generic `update_updated_at_column()` trigger function.

use crate::sql::Stmt::{self, Both, Postgres};

crate::sql_migration!();

const UP: &[Stmt] = &[
    Both(
        "CREATE TABLE IF NOT EXISTS integration_definitions (
            id {uuid} PRIMARY KEY {uuid_default},
            slug VARCHAR(100) NOT NULL,
            name TEXT NOT NULL,
            icon_url TEXT,
            description TEXT,
            category VARCHAR(50) NOT NULL
                CONSTRAINT chk_integration_definitions_category
                CHECK (category IN ('CRM', 'PAYMENTS', 'SUPPORT', 'EMAIL', 'MARKETING', 'PRODUCTIVITY', 'OTHER')),
            nango_provider_key VARCHAR(100) NOT NULL,
            capabilities {json} NOT NULL DEFAULT '{}',
            sync_config {json} NOT NULL DEFAULT '{}',
            auth_config {json} NOT NULL DEFAULT '{}',
            active BOOLEAN NOT NULL DEFAULT TRUE,
            created_at {tstz} NOT NULL DEFAULT {now},
            updated_at {tstz} NOT NULL DEFAULT {now},
            CONSTRAINT uq_integration_definitions_slug UNIQUE (slug)
        )",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_definitions_category
            ON integration_definitions (category)",
    ),
    Both(
        "CREATE INDEX IF NOT EXISTS idx_integration_definitions_active
            ON integration_definitions (active) WHERE active = TRUE",
    ),
    // The seed warns that CREATE OR REPLACE overwrites an existing function of this name; this body
    // is the conventional one (Supabase's moddatetime does the same), so replacing it is compatible.
    Postgres(
        "CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS TRIGGER LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at = now();
            RETURN NEW;
        END
        $$",
    ),
    Postgres(
        "DROP TRIGGER IF EXISTS set_integration_definitions_updated_at ON integration_definitions",
    ),
    Postgres(
        "CREATE TRIGGER set_integration_definitions_updated_at BEFORE UPDATE ON integration_definitions
            FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    // The catalog is public to every signed-in user; writes are an operator's job.
    Postgres("GRANT SELECT ON integration_definitions TO authenticated"),
];

// update_updated_at_column() stays: other tables (and other software) may use it.
const DOWN: &[Stmt] = &[Both("DROP TABLE IF EXISTS integration_definitions")];
