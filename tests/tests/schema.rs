//! The unified schema on PostgreSQL and SQLite: every seed-named object exists, the constraints hold,
//! migrations round-trip, existing data survives, and failures change nothing.

use migration::{Migrator, MigratorTrait as _};
use tests::fixtures::{Tenant, definition_id, new_id, v};
use tests::{Backend, TestDb, dump, inventory};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

/// Every table of the schema.
const TABLES: &[&str] = &[
    "workspaces",
    "users",
    "workspace_members",
    "attribute_definitions",
    "entities",
    "entity_attribute_values",
    "entity_attribute_provenance",
    "integration_definitions",
    "integration_connections",
    "integration_cache",
    "integration_health_logs",
    "integration_sync_states",
    "webhook_events",
    "integration_credentials",
    "oauth_states",
    "job_queue",
    "seaql_migrations",
];

/// Every column the seeds name, as `table.column` in this schema's terms.
const SEED_COLUMNS: &[&str] = &[
    // base
    "workspace_members.workspace_id",
    "workspace_members.user_id",
    "workspace_members.role",
    "entities.workspace_id",
    "entities.entity_type",
    // 002 V001
    "entities.source_type",
    "entities.source_integration_id",
    "entities.source_external_id",
    "entities.source_url",
    "entities.first_synced_at",
    "entities.last_synced_at",
    "entities.sync_version",
    // 002 V002
    "entity_attribute_provenance.id",
    "entity_attribute_provenance.entity_id",
    "entity_attribute_provenance.attribute_id",
    "entity_attribute_provenance.source_type",
    "entity_attribute_provenance.source_integration_id",
    "entity_attribute_provenance.source_external_field",
    "entity_attribute_provenance.last_updated_at",
    "entity_attribute_provenance.override_by_user",
    "entity_attribute_provenance.override_at",
    // 002 V003
    "integration_definitions.id",
    "integration_definitions.slug",
    "integration_definitions.name",
    "integration_definitions.icon_url",
    "integration_definitions.description",
    "integration_definitions.category",
    "integration_definitions.nango_provider_key",
    "integration_definitions.capabilities",
    "integration_definitions.sync_config",
    "integration_definitions.auth_config",
    "integration_definitions.active",
    "integration_definitions.created_at",
    "integration_definitions.updated_at",
    // 002 V004
    "integration_connections.id",
    "integration_connections.workspace_id",
    "integration_connections.integration_id",
    "integration_connections.nango_connection_id",
    "integration_connections.status",
    "integration_connections.connection_metadata",
    "integration_connections.created_at",
    "integration_connections.updated_at",
    "integration_connections.created_by",
    "integration_connections.updated_by",
    // 000
    "integration_connections.last_connection_validation",
    "integration_connections.connection_status",
    "integration_connections.account_info",
    "integration_connections.validation_error",
    "integration_cache.id",
    "integration_cache.connection_id",
    "integration_cache.cache_key",
    "integration_cache.cache_data",
    "integration_cache.expires_at",
    "integration_cache.created_at",
    // 001
    "integration_connections.last_health_check",
    "integration_connections.health_status",
    "integration_health_logs.id",
    "integration_health_logs.connection_id",
    "integration_health_logs.status",
    "integration_health_logs.error_message",
    "integration_health_logs.response_time",
    "integration_health_logs.checked_at",
    // 003
    "webhook_events.id",
    "webhook_events.event_id",
    "webhook_events.processed_at",
    "webhook_events.expires_at",
    "webhook_events.provider",
    "webhook_events.connection_id",
    "integration_connections.sync_config",
    "integration_connections.last_sync_created",
    "integration_connections.last_sync_updated",
    "integration_connections.last_modified_sync",
    "integration_connections.sync_cursor",
    "integration_connections.sync_status",
    "integration_connections.last_error_message",
    "integration_connections.error_count",
    "integration_connections.property_mappings",
    "integration_sync_states.connection_id",
    "integration_sync_states.object_type",
    "integration_sync_states.sync_cursor",
    "integration_sync_states.sync_status",
    "integration_sync_states.last_sync_created",
    "integration_sync_states.last_sync_updated",
    "integration_sync_states.last_modified_sync",
    "integration_sync_states.last_error_message",
    "integration_sync_states.error_count",
    // 004
    "integration_connections.is_active",
    "integration_connections.last_sync_at",
];

