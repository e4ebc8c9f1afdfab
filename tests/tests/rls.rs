//! Row-level security on PostgreSQL, alone: queries run as role `authenticated` with a user's id as
//! the JWT claim, with no application check in front, as the server will run each request.

use sea_orm::{ConnectionTrait as _, DbErr, TransactionTrait as _, Value};
use tests::fixtures::{Tenant, definition_id, new_id, v};
use tests::{Backend, TestDb};

/// Runs `sql` as `user_id` through the API role and returns the rows affected, or the error.
async fn execute_as(
    test_db: &TestDb,
    user_id: uuid::Uuid,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    let transaction = test_db.db.begin().await?;
    transaction
        .execute_unprepared("SET LOCAL ROLE authenticated")
        .await?;
    transaction
        .execute_raw(test_db.statement(
            "SELECT set_config('request.jwt.claim.sub', $1, true)",
            vec![v(user_id.to_string())],
        ))
        .await?;
    let affected = transaction
        .execute_raw(test_db.statement(sql, values))
        .await?
        .rows_affected();
    transaction.commit().await?;
    Ok(affected)
}

/// Runs a count query as `user_id` through the API role.
async fn count_as(
    test_db: &TestDb,
    user_id: uuid::Uuid,
    sql: &str,
    values: Vec<Value>,
) -> anyhow::Result<i64> {
    let transaction = test_db.db.begin().await?;
    transaction
        .execute_unprepared("SET LOCAL ROLE authenticated")
        .await?;
    transaction
        .execute_raw(test_db.statement(
            "SELECT set_config('request.jwt.claim.sub', $1, true)",
            vec![v(user_id.to_string())],
        ))
        .await?;
    let row = transaction
        .query_one_raw(test_db.statement(sql, values))
        .await?;
    transaction.rollback().await?;
    Ok(row
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or_default())
}

#[tokio::test]
async fn a_member_of_one_workspace_reads_nothing_of_another_through_rls_alone() -> anyhow::Result<()>
{
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let alpha = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let beta = Tenant::create(&test_db, "OWNER", "salesforce").await?;

    for (table, column) in [
        ("integration_connections", "workspace_id"),
        ("entities", "workspace_id"),
        ("attribute_definitions", "workspace_id"),
        ("workspace_members", "workspace_id"),
        ("workspaces", "id"),
    ] {
        let sql = format!("SELECT count(*) FROM {table} WHERE {column} = $1");
        let own = count_as(&test_db, alpha.user_id, &sql, vec![v(alpha.workspace_id)]).await?;
        let other = count_as(&test_db, alpha.user_id, &sql, vec![v(beta.workspace_id)]).await?;
        assert_eq!(
            (own, other),
            (1, 0),
            "{table}: own rows visible, the other workspace's not"
        );
    }
    for table in ["entity_attribute_provenance", "entity_attribute_values"] {
        let sql = format!("SELECT count(*) FROM {table} WHERE entity_id = $1");
        let own = count_as(&test_db, alpha.user_id, &sql, vec![v(alpha.entity_id)]).await?;
        let other = count_as(&test_db, alpha.user_id, &sql, vec![v(beta.entity_id)]).await?;
        assert_eq!(
            (own, other),
            (1, 0),
            "{table}: scoped through entities.workspace_id"
        );
    }
    for table in [
        "integration_connections",
        "entity_attribute_provenance",
        "entities",
    ] {
        let all = count_as(
            &test_db,
            alpha.user_id,
            &format!("SELECT count(*) FROM {table}"),
            vec![],
        )
        .await?;
        assert_eq!(
            all, 1,
            "{table}: an unfiltered read returns only the caller's workspace"
        );
    }
    // Without a claim nobody is a member of anything.
    let anonymous = count_as(
        &test_db,
        new_id(),
        "SELECT count(*) FROM integration_connections",
        vec![],
    )
    .await?;
    assert_eq!(anonymous, 0);
    // Writing into another workspace through RLS alone touches nothing.
    let updated = execute_as(
        &test_db,
        alpha.user_id,
        "UPDATE entity_attribute_provenance SET override_by_user = TRUE, override_at = CURRENT_TIMESTAMP WHERE entity_id = $1",
        vec![v(beta.entity_id)],
    )
    .await?;
    assert_eq!(updated, 0);
    Ok(())
}

