//! The platform's schema history as sea-orm migrations, one file per step, in dependency order: the
//! base tables, seed 002's V001–V006, seeds 000, 001, 003 and 004, then our own tables
//! (`migration/README.md` maps each seed migration to its file). Every migration runs on PostgreSQL
//! and on SQLite; [`sql`] is the one place where the back ends differ.
//!
//! This crate never depends on `entity`: models are generated from what these migrations produce.

#[macro_use]
mod sql;

pub mod catalog;
pub mod database;

mod m20260101_000001_base_schema;
mod m20260102_000001_entity_provenance_fields;
mod m20260102_000002_entity_attribute_provenance;
mod m20260102_000003_integration_definitions;
mod m20260102_000004_integration_connections;
mod m20260102_000005_seed_integration_catalog;
mod m20260102_000006_provenance_rls_and_cleanup;
mod m20260103_000001_connection_validation_and_cache;
mod m20260103_000002_health_monitoring;
mod m20260103_000003_webhook_events_and_sync_state;
mod m20260103_000004_active_connections_and_policies;
mod m20260104_000001_credentials_and_oauth_states;
mod m20260104_000002_job_queue;
mod m20260105_000001_entities_page_index;
mod m20261201_000001_supabase_auth_uid;
mod m20261201_000002_webhook_keys_per_connection;
mod m20261201_000003_least_privilege_roles;
mod m20261201_000004_webhook_follow_up_jobs_retired;
mod m20261201_000005_shadow_values;
mod m20261201_000006_attribute_history_and_sync_runs;
mod m20261201_000007_analyze_synced_tables;
mod m20261201_000008_sync_run_api_calls;
mod m20261201_000009_rls_membership_once;
mod m20261202_000010_membership_plan_cached;
mod m20261203_000011_sync_fingerprint;
mod m20261207_000012_analyze_key_columns;

pub use catalog::{CatalogEntry, default_catalog, seed_integration_catalog};
pub use database::{ConnectError, DEFAULT_DATABASE_URL, SchemaStatus, connect, schema_status};
pub use sea_orm_migration::MigratorTrait;

use sea_orm_migration::prelude::*;

/// All migrations of the platform, oldest first.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_base_schema::Migration),
            Box::new(m20260102_000001_entity_provenance_fields::Migration),
            Box::new(m20260102_000002_entity_attribute_provenance::Migration),
            Box::new(m20260102_000003_integration_definitions::Migration),
            Box::new(m20260102_000004_integration_connections::Migration),
            Box::new(m20260102_000005_seed_integration_catalog::Migration),
            Box::new(m20260102_000006_provenance_rls_and_cleanup::Migration),
            Box::new(m20260103_000001_connection_validation_and_cache::Migration),
            Box::new(m20260103_000002_health_monitoring::Migration),
            Box::new(m20260103_000003_webhook_events_and_sync_state::Migration),
            Box::new(m20260103_000004_active_connections_and_policies::Migration),
            Box::new(m20260104_000001_credentials_and_oauth_states::Migration),
            Box::new(m20260104_000002_job_queue::Migration),
            Box::new(m20260105_000001_entities_page_index::Migration),
            Box::new(m20261201_000001_supabase_auth_uid::Migration),
            Box::new(m20261201_000002_webhook_keys_per_connection::Migration),
            Box::new(m20261201_000003_least_privilege_roles::Migration),
            Box::new(m20261201_000004_webhook_follow_up_jobs_retired::Migration),
            Box::new(m20261201_000005_shadow_values::Migration),
            Box::new(m20261201_000006_attribute_history_and_sync_runs::Migration),
            Box::new(m20261201_000007_analyze_synced_tables::Migration),
            Box::new(m20261201_000008_sync_run_api_calls::Migration),
            Box::new(m20261201_000009_rls_membership_once::Migration),
            Box::new(m20261202_000010_membership_plan_cached::Migration),
            Box::new(m20261203_000011_sync_fingerprint::Migration),
            Box::new(m20261207_000012_analyze_key_columns::Migration),
        ]
    }
}

impl Migrator {
    /// How many migrations this build has.
    pub fn migrations_len() -> usize {
        <Self as MigratorTrait>::migrations().len()
    }
}

/// How many migrations make up seed 002's provenance sequence after the base (V001–V006); the
/// migration benchmark applies exactly these.
pub const N_PROVENANCE_MIGRATIONS: u32 = 6;