/// Every index the seeds name or imply, by name.
const SEED_INDEXES: &[&str] = &[
    "idx_entities_source_integration_id",
    "idx_entities_source_external_id",
    "uq_entities_source_record",
    "idx_entity_attribute_provenance_entity_id",
    "idx_entity_attribute_provenance_source_integration_id",
    "idx_integration_definitions_category",
    "idx_integration_definitions_active",
    "idx_integration_connections_status",
    "idx_integration_connections_integration_id",
    "idx_integration_connection_status",
    "idx_integration_cache_expiry",
    "idx_integration_connections_health_status",
    "idx_integration_health_logs_connection_id",
    "idx_integration_health_logs_checked_at",
    "idx_integration_health_logs_status",
    "idx_webhook_events_expires_at",
    "idx_active_integrations",
];

/// Indexes V006 drops as redundant: they must not exist.
const DROPPED_INDEXES: &[&str] = &[
    "idx_integration_definitions_slug",
    "idx_integration_connections_workspace",
];

/// Named unique and CHECK constraints, present on both back ends.
const CONSTRAINTS: &[&str] = &[
    "uq_entity_attribute_provenance_entity_attribute",
    "uq_integration_definitions_slug",
    "uq_integration_connections_workspace_integration",
    "uq_webhook_events_event_id",
    "uq_integration_sync_states_connection_object",
    "chk_workspace_members_role",
    "chk_entities_source_type",
    "chk_entity_attribute_provenance_source_type",
    "chk_entity_attribute_provenance_override_at",
    "chk_integration_connections_status",
    "chk_integration_connections_connection_status",
    "chk_integration_connections_health_status",
    "chk_sync_status",
    "chk_integration_health_logs_status",
    "chk_integration_sync_states_sync_status",
    "chk_integration_credentials_credential_type",
    "chk_job_queue_status",
];

/// PostgreSQL-only: the V004 foreign keys, added by name.
const PG_FOREIGN_KEYS: &[&str] = &[
    "fk_entities_source_integration",
    "fk_entity_attribute_provenance_source_integration",
];

const PG_POLICIES: &[&str] = &[
    "workspaces.workspaces_select_members",
    "workspace_members.workspace_members_select_own",
    "users.users_select_self",
    "attribute_definitions.attribute_definitions_workspace_access",
    "entities.entities_workspace_access",
    "entity_attribute_values.entity_attribute_values_workspace_access",
    "entity_attribute_provenance.entity_attribute_provenance_workspace_access",
    "integration_connections.integration_connections_select_members",
    "integration_connections.integration_connections_insert_admins",
    "integration_connections.integration_connections_update_admins",
    "integration_connections.integration_connections_delete_admins",
    "integration_health_logs.integration_health_logs_select_members",
    "integration_sync_states.integration_sync_states_select_members",
];

/// Policies the later migrations replace: they must not exist.
const PG_DROPPED_POLICIES: &[&str] = &[
    "integration_connections.integration_connections_select_by_workspace",
    "integration_connections.integration_connections_workspace_access",
];

const PG_TRIGGERS: &[&str] = &[
    "integration_definitions.set_integration_definitions_updated_at",
    "integration_connections.set_integration_connections_updated_at",
    "integration_sync_states.set_integration_sync_states_updated_at",
    "workspaces.set_workspaces_updated_at",
    "users.set_users_updated_at",
    "attribute_definitions.set_attribute_definitions_updated_at",
    "entities.set_entities_updated_at",
    "integration_credentials.set_integration_credentials_updated_at",
    "job_queue.set_job_queue_updated_at",
];