#[tokio::test]
async fn only_owners_and_admins_manage_connections_under_rls() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let member = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let admin = Tenant::create(&test_db, "ADMIN", "hubspot").await?;
    let stripe = definition_id(&test_db, "stripe").await?;
    let insert = "INSERT INTO integration_connections (id, workspace_id, integration_id) VALUES ($1, $2, $3)";

    let by_member = execute_as(
        &test_db,
        member.user_id,
        insert,
        vec![v(new_id()), v(member.workspace_id), v(stripe)],
    )
    .await;
    let error = by_member.expect_err("a MEMBER inserted a connection");
    assert!(error.to_string().contains("row-level security"), "{error}");
    let by_admin = execute_as(
        &test_db,
        admin.user_id,
        insert,
        vec![v(new_id()), v(admin.workspace_id), v(stripe)],
    )
    .await?;
    assert_eq!(by_admin, 1, "an ADMIN connects an integration");
    let admin_elsewhere = execute_as(
        &test_db,
        admin.user_id,
        insert,
        vec![v(new_id()), v(member.workspace_id), v(stripe)],
    )
    .await;
    assert!(
        admin_elsewhere.is_err(),
        "an ADMIN of one workspace inserted into another"
    );

    let update = "UPDATE integration_connections SET status = 'PAUSED' WHERE id = $1";
    assert_eq!(
        execute_as(
            &test_db,
            member.user_id,
            update,
            vec![v(member.connection_id)]
        )
        .await?,
        0
    );
    assert_eq!(
        execute_as(
            &test_db,
            admin.user_id,
            update,
            vec![v(admin.connection_id)]
        )
        .await?,
        1
    );
    let delete = "DELETE FROM integration_connections WHERE id = $1";
    assert_eq!(
        execute_as(
            &test_db,
            member.user_id,
            delete,
            vec![v(member.connection_id)]
        )
        .await?,
        0
    );
    assert_eq!(
        execute_as(
            &test_db,
            admin.user_id,
            delete,
            vec![v(admin.connection_id)]
        )
        .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn the_api_role_cannot_read_credentials_or_oauth_states() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let admin = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    test_db
        .execute(
            "INSERT INTO integration_credentials (connection_id, credential_type, key_id, sealed_secret)
             VALUES ($1, 'OAUTH2', 'k1', $2)",
            vec![v(admin.connection_id), v(vec![9_u8; 40])],
        )
        .await?;
    for table in [
        "integration_credentials",
        "oauth_states",
        "job_queue",
        "integration_cache",
        "webhook_events",
    ] {
        let outcome = count_as(
            &test_db,
            admin.user_id,
            &format!("SELECT count(*) FROM {table}"),
            vec![],
        )
        .await;
        let error = outcome.expect_err("the API role read a server-only table");
        assert!(
            error.to_string().contains("permission denied"),
            "{table}: {error}"
        );
    }
    Ok(())
}

/// `auth.uid()` as Supabase defines it, in one reused session: each transaction sets the caller
/// in one style or the other (or not at all), and a setting left empty by an earlier
/// transaction's `SET LOCAL` counts as unset, never as an error.
#[tokio::test]
async fn auth_uid_matches_supabase_in_a_reused_session_with_either_claim_style()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    // One connection, so every transaction below reuses the same session.
    let session = migration::connect(&test_db.url, 1).await?;
    let test_db = &test_db;
    let uid_in = |setup: Option<(&'static str, String)>| {
        let session = session.clone();
        async move {
            let transaction = session.begin().await?;
            if let Some((name, value)) = setup {
                transaction
                    .execute_raw(test_db.statement(
                        "SELECT set_config($1, $2, true)",
                        vec![v(name.to_owned()), v(value)],
                    ))
                    .await?;
            }
            let row = transaction
                .query_one_raw(test_db.statement("SELECT auth.uid()::text AS uid", vec![]))
                .await?;
            transaction.commit().await?;
            let uid: Option<String> = match row {
                Some(row) => row.try_get("", "uid")?,
                None => None,
            };
            anyhow::Ok(uid)
        }
    };
    let (a, b) = (new_id(), new_id());
    let claims = |id: uuid::Uuid| format!(r#"{{"sub":"{id}","role":"authenticated"}}"#);
    assert_eq!(uid_in(None).await?, None, "a fresh session has no caller");
    let sequence = [
        (Some(("request.jwt.claim.sub", a.to_string())), Some(a)),
        (None, None),
        (Some(("request.jwt.claims", claims(b))), Some(b)),
        (None, None),
        (Some(("request.jwt.claim.sub", b.to_string())), Some(b)),
        (Some(("request.jwt.claims", claims(a))), Some(a)),
        (Some(("request.jwt.claim.sub", String::new())), None),
        (Some(("request.jwt.claims", String::new())), None),
        (None, None),
    ];
    for (step, (setup, expected)) in sequence.into_iter().enumerate() {
        let uid = uid_in(setup.clone()).await?;
        assert_eq!(
            uid,
            expected.map(|id| id.to_string()),
            "step {step}: {setup:?}"
        );
    }
    Ok(())
}

