//! Sync ingest: N Stripe customers from a loopback mock through the real engine, and the raw
//! `COPY` of the same rows as the baseline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt as _;
use integrations::SyncEngine;
use providers::secrecy::SecretString;
use providers::{
    HttpCore, ProviderClient, ProviderKind, ProviderSpec, ReadOptions, RetryPolicy, SystemClock,
    TokioSleeper,
};
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::round;

/// Stripe's largest list page.
const PAGE_SIZE: usize = 100;

/// Attributes the Stripe customer mapping writes per record (email, name, phone, description).
const ATTRIBUTES_PER_RECORD: i64 = 4;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The PostgreSQL database to write to (migrated).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Customers the mock serves.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Skip the COPY baselines (`just bench-scale` measures the rate over the run instead).
    #[arg(long)]
    skip_copy: bool,
    /// Also read another workspace's entities page (50 with attributes and provenance, under
    /// row-level security, as the API's statements) before and during the sync: its latency.
    #[arg(long)]
    neighbour: bool,
    /// Unchanged re-syncs of the same records after the load (their mean is reported).
    #[arg(long, default_value_t = 1)]
    resyncs: u32,
    /// Pages of the sync written at once (`SYNC_PAGES_IN_FLIGHT`; the engine's default).
    #[arg(long, default_value_t = integrations::DEFAULT_PAGES_IN_FLIGHT)]
    pages_in_flight: usize,
}

/// Records each committed page's time and running total of created entities.
#[derive(Debug, Default)]
struct PageTimes {
    pages: std::sync::Mutex<Vec<(Instant, u64)>>,
}

impl integrations::EngineObserver for PageTimes {
    fn sync_page(&self, _: ProviderKind, _: &str, counts: &integrations::PageCounts) {
        if let Ok(mut pages) = self.pages.lock() {
            let total = pages.last().map_or(0, |(_, total)| *total) + u64::from(counts.created);
            pages.push((Instant::now(), total));
        }
    }
}

impl PageTimes {
    /// Records/s over the first and the last `share` of `records`, from `started`.
    #[allow(clippy::cast_precision_loss)]
    fn first_and_last(&self, started: Instant, records: u64, share: f64) -> (f64, f64) {
        let Ok(pages) = self.pages.lock() else {
            return (0.0, 0.0);
        };
        let at = |count: f64| {
            pages
                .iter()
                .find(|(_, total)| *total as f64 >= count)
                .map_or(started, |(time, _)| *time)
        };
        let n = records as f64;
        let first_end = at(n * share);
        let last_start = at(n * (1.0 - share));
        let last_end = at(n);
        let first = n * share / first_end.duration_since(started).as_secs_f64().max(1e-6);
        let last = n * share / last_end.duration_since(last_start).as_secs_f64().max(1e-6);
        (first, last)
    }
}

/// A workspace with a member and `entities` entities of 10 attributes each (values and
/// provenance), for the neighbour's page reads.
async fn seed_neighbour(db: &DatabaseConnection) -> anyhow::Result<(Uuid, Uuid)> {
    let (workspace_id, user_id) = (Uuid::new_v4(), Uuid::new_v4());
    let backend = db.get_database_backend();
    for sql in [
        "INSERT INTO workspaces (id, name) VALUES ($1, 'Bench neighbour')",
        "INSERT INTO users (id, email) VALUES ($2, 'neighbour@example.com')",
        "INSERT INTO workspace_members (workspace_id, user_id, role) VALUES ($1, $2, 'MEMBER')",
        "INSERT INTO attribute_definitions (id, workspace_id, entity_type, key, label)
         SELECT gen_random_uuid(), $1, 'person', 'field_' || g, 'Field ' || g FROM generate_series(1, 10) g",
        "INSERT INTO entities (id, workspace_id, entity_type, display_name)
         SELECT gen_random_uuid(), $1, 'person', 'Neighbour ' || g FROM generate_series(1, 1000) g",
        "INSERT INTO entity_attribute_values (entity_id, attribute_id, value, workspace_id)
         SELECT e.id, a.id, to_jsonb(e.display_name || ' ' || a.key), $1
         FROM entities e CROSS JOIN attribute_definitions a
         WHERE e.workspace_id = $1 AND a.workspace_id = $1",
        "INSERT INTO entity_attribute_provenance (entity_id, attribute_id, source_type, workspace_id)
         SELECT e.id, a.id, 'USER_CREATED', $1
         FROM entities e CROSS JOIN attribute_definitions a
         WHERE e.workspace_id = $1 AND a.workspace_id = $1",
    ] {
        let values: Vec<sea_orm::Value> = if sql.contains("$2") {
            vec![workspace_id.into(), user_id.into()]
        } else {
            vec![workspace_id.into()]
        };
        db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await
            .with_context(|| format!("seeding the neighbour: {sql}"))?;
    }
    Ok((workspace_id, user_id))
}