/// Tables with row-level security; the secret-bearing ones have no policy at all.
const PG_RLS_TABLES: &[&str] = &[
    "workspaces",
    "users",
    "workspace_members",
    "attribute_definitions",
    "entities",
    "entity_attribute_values",
    "entity_attribute_provenance",
    "integration_connections",
    "integration_cache",
    "integration_health_logs",
    "integration_sync_states",
    "webhook_events",
    "integration_credentials",
    "oauth_states",
    "job_queue",
];

fn missing<'a>(expected: &[&'a str], actual: &std::collections::BTreeSet<String>) -> Vec<&'a str> {
    expected
        .iter()
        .copied()
        .filter(|name| !actual.contains(*name))
        .collect()
}

fn present<'a>(forbidden: &[&'a str], actual: &std::collections::BTreeSet<String>) -> Vec<&'a str> {
    forbidden
        .iter()
        .copied()
        .filter(|name| actual.contains(*name))
        .collect()
}

#[tokio::test]
async fn every_seed_table_column_index_and_constraint_exists_on_both_backends() -> anyhow::Result<()>
{
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        let found = inventory(&test_db.db).await?;
        assert_eq!(
            missing(TABLES, &found.tables),
            Vec::<&str>::new(),
            "{backend:?} tables"
        );
        assert_eq!(
            missing(SEED_COLUMNS, &found.columns),
            Vec::<&str>::new(),
            "{backend:?} columns"
        );
        assert_eq!(
            missing(SEED_INDEXES, &found.indexes),
            Vec::<&str>::new(),
            "{backend:?} indexes"
        );
        assert_eq!(
            present(DROPPED_INDEXES, &found.indexes),
            Vec::<&str>::new(),
            "{backend:?}"
        );
        assert_eq!(
            missing(CONSTRAINTS, &found.constraints),
            Vec::<&str>::new(),
            "{backend:?} constraints"
        );
    }
    Ok(())
}

#[tokio::test]
async fn postgres_has_the_seed_policies_triggers_foreign_keys_and_rls() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let found = inventory(&test_db.db).await?;
    assert_eq!(missing(PG_POLICIES, &found.policies), Vec::<&str>::new());
    assert_eq!(
        present(PG_DROPPED_POLICIES, &found.policies),
        Vec::<&str>::new()
    );
    assert_eq!(missing(PG_TRIGGERS, &found.triggers), Vec::<&str>::new());
    assert_eq!(
        missing(PG_FOREIGN_KEYS, &found.constraints),
        Vec::<&str>::new()
    );
    assert_eq!(
        missing(PG_RLS_TABLES, &found.rls_tables),
        Vec::<&str>::new()
    );
    for secret_table in ["integration_credentials", "oauth_states"] {
        let n_policies = test_db
            .count(
                "SELECT count(*) FROM pg_policies WHERE tablename = $1
                 AND roles <> ARRAY['platform_worker']::name[]",
                vec![v(secret_table)],
            )
            .await?;
        let n_grants = test_db
            .count(
                "SELECT count(*) FROM information_schema.role_table_grants
                 WHERE table_name = $1 AND grantee = 'authenticated'",
                vec![v(secret_table)],
            )
            .await?;
        assert_eq!(
            (n_policies, n_grants),
            (0, 0),
            "{secret_table} must be unreadable by the API role"
        );
    }
    let n_unvalidated = test_db
        .count(
            "SELECT count(*) FROM pg_constraint WHERE conname LIKE 'fk_%' AND NOT convalidated",
            vec![],
        )
        .await?;
    assert_eq!(n_unvalidated, 0, "every foreign key is validated");
    Ok(())
}

#[tokio::test]
async fn postgres_and_sqlite_have_the_same_tables_columns_and_indexes() -> anyhow::Result<()> {
    let postgres = inventory(&TestDb::migrated(Backend::Postgres).await?.db).await?;
    let sqlite = inventory(&TestDb::migrated(Backend::Sqlite).await?.db).await?;
    assert_eq!(postgres.tables, sqlite.tables);
    assert_eq!(postgres.columns, sqlite.columns);
    assert_eq!(postgres.indexes, sqlite.indexes);
    let sqlite_only: Vec<_> = sqlite
        .constraints
        .difference(&postgres.constraints)
        .collect();
    assert!(
        sqlite_only.is_empty(),
        "constraints only on SQLite: {sqlite_only:?}"
    );
    Ok(())
}