/// Every node of an `EXPLAIN (FORMAT JSON)` plan, depth first.
fn plan_nodes(node: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    out.push(node.clone());
    for child in node["Plans"].as_array().into_iter().flatten() {
        plan_nodes(child, out);
    }
}

/// The first `limit` entity ids of `workspace_id`, in id order (read as the owner).
async fn entity_ids(
    test_db: &TestDb,
    workspace_id: uuid::Uuid,
    limit: i64,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    let rows = test_db
        .db
        .query_all_raw(test_db.statement(
            "SELECT id FROM entities WHERE workspace_id = $1 ORDER BY id LIMIT $2",
            vec![v(workspace_id), v(limit)],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get_by_index::<uuid::Uuid>(0))
        .collect::<Result<_, _>>()?)
}

/// The plan of `statement` run as `user_id` through the API role, `EXPLAIN ANALYZE`d.
async fn plan_as(
    test_db: &TestDb,
    user_id: uuid::Uuid,
    statement: sea_orm::Statement,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let transaction = test_db.db.begin().await?;
    transaction
        .execute_unprepared("SET LOCAL ROLE authenticated")
        .await?;
    transaction
        .execute_raw(test_db.statement(
            "SELECT set_config('request.jwt.claim.sub', $1, true)",
            vec![v(user_id.to_string())],
        ))
        .await?;
    let explain = sea_orm::Statement {
        sql: format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", statement.sql),
        ..statement
    };
    let row = transaction
        .query_one_raw(explain)
        .await?
        .ok_or_else(|| anyhow::anyhow!("EXPLAIN returned no row"))?;
    transaction.rollback().await?;
    let plan: serde_json::Value = row.try_get_by_index(0)?;
    let mut nodes = Vec::new();
    plan_nodes(&plan[0]["Plan"], &mut nodes);
    Ok(nodes)
}

#[tokio::test]
async fn the_entities_page_under_rls_checks_membership_once_per_statement_not_per_row()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let alpha = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let beta = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    for tenant in [&alpha, &beta] {
        test_db
            .execute(
                "INSERT INTO entities (id, workspace_id, entity_type)
                 SELECT gen_random_uuid(), $1, 'person' FROM generate_series(1, 60)",
                vec![v(tenant.workspace_id)],
            )
            .await?;
        for table in ["entity_attribute_values", "entity_attribute_provenance"] {
            let (columns, values) = if table == "entity_attribute_values" {
                ("value", "'\"x\"'")
            } else {
                ("source_type", "'USER_CREATED'")
            };
            test_db
                .execute(
                    &format!(
                        "INSERT INTO {table} (entity_id, attribute_id, workspace_id, {columns})
                         SELECT e.id, $2, e.workspace_id, {values} FROM entities e
                         WHERE e.workspace_id = $1 AND e.id <> $3"
                    ),
                    vec![
                        v(tenant.workspace_id),
                        v(tenant.attribute_id),
                        v(tenant.entity_id),
                    ],
                )
                .await?;
        }
    }
    test_db.execute("ANALYZE", vec![]).await?;
    let page = integrations::entity_page_statement(
        sea_orm::DbBackend::Postgres,
        &integrations::EntityQuery {
            workspace_id: alpha.workspace_id,
            viewer_id: alpha.user_id,
            limit: 51,
            ..integrations::EntityQuery::default()
        },
    )?;
    let ids = entity_ids(&test_db, alpha.workspace_id, 50).await?;
    let attributes =
        sea_orm::DbBackend::Postgres.build(&integrations::attribute_rows_statement(&ids));
    for (what, statement, rows) in [("page", page, 51), ("attributes", attributes, 50)] {
        let nodes = plan_as(&test_db, alpha.user_id, statement).await?;
        let subplans: Vec<_> = nodes
            .iter()
            .filter(|node| node["Parent Relationship"] == "SubPlan")
            .collect();
        assert!(
            subplans.is_empty(),
            "{what}: per-row subplans {subplans:#?}"
        );
        for node in &nodes {
            if node["Relation Name"] == "workspace_members" {
                assert_eq!(
                    node["Actual Loops"], 1,
                    "{what}: membership is read once per statement: {node:#}"
                );
            }
        }
        assert_eq!(
            nodes[0]["Actual Rows"], rows,
            "{what}: the member sees their rows: {:#}",
            nodes[0]
        );
    }
    // The other workspace's ids, asked for by a member of alpha: RLS alone returns nothing.
    let beta_ids = entity_ids(&test_db, beta.workspace_id, 1_000).await?;
    let foreign = plan_as(
        &test_db,
        alpha.user_id,
        sea_orm::DbBackend::Postgres.build(&integrations::attribute_rows_statement(&beta_ids)),
    )
    .await?;
    assert_eq!(foreign[0]["Actual Rows"], 0, "{:#}", foreign[0]);
    Ok(())
}