/// One read of the neighbour's first page as the API reads it: its own transaction as role
/// `authenticated` with the member's claim, the page, then its attributes.
async fn neighbour_page(
    db: &DatabaseConnection,
    workspace_id: Uuid,
    user_id: Uuid,
) -> anyhow::Result<f64> {
    use sea_orm::TransactionTrait as _;
    let started = Instant::now();
    let transaction = db.begin().await?;
    transaction
        .execute_unprepared("SET LOCAL ROLE authenticated")
        .await?;
    transaction
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT set_config('request.jwt.claim.sub', $1, true)",
            [user_id.to_string().into()],
        ))
        .await?;
    let (rows, _) = integrations::entity_page(
        &transaction,
        &integrations::EntityQuery {
            workspace_id,
            viewer_id: user_id,
            limit: 51,
            ..integrations::EntityQuery::default()
        },
    )
    .await?;
    let ids: Vec<Uuid> = rows.iter().take(50).map(|row| row.id).collect();
    let attributes = integrations::attribute_rows(&transaction, &ids).await?;
    transaction.commit().await?;
    ensure!(
        ids.len() == 50 && attributes.len() == 500,
        "bench ingest: the neighbour's page held {} entities and {} attributes",
        ids.len(),
        attributes.len()
    );
    Ok(started.elapsed().as_secs_f64() * 1_000.0)
}

/// p50 and p99 of `latencies` (ms).
fn percentiles(mut latencies: Vec<f64>) -> Value {
    latencies.sort_by(f64::total_cmp);
    json!({
        "reads": latencies.len(),
        "p50_ms": round(crate::quantile(&latencies, 0.5), 2),
        "p99_ms": round(crate::quantile(&latencies, 0.99), 2),
    })
}

/// The mock's pre-rendered pages: the body of the page after each cursor (`None` = the first).
#[derive(Debug)]
struct Pages {
    by_cursor: HashMap<Option<String>, Bytes>,
}

/// One customer in Stripe's documented shape.
fn customer(index: usize) -> Value {
    json!({
        "id": format!("cus_bench{index:08}"),
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": 1_735_689_600 + index,
        "currency": "usd",
        "default_source": null,
        "delinquent": false,
        "description": format!("Bench customer {index}"),
        "email": format!("customer{index}@example.com"),
        "invoice_prefix": format!("B{index:07X}"),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null},
        "livemode": false,
        "metadata": {"tier": if index.is_multiple_of(3) { "gold" } else { "standard" }},
        "name": format!("Customer {index}"),
        "phone": format!("+1555{:07}", index % 10_000_000),
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null
    })
}

impl Pages {
    fn render(records: usize) -> anyhow::Result<Self> {
        let mut by_cursor = HashMap::new();
        let mut cursor = None;
        for start in (0..records).step_by(PAGE_SIZE) {
            let end = (start + PAGE_SIZE).min(records);
            let data: Vec<Value> = (start..end).map(customer).collect();
            let body = json!({
                "object": "list",
                "url": "/v1/customers",
                "has_more": end < records,
                "data": data,
            });
            by_cursor.insert(cursor, Bytes::from(serde_json::to_vec(&body)?));
            cursor = Some(format!("cus_bench{:08}", end - 1));
        }
        Ok(Self { by_cursor })
    }
}

async fn customers(
    State(pages): State<Arc<Pages>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if query.get("limit").map(String::as_str) != Some("100") {
        return (StatusCode::BAD_REQUEST, "limit=100 expected").into_response();
    }
    match pages.by_cursor.get(&query.get("starting_after").cloned()) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"error": {"type": "invalid_request_error", "message": "No such customer"}}),
            ),
        )
            .into_response(),
    }
}

async fn events() -> Json<Value> {
    Json(json!({"object": "list", "url": "/v1/events", "has_more": false, "data": []}))
}

/// Starts the mock on a loopback port; returns its base URL.
async fn start_mock(pages: Pages) -> anyhow::Result<String> {
    let app = Router::new()
        .route("/v1/customers", get(customers))
        .route("/v1/events", get(events))
        .with_state(Arc::new(pages));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("bench ingest: the mock provider stopped: {error}");
        }
    });
    Ok(format!("http://{address}"))
}