/// Runs `sql` and asserts that it fails because of the named constraint.
async fn assert_rejected_by(
    test_db: &TestDb,
    constraint: &str,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> anyhow::Result<()> {
    let backend = test_db.backend();
    match test_db.execute(sql, values).await {
        Ok(_) => anyhow::bail!("{backend:?} accepted `{sql}`; {constraint} should reject it"),
        Err(error) => {
            assert!(
                error.to_string().contains(constraint),
                "{backend:?}: `{sql}` failed, but not by {constraint}: {error}"
            );
            Ok(())
        }
    }
}

#[tokio::test]
async fn each_check_constraint_rejects_a_bad_value_and_changes_nothing() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "ADMIN", "hubspot").await?;
        let connection = || vec![v(tenant.connection_id)];
        let entity = || vec![v(tenant.entity_id)];
        let cases: Vec<(&str, &str, Vec<sea_orm::Value>)> = vec![
            (
                "chk_integration_connections_status",
                "UPDATE integration_connections SET status = 'BOGUS' WHERE id = $1",
                connection(),
            ),
            (
                "chk_integration_connections_connection_status",
                "UPDATE integration_connections SET connection_status = 'CONNECTED' WHERE id = $1",
                connection(),
            ),
            (
                "chk_integration_connections_health_status",
                "UPDATE integration_connections SET health_status = 'healthy' WHERE id = $1",
                connection(),
            ),
            (
                "chk_sync_status",
                "UPDATE integration_connections SET sync_status = 'running' WHERE id = $1",
                connection(),
            ),
            (
                "chk_integration_health_logs_status",
                "INSERT INTO integration_health_logs (connection_id, status) VALUES ($1, 'DOWN')",
                connection(),
            ),
            (
                "chk_integration_health_logs_response_time",
                "INSERT INTO integration_health_logs (connection_id, status, response_time) VALUES ($1, 'HEALTHY', -5)",
                connection(),
            ),
            (
                "chk_integration_sync_states_sync_status",
                "INSERT INTO integration_sync_states (connection_id, object_type, sync_status) VALUES ($1, 'contacts', 'paused')",
                connection(),
            ),
            (
                "chk_integration_credentials_credential_type",
                "INSERT INTO integration_credentials (connection_id, credential_type, key_id, sealed_secret) VALUES ($1, 'PASSWORD', 'k1', $2)",
                vec![v(tenant.connection_id), v(vec![1_u8, 2, 3])],
            ),
            (
                "chk_job_queue_status",
                "INSERT INTO job_queue (kind, status) VALUES ($1, 'done')",
                vec![v("sync")],
            ),
            (
                "chk_entities_source_type",
                "UPDATE entities SET source_type = 'SYNCED' WHERE id = $1",
                entity(),
            ),
            (
                "chk_entities_sync_version",
                "UPDATE entities SET sync_version = -1 WHERE id = $1",
                entity(),
            ),
            (
                "chk_entity_attribute_provenance_source_type",
                "UPDATE entity_attribute_provenance SET source_type = 'ROBOT' WHERE entity_id = $1",
                entity(),
            ),
            (
                "chk_entity_attribute_provenance_override_at",
                "UPDATE entity_attribute_provenance SET override_by_user = TRUE, override_at = NULL WHERE entity_id = $1",
                entity(),
            ),
            (
                "chk_workspace_members_role",
                "UPDATE workspace_members SET role = 'ROOT' WHERE user_id = $1",
                vec![v(tenant.user_id)],
            ),
            (
                "chk_integration_definitions_category",
                "UPDATE integration_definitions SET category = 'GAMES' WHERE id = $1",
                vec![v(tenant.integration_id)],
            ),
        ];
        let before = dump_rows(&test_db).await?;
        for (constraint, sql, values) in cases {
            assert_rejected_by(&test_db, constraint, sql, values).await?;
        }
        assert_eq!(
            before,
            dump_rows(&test_db).await?,
            "{backend:?}: a rejected write changed data"
        );
        // The same columns take their documented values, so the rejections above are the checks'.
        let good_writes = [
            "UPDATE integration_connections SET status = 'ACTIVE', connection_status = 'connected',
                 health_status = 'HEALTHY', sync_status = 'syncing' WHERE id = $1",
            "INSERT INTO integration_health_logs (connection_id, status, response_time) VALUES ($1, 'WARNING', 950)",
            "INSERT INTO integration_sync_states (connection_id, object_type, sync_status) VALUES ($1, 'contacts', 'disabled')",
        ];
        for sql in good_writes {
            assert_eq!(
                test_db.execute(sql, connection()).await?,
                1,
                "{backend:?}: {sql}"
            );
        }
    }
    Ok(())
}