#[tokio::test]
async fn a_child_row_cannot_name_another_workspace_than_its_entitys() -> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let alpha = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    let beta = Tenant::create(&test_db, "OWNER", "hubspot").await?;
    for (table, columns, values) in [
        ("entity_attribute_values", "value", "'\"x\"'"),
        (
            "entity_attribute_provenance",
            "source_type",
            "'USER_CREATED'",
        ),
    ] {
        // Alpha's entity, with beta's workspace: even the owner's own connection is refused.
        let refused = test_db
            .execute(
                &format!(
                    "INSERT INTO {table} (entity_id, attribute_id, workspace_id, {columns})
                     VALUES ($1, $2, $3, {values})"
                ),
                vec![
                    v(alpha.entity_id),
                    v(beta.attribute_id),
                    v(beta.workspace_id),
                ],
            )
            .await;
        let error = refused
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(
            error.contains(&format!("fk_{table}_entity")),
            "{table}: {error}"
        );
    }
    // Deleting the entity still takes its children with it.
    test_db
        .execute(
            "DELETE FROM entities WHERE id = $1",
            vec![v(alpha.entity_id)],
        )
        .await?;
    for table in ["entity_attribute_values", "entity_attribute_provenance"] {
        assert_eq!(
            test_db
                .count(
                    &format!("SELECT count(*) FROM {table} WHERE entity_id = $1"),
                    vec![v(alpha.entity_id)]
                )
                .await?,
            0,
            "{table}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn the_membership_functions_answer_the_same_whatever_the_callers_search_path()
-> anyhow::Result<()> {
    let test_db = TestDb::migrated(Backend::Postgres).await?;
    let member = Tenant::create(&test_db, "MEMBER", "hubspot").await?;
    let admin = Tenant::create(&test_db, "ADMIN", "hubspot").await?;
    for search_path in ["public, pg_temp", "pg_temp", "\"$user\""] {
        for (tenant, admin_of) in [(&member, 0), (&admin, 1)] {
            let transaction = test_db.db.begin().await?;
            transaction
                .execute_unprepared(&format!(
                    "SET LOCAL ROLE authenticated; SET LOCAL search_path = {search_path}"
                ))
                .await?;
            transaction
                .execute_raw(test_db.statement(
                    "SELECT pg_catalog.set_config('request.jwt.claim.sub', $1, true)",
                    vec![v(tenant.user_id.to_string())],
                ))
                .await?;
            let row = transaction
                .query_one_raw(test_db.statement(
                    "SELECT pg_catalog.cardinality(public.member_workspace_ids()),
                        pg_catalog.cardinality(public.admin_workspace_ids()),
                        public.member_workspace_ids() OPERATOR(pg_catalog.=) ARRAY[$1]::pg_catalog.uuid[]",
                    vec![v(tenant.workspace_id)],
                ))
                .await
                .map_err(|error| anyhow::anyhow!("search_path {search_path}: {error}"))?
                .ok_or_else(|| anyhow::anyhow!("no row"))?;
            transaction.rollback().await?;
            // Each user is a member of their own workspace only, and an admin of it as ADMIN.
            assert_eq!(
                (
                    row.try_get_by_index::<i32>(0)?,
                    row.try_get_by_index::<i32>(1)?,
                    row.try_get_by_index::<bool>(2)?
                ),
                (1, admin_of, true),
                "search_path {search_path}"
            );
        }
    }
    Ok(())
}