async fn count(db: &DatabaseConnection, sql: &str, workspace_id: Uuid) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [workspace_id.into()],
        ))
        .await?
        .context("count returned no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// The four tables a sync writes, and how to select this workspace's rows of each (the attribute
/// history too: the sync appends a row per written value, so "the same rows" include them).
const TABLES: [(&str, &str); 4] = [
    (
        "entities",
        "SELECT * FROM entities WHERE workspace_id = '{ws}'",
    ),
    (
        "entity_attribute_values",
        "SELECT v.* FROM entity_attribute_values v JOIN entities e ON e.id = v.entity_id WHERE e.workspace_id = '{ws}'",
    ),
    (
        "entity_attribute_provenance",
        "SELECT p.* FROM entity_attribute_provenance p JOIN entities e ON e.id = p.entity_id WHERE e.workspace_id = '{ws}'",
    ),
    (
        "entity_attribute_history",
        "SELECT * FROM entity_attribute_history WHERE workspace_id = '{ws}'",
    ),
];

/// Seconds a raw `COPY … FROM STDIN` (one transaction, binary format) takes to write the rows the
/// sync wrote into empty copies of the tables (with their indexes), and the same again with the
/// tables' foreign keys added (which PostgreSQL checks row by row, as it does for our inserts).
async fn copy_baseline(database_url: &str, workspace_id: Uuid) -> anyhow::Result<Copies> {
    let mut conn = sqlx::PgConnection::connect(database_url).await?;
    let mut dumps = Vec::new();
    for (table, select) in TABLES {
        let select = select.replace("{ws}", &workspace_id.to_string());
        let mut stream = conn
            .copy_out_raw(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
            .await?;
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk?);
        }
        drop(stream);
        dumps.push((table, format!("bench_copy_{table}"), data));
    }
    let mut copies = Copies::default();
    for with_foreign_keys in [false, true] {
        for (table, copy_table, _) in &dumps {
            execute(
                &mut conn,
                format!(
                    "DROP TABLE IF EXISTS {copy_table}; CREATE TABLE {copy_table} (LIKE {table} INCLUDING ALL)"
                ),
            )
            .await?;
            if with_foreign_keys {
                let keys: Vec<(String, String)> = sqlx::query_as(
                    "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
                     WHERE conrelid = $1::regclass AND contype = 'f'",
                )
                .bind(*table)
                .fetch_all(&mut conn)
                .await?;
                for (name, definition) in keys {
                    execute(
                        &mut conn,
                        format!(
                            "ALTER TABLE {copy_table} ADD CONSTRAINT bench_{name} {definition}"
                        ),
                    )
                    .await?;
                }
            }
        }
        let started = Instant::now();
        let mut rows = 0;
        let mut tx = conn.begin().await?;
        for (_, copy_table, data) in &dumps {
            let mut copy = tx
                .copy_in_raw(&format!("COPY {copy_table} FROM STDIN (FORMAT binary)"))
                .await?;
            copy.send(data.as_slice()).await?;
            rows += copy.finish().await?;
        }
        tx.commit().await?;
        let seconds = started.elapsed().as_secs_f64();
        if with_foreign_keys {
            copies.with_foreign_keys_seconds = seconds;
        } else {
            copies.seconds = seconds;
        }
        copies.rows = rows;
        for (_, copy_table, _) in &dumps {
            execute(&mut conn, format!("DROP TABLE {copy_table}")).await?;
        }
    }
    Ok(copies)
}

/// The COPY baselines.
#[derive(Debug, Default)]
struct Copies {
    seconds: f64,
    with_foreign_keys_seconds: f64,
    rows: u64,
}

async fn execute(conn: &mut sqlx::PgConnection, sql: String) -> anyhow::Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// CPU seconds used so far by every PostgreSQL process and by this one.
struct CpuMark {
    postgres: f64,
    harness: f64,
}

impl CpuMark {
    fn now() -> Self {
        Self {
            postgres: crate::tenants::postgres_cpu_seconds(),
            harness: crate::tenants::own_cpu_seconds(),
        }
    }

    /// The CPU both sides used since the mark.
    fn since(&self) -> Value {
        json!({
            "postgres_s": round(crate::tenants::postgres_cpu_seconds() - self.postgres, 1),
            "harness_s": round(crate::tenants::own_cpu_seconds() - self.harness, 1),
        })
    }
}