/// Row counts of every table touched by the CHECK test, plus the values of the checked columns.
async fn dump_rows(test_db: &TestDb) -> anyhow::Result<Vec<i64>> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT count(*) FROM integration_health_logs",
        "SELECT count(*) FROM integration_sync_states",
        "SELECT count(*) FROM integration_credentials",
        "SELECT count(*) FROM job_queue",
        "SELECT count(*) FROM integration_connections WHERE status = 'PENDING_AUTHORIZATION'
             AND connection_status = 'unknown' AND health_status = 'UNKNOWN' AND sync_status = 'idle'",
        "SELECT count(*) FROM entities WHERE source_type = 'INTEGRATION' AND sync_version = 0",
        "SELECT count(*) FROM entity_attribute_provenance WHERE source_type = 'INTEGRATION' AND NOT override_by_user",
        "SELECT count(*) FROM workspace_members WHERE role = 'ADMIN'",
        "SELECT count(*) FROM integration_definitions WHERE category IN ('CRM', 'PAYMENTS', 'SUPPORT', 'EMAIL')",
    ] {
        counts.push(test_db.count(sql, vec![]).await?);
    }
    Ok(counts)
}

#[tokio::test]
async fn a_workspace_has_at_most_one_connection_per_integration() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let insert = "INSERT INTO integration_connections (id, workspace_id, integration_id) VALUES ($1, $2, $3)";
        let duplicate = test_db
            .execute(
                insert,
                vec![
                    v(new_id()),
                    v(tenant.workspace_id),
                    v(tenant.integration_id),
                ],
            )
            .await;
        assert!(
            duplicate.is_err(),
            "{backend:?}: second hubspot connection accepted"
        );
        let stripe = definition_id(&test_db, "stripe").await?;
        let other_integration = test_db
            .execute(insert, vec![v(new_id()), v(tenant.workspace_id), v(stripe)])
            .await?;
        assert_eq!(other_integration, 1, "{backend:?}");
    }
    Ok(())
}

