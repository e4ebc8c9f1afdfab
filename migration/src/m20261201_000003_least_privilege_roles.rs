//! Least-privilege login roles for the server (PostgreSQL; SQLite has no roles). Migrations keep
//! running as the owner (`DATABASE_URL`); the server connects as two roles this migration creates
//! when absent (roles are cluster-wide, so they are never dropped here):
//!
//! - `platform_api` (`API_DATABASE_URL`): LOGIN NOINHERIT, no privilege of its own, member of
//!   `authenticated` only. Each GraphQL request's transaction becomes `authenticated` with the
//!   caller's claim; `RESET ROLE` or `set_config('role', …)` inside it leads nowhere readable.
//! - `platform_worker` (`WORKER_DATABASE_URL`): LOGIN, neither owner, superuser nor BYPASSRLS;
//!   table privileges and one permissive policy per tenant table, for the work that spans tenants
//!   by design: job workers, webhooks, the OAuth callback and mutations after the application's
//!   own checks.
//!
//! Tenant tables get FORCE ROW LEVEL SECURITY, so even their owner (other than a superuser) reads
//! them only through a policy. Works on Supabase, where `authenticated` already exists and the
//! migrating `postgres` role may create roles but not grant BYPASSRLS (none is needed).

use crate::sql::Stmt::{self, Postgres};

crate::sql_migration!();

/// The tables whose rows belong to a workspace (or to its users), all under RLS.
macro_rules! tenant_tables {
    () => {
        "workspaces, users, workspace_members, attribute_definitions, entities,
         entity_attribute_values, entity_attribute_provenance, integration_connections,
         integration_credentials, integration_cache, integration_health_logs,
         integration_sync_states, webhook_events, job_queue, oauth_states"
    };
}

const UP: &[Stmt] = &[
    Postgres(
        "DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_api') THEN
                BEGIN
                    CREATE ROLE platform_api LOGIN NOINHERIT;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END;
            END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'platform_worker') THEN
                BEGIN
                    CREATE ROLE platform_worker LOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END;
            END IF;
        END
        $$",
    ),
    Postgres("GRANT authenticated TO platform_api"),
    Postgres(
        "DO $$ BEGIN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO platform_api, platform_worker',
                current_database());
        END $$",
    ),
    Postgres("GRANT USAGE ON SCHEMA public TO platform_worker"),
    Postgres(concat!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ",
        tenant_tables!(),
        " TO platform_worker"
    )),
    Postgres("GRANT SELECT ON integration_definitions, seaql_migrations TO platform_worker"),
    Postgres(
        "DO $$
        DECLARE
            name text;
        BEGIN
            FOREACH name IN ARRAY ARRAY['workspaces', 'users', 'workspace_members',
                'attribute_definitions', 'entities', 'entity_attribute_values',
                'entity_attribute_provenance', 'integration_connections', 'integration_credentials',
                'integration_cache', 'integration_health_logs', 'integration_sync_states',
                'webhook_events', 'job_queue', 'oauth_states']
            LOOP
                EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
                EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
                EXECUTE format('DROP POLICY IF EXISTS %I ON %I', name || '_platform_worker', name);
                EXECUTE format(
                    'CREATE POLICY %I ON %I FOR ALL TO platform_worker USING (true) WITH CHECK (true)',
                    name || '_platform_worker', name);
            END LOOP;
        END
        $$",
    ),
];

const DOWN: &[Stmt] = &[
    Postgres(
        "DO $$
        DECLARE
            name text;
        BEGIN
            FOREACH name IN ARRAY ARRAY['workspaces', 'users', 'workspace_members',
                'attribute_definitions', 'entities', 'entity_attribute_values',
                'entity_attribute_provenance', 'integration_connections', 'integration_credentials',
                'integration_cache', 'integration_health_logs', 'integration_sync_states',
                'webhook_events', 'job_queue', 'oauth_states']
            LOOP
                EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', name);
                EXECUTE format('DROP POLICY IF EXISTS %I ON %I', name || '_platform_worker', name);
            END LOOP;
        END
        $$",
    ),
    Postgres(concat!(
        "REVOKE ALL ON ",
        tenant_tables!(),
        ", integration_definitions, seaql_migrations FROM platform_worker"
    )),
    Postgres("REVOKE USAGE ON SCHEMA public FROM platform_worker"),
    Postgres(
        "DO $$ BEGIN
            EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM platform_api, platform_worker',
                current_database());
        END $$",
    ),
];