pub async fn run(args: Args) -> anyhow::Result<String> {
    ensure!(args.records > 0, "--records must be positive");
    ensure!(args.resyncs > 0, "--resyncs must be positive");
    let db = migration::connect(&args.database_url, 4)
        .await
        .context("bench ingest: cannot connect to DATABASE_URL")?;
    let workspace_id = Uuid::new_v4();
    let connection_id = Uuid::new_v4();
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO workspaces (id, name) VALUES ($1, 'Bench ingest')",
        [workspace_id.into()],
    ))
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO integration_connections (id, workspace_id, integration_id, status, connection_status)
         SELECT $1, $2, id, 'ACTIVE', 'connected' FROM integration_definitions WHERE slug = 'stripe'",
        [connection_id.into(), workspace_id.into()],
    ))
    .await?;

    let base_url = start_mock(Pages::render(args.records)?).await?;
    let clock = Arc::new(SystemClock);
    let spec = ProviderSpec::for_provider(ProviderKind::Stripe).with_api_base_url(&base_url)?;
    let http = HttpCore::new(
        ProviderKind::Stripe,
        RetryPolicy::default(),
        clock.clone(),
        Arc::new(TokioSleeper),
    )?;
    let client = ProviderClient::new(spec, http, SecretString::from("sk_test_bench"));
    let page_times = Arc::new(PageTimes::default());
    let engine = SyncEngine::new(db.clone(), clock, "bench-ingest")
        .with_observer(page_times.clone())
        .with_pages_in_flight(args.pages_in_flight);

    // The neighbour: its page read alone first (idle), then throughout the sync.
    let neighbour = if args.neighbour {
        let (workspace, user) = seed_neighbour(&db).await?;
        db.execute_unprepared("ANALYZE").await?;
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(neighbour_page(&db, workspace, user).await?);
        }
        Some((workspace, user, idle))
    } else {
        None
    };
    let (reading_tx, reading_rx) = tokio::sync::watch::channel(true);
    let during = neighbour.as_ref().map(|(workspace, user, _)| {
        let (db, workspace, user) = (db.clone(), *workspace, *user);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while *reading_rx.borrow() {
                latencies.push(neighbour_page(&db, workspace, user).await?);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            anyhow::Ok(latencies)
        })
    });

    let cpu_mark = CpuMark::now();
    let started = Instant::now();
    let claim = engine
        .claim(connection_id, "customers")
        .await?
        .context("bench ingest: the sync could not be claimed")?;
    let report = engine
        .run(claim, &client, &ReadOptions::default())
        .await
        .context("bench ingest: the sync failed")?;
    let seconds = started.elapsed().as_secs_f64();
    let mut cpu = cpu_mark.since();
    cpu["note"] =
        json!("harness = the engine plus the loopback mock (and the neighbour's reads, when on)");
    let _ = reading_tx.send(false);
    let neighbour = match (neighbour, during) {
        (Some((_, _, idle)), Some(during)) => {
            let during = during.await??;
            Some(json!({"idle": percentiles(idle), "during_sync": percentiles(during)}))
        }
        _ => None,
    };
    let (first_10, last_10) = page_times.first_and_last(started, u64::try_from(args.records)?, 0.1);

    let records = i64::try_from(args.records)?;
    let entities = count(
        &db,
        "SELECT count(*) FROM entities WHERE workspace_id = $1",
        workspace_id,
    )
    .await?;
    let values = count(
        &db,
        "SELECT count(*) FROM entity_attribute_values v JOIN entities e ON e.id = v.entity_id WHERE e.workspace_id = $1",
        workspace_id,
    )
    .await?;
    let provenance = count(
        &db,
        "SELECT count(*) FROM entity_attribute_provenance p JOIN entities e ON e.id = p.entity_id
         WHERE e.workspace_id = $1 AND p.source_type = 'INTEGRATION'",
        workspace_id,
    )
    .await?;
    if i64::from(report.created) != records
        || entities != records
        || values != records * ATTRIBUTES_PER_RECORD
        || provenance != records * ATTRIBUTES_PER_RECORD
    {
        bail!(
            "bench ingest: wrong counts after the sync: created {}, entities {entities}, values {values}, provenance {provenance}; expected {records}, {records}, {v}, {v}",
            report.created,
            v = records * ATTRIBUTES_PER_RECORD
        );
    }

    #[allow(clippy::cast_precision_loss)]
    let rate = records as f64 / seconds;
    if args.skip_copy {
        return Ok(json!({
            "workload": "sync_ingest_flat",
            "records": records,
            "pages": report.pages,
            "pages_in_flight": args.pages_in_flight,
            "seconds": round(seconds, 3),
            "records_per_s": round(rate, 1),
            "first_10pct_records_per_s": round(first_10, 1),
            "last_10pct_records_per_s": round(last_10, 1),
            "last_over_first": round(last_10 / first_10.max(1e-6), 3),
            "cpu": cpu,
            "neighbour_page": neighbour,
            "unit": "records/s: Stripe customers into a workspace of a database that was never analyzed (the engine's ANALYZE schedule runs); neighbour: ms per page read (50 entities, 500 attributes, RLS)",
            "measured_by": "bench-harness ingest --skip-copy [--neighbour]",
        })
        .to_string());
    }
    // The same records again from the start: nothing changed, so nothing may be written.
    let history_before = count(
        &db,
        "SELECT count(*) FROM entity_attribute_history WHERE workspace_id = $1",
        workspace_id,
    )
    .await?;
    let cpu_mark = CpuMark::now();
    let mut resync_rates = Vec::new();
    let mut resync_seconds = 0.0;
    for _ in 0..args.resyncs {
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE integration_sync_states SET sync_cursor = NULL, last_modified_sync = NULL
             WHERE connection_id = $1",
            [connection_id.into()],
        ))
        .await?;
        let resync_started = Instant::now();
        let claim = engine
            .claim(connection_id, "customers")
            .await?
            .context("bench ingest: the re-sync could not be claimed")?;
        let resync = engine
            .run(claim, &client, &ReadOptions::default())
            .await
            .context("bench ingest: the re-sync failed")?;
        let seconds = resync_started.elapsed().as_secs_f64();
        resync_seconds += seconds;
        ensure!(
            resync.created == 0 && resync.updated == 0 && i64::from(resync.unchanged) == records,
            "bench ingest: the unchanged re-sync created {}, updated {} and left {} unchanged; expected 0, 0, {records}",
            resync.created,
            resync.updated,
            resync.unchanged,
        );
        #[allow(clippy::cast_precision_loss)]
        resync_rates.push(round(records as f64 / seconds, 1));
    }
    let resync_cpu = cpu_mark.since();
    let history_after = count(
        &db,
        "SELECT count(*) FROM entity_attribute_history WHERE workspace_id = $1",
        workspace_id,
    )
    .await?;
    ensure!(
        history_after == history_before,
        "bench ingest: the unchanged re-syncs added {} history rows; expected 0",
        history_after - history_before
    );
    #[allow(clippy::cast_precision_loss)]
    let resync_rate = records as f64 * f64::from(args.resyncs) / resync_seconds;
    let copies = copy_baseline(&args.database_url, workspace_id)
        .await
        .context("bench ingest: the COPY baseline failed")?;
    // Per record: its entity, and per attribute a value, its provenance and a history row.
    let expected_rows = u64::try_from(records * (1 + 3 * ATTRIBUTES_PER_RECORD))?;
    ensure!(
        copies.rows == expected_rows,
        "bench ingest: COPY wrote {} rows, expected {expected_rows}",
        copies.rows
    );
    #[allow(clippy::cast_precision_loss)]
    let (copy_rate, copy_fk_rate) = (
        records as f64 / copies.seconds,
        records as f64 / copies.with_foreign_keys_seconds,
    );
    Ok(json!({
        "workload": "sync_ingest",
        "records": records,
        "pages": report.pages,
        "page_size": PAGE_SIZE,
        "pages_in_flight": args.pages_in_flight,
        "rows_written": expected_rows,
        "seconds": round(seconds, 3),
        "records_per_s": round(rate, 1),
        "copy_seconds": round(copies.seconds, 3),
        "copy_records_per_s": round(copy_rate, 1),
        "ratio_to_copy": round(rate / copy_rate, 4),
        "copy_with_foreign_keys_seconds": round(copies.with_foreign_keys_seconds, 3),
        "copy_with_foreign_keys_records_per_s": round(copy_fk_rate, 1),
        "ratio_to_copy_with_foreign_keys": round(rate / copy_fk_rate, 4),
        "resync_seconds": round(resync_seconds, 3),
        "resync_records_per_s": round(resync_rate, 1),
        "resync_runs_records_per_s": resync_rates,
        "resync_cpu": resync_cpu,
        "resync_note": "the same records read again from the start, all unchanged: nothing written, no history",
        "unit": "records/s: Stripe customers (1 entity + 4 values + 4 provenance + 4 history rows each) from claim to the committed last page",
        "measured_by": "bench-harness ingest: loopback Stripe mock (pre-rendered pages of 100) -> ProviderClient -> SyncEngine -> PostgreSQL; baseline: COPY FROM STDIN (binary) of the same rows (entities, values, provenance, history) into empty LIKE … INCLUDING ALL tables (indexes, no foreign keys), one transaction; again with the tables' foreign keys added",
    })
    .to_string())
}