#[tokio::test]
async fn deleting_a_definition_sets_provenance_references_to_null() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        let tenant = Tenant::create(&test_db, "OWNER", "hubspot").await?;
        let retired = new_id();
        test_db
            .execute(
                "INSERT INTO integration_definitions (id, slug, name, category, nango_provider_key)
                 VALUES ($1, 'retired-crm', 'Retired CRM', 'CRM', 'retired-crm')",
                vec![v(retired)],
            )
            .await?;
        test_db
            .execute(
                "UPDATE entities SET source_integration_id = $1 WHERE id = $2",
                vec![v(retired), v(tenant.entity_id)],
            )
            .await?;
        test_db
            .execute(
                "UPDATE entity_attribute_provenance SET source_integration_id = $1 WHERE entity_id = $2",
                vec![v(retired), v(tenant.entity_id)],
            )
            .await?;
        test_db
            .execute(
                "DELETE FROM integration_definitions WHERE id = $1",
                vec![v(retired)],
            )
            .await?;
        let n_entities = test_db
            .count(
                "SELECT count(*) FROM entities WHERE id = $1 AND source_integration_id IS NULL",
                vec![v(tenant.entity_id)],
            )
            .await?;
        let n_provenance = test_db
            .count(
                "SELECT count(*) FROM entity_attribute_provenance WHERE entity_id = $1 AND source_integration_id IS NULL",
                vec![v(tenant.entity_id)],
            )
            .await?;
        assert_eq!(
            (n_entities, n_provenance),
            (1, 1),
            "{backend:?}: rows kept, references cleared"
        );
        // A definition still connected cannot be deleted: the connection would lose its integration.
        let connected = test_db
            .execute(
                "DELETE FROM integration_definitions WHERE id = $1",
                vec![v(tenant.integration_id)],
            )
            .await;
        assert!(
            connected.is_err(),
            "{backend:?}: deleted a definition with a connection"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_webhook_event_id_is_stored_once() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        let insert = "INSERT INTO webhook_events (event_id, provider, expires_at) VALUES ($1, 'stripe', CURRENT_TIMESTAMP)";
        assert_eq!(
            test_db
                .execute(insert, vec![v("stripe:acct_1:evt_1")])
                .await?,
            1
        );
        assert!(
            test_db
                .execute(insert, vec![v("stripe:acct_1:evt_1")])
                .await
                .is_err(),
            "{backend:?}"
        );
        let n = test_db
            .count("SELECT count(*) FROM webhook_events", vec![])
            .await?;
        assert_eq!(n, 1, "{backend:?}");
    }
    Ok(())
}

#[tokio::test]
async fn the_catalog_seed_inserts_six_definitions_and_running_it_again_changes_nothing()
-> anyhow::Result<()> {
    let expected = [
        ("hubspot", "CRM", "hubspot"),
        ("salesforce", "CRM", "salesforce"),
        ("stripe", "PAYMENTS", "stripe"),
        ("zendesk", "SUPPORT", "zendesk"),
        ("intercom", "SUPPORT", "intercom"),
        ("gmail", "EMAIL", "google-mail"),
    ];
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        for (slug, category, provider_key) in expected {
            let n = test_db
                .count(
                    "SELECT count(*) FROM integration_definitions WHERE slug = $1 AND category = $2
                     AND nango_provider_key = $3 AND active",
                    vec![v(slug), v(category), v(provider_key)],
                )
                .await?;
            assert_eq!(n, 1, "{backend:?}: {slug}");
        }
        let rows_before = definitions_as_text(&test_db).await?;
        let inserted = migration::seed_integration_catalog(&test_db.db).await?;
        let rows_after = definitions_as_text(&test_db).await?;
        assert_eq!(inserted, 0, "{backend:?}");
        assert_eq!(
            rows_before, rows_after,
            "{backend:?}: the second run changed rows"
        );
        assert_eq!(rows_after.len(), 6);
    }
    for entry in migration::default_catalog() {
        let objects = entry.capabilities["objects"]
            .as_object()
            .map_or(0, |objects| objects.len());
        assert!(objects > 0, "{} lists the objects it syncs", entry.slug);
        assert!(
            entry.auth_config["mode"].is_string(),
            "{} names its auth mode",
            entry.slug
        );
        assert!(
            entry.auth_config["scopes"].is_array(),
            "{} lists its scopes",
            entry.slug
        );
        assert!(
            entry.capabilities["webhooks"]["supported"].is_boolean(),
            "{}",
            entry.slug
        );
        assert!(entry.sync_config["strategy"].is_string(), "{}", entry.slug);
    }
    Ok(())
}

async fn definitions_as_text(test_db: &TestDb) -> anyhow::Result<Vec<String>> {
    use sea_orm::ConnectionTrait as _;
    let sql = match test_db.backend() {
        Backend::Postgres => "SELECT concat_ws('|', id, slug, name, category, nango_provider_key, capabilities,
                sync_config, auth_config, active, created_at, updated_at) FROM integration_definitions ORDER BY slug",
        Backend::Sqlite => "SELECT hex(id) || '|' || slug || '|' || name || '|' || category || '|' || nango_provider_key
                || '|' || capabilities || '|' || sync_config || '|' || auth_config || '|' || active || '|'
                || created_at || '|' || updated_at FROM integration_definitions ORDER BY slug",
    };
    let rows = test_db
        .db
        .query_all_raw(test_db.statement(sql, vec![]))
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn migrating_up_down_to_zero_and_up_again_gives_the_same_catalog() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::migrated(backend).await?;
        let first = dump(&test_db.db).await?;
        Migrator::down(&test_db.db, None).await?;
        let emptied = inventory(&test_db.db).await?;
        assert_eq!(
            emptied.tables.into_iter().collect::<Vec<_>>(),
            vec!["seaql_migrations".to_owned()],
            "{backend:?}: down to zero leaves only the migration table"
        );
        Migrator::up(&test_db.db, None).await?;
        let second = dump(&test_db.db).await?;
        assert!(
            first.len() > 100,
            "{backend:?}: the dump covers the schema ({} lines)",
            first.len()
        );
        assert_eq!(first, second, "{backend:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_database_with_the_base_schema_and_rows_from_elsewhere_migrates_without_loss()
-> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::empty(backend).await?;
        Migrator::up(&test_db.db, Some(1)).await?;
        // The base came from elsewhere: no record of our migrations.
        test_db
            .execute("DROP TABLE seaql_migrations", vec![])
            .await?;
        let workspace_id = new_id();
        let entity_ids = [new_id(), new_id(), new_id()];
        test_db
            .execute(
                "INSERT INTO workspaces (id, name) VALUES ($1, 'Existing')",
                vec![v(workspace_id)],
            )
            .await?;
        for entity_id in entity_ids {
            test_db
                .execute(
                    "INSERT INTO entities (id, workspace_id, entity_type, display_name) VALUES ($1, $2, 'company', 'Old Co')",
                    vec![v(entity_id), v(workspace_id)],
                )
                .await?;
        }

        Migrator::up(&test_db.db, None).await?;

        let n_user_created = test_db
            .count(
                "SELECT count(*) FROM entities WHERE source_type = 'USER_CREATED' AND sync_version = 0
                 AND source_integration_id IS NULL AND display_name = 'Old Co'",
                vec![],
            )
            .await?;
        assert_eq!(n_user_created, 3, "{backend:?}");
        let orphan = test_db
            .execute(
                "UPDATE entities SET source_integration_id = $1 WHERE id = $2",
                vec![v(new_id()), v(entity_ids[0])],
            )
            .await;
        assert!(
            orphan.is_err(),
            "{backend:?}: the V004 foreign key is enforced on existing rows"
        );
        assert!(
            Migrator::get_pending_migrations(&test_db.db)
                .await?
                .is_empty()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_failing_migration_is_rolled_back_whole() -> anyhow::Result<()> {
    for backend in BACKENDS {
        let test_db = TestDb::empty(backend).await?;
        let n_before_credentials = u32::try_from(
            Migrator::migrations()
                .iter()
                .position(|migration| {
                    migration.name() == "m20260104_000001_credentials_and_oauth_states"
                })
                .ok_or_else(|| anyhow::anyhow!("no credentials migration"))?,
        )?;
        Migrator::up(&test_db.db, Some(n_before_credentials)).await?;
        // A stray table of the same name without the columns the migration indexes makes its
        // second half fail after its first half (integration_credentials) succeeded.
        test_db
            .execute("CREATE TABLE oauth_states (id INTEGER)", vec![])
            .await?;
        assert!(
            Migrator::up(&test_db.db, Some(1)).await.is_err(),
            "{backend:?}"
        );
        let found = inventory(&test_db.db).await?;
        assert!(
            !found.tables.contains("integration_credentials"),
            "{backend:?}: half applied"
        );
        assert_eq!(
            Migrator::get_pending_migrations(&test_db.db).await?.len(),
            Migrator::migrations().len() - usize::try_from(n_before_credentials)?,
            "{backend:?}: the failed migration and those after it are still pending"
        );
    }
    Ok(())
}
