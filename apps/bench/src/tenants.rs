//! Many tenants at once through the real queue and workers: K small Stripe tenants and B big ones,
//! every sync due at the same moment, on W workers of one process (the slices and the claim order
//! of `integrations::Worker`). A loopback Stripe mock serves each tenant its own number of
//! customers (the API key names it). Reports when the small and the big tenants were done, from
//! their `sync_runs` rows, and checks every tenant's entity count.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use integrations::{
    CredentialKind, CredentialStore, EngineError, Job, JobQueue, NewJob, ProviderFactory, Worker,
};
use providers::secrecy::SecretString;
use providers::{
    ConnectionConfig, HttpCore, Keyring, OAuthClient, ProviderClient, ProviderKind, ProviderSpec,
    RetryPolicy, SystemClock, TokenSet, TokioSleeper,
};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{quantile, round};

/// Stripe's largest list page.
const PAGE_SIZE: usize = 100;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The PostgreSQL database to write to (migrated).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Small tenants.
    #[arg(long, default_value_t = 200)]
    small: usize,
    /// Customers of each small tenant.
    #[arg(long, default_value_t = 1_000)]
    small_records: usize,
    /// Big tenants.
    #[arg(long, default_value_t = 4)]
    big: usize,
    /// Customers of each big tenant.
    #[arg(long, default_value_t = 100_000)]
    big_records: usize,
    /// Workers in the process.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// A name for the scenario in the report.
    #[arg(long, default_value = "mixed")]
    scenario: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1_800)]
    timeout: u64,
}

/// One Stripe customer in Stripe's documented shape.
fn customer(index: usize) -> Value {
    json!({
        "id": format!("cus_scale{index:08}"),
        "object": "customer",
        "created": 1_735_689_600 + index,
        "description": format!("Scale customer {index}"),
        "email": format!("customer{index}@example.com"),
        "livemode": false,
        "metadata": {},
        "name": format!("Customer {index}"),
        "phone": format!("+1555{:07}", index % 10_000_000),
    })
}

/// The page after `starting_after` of a tenant holding `records` customers.
async fn customers(headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Response {
    let records = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer sk_test_scale_"))
        .and_then(|value| value.parse::<usize>().ok());
    let Some(records) = records else {
        return (
            StatusCode::UNAUTHORIZED,
            "a bench key names the record count",
        )
            .into_response();
    };
    let start = match query.get("starting_after") {
        None => 0,
        Some(after) => match after
            .strip_prefix("cus_scale")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n + 1,
            None => return (StatusCode::NOT_FOUND, "No such customer").into_response(),
        },
    };
    let end = (start + PAGE_SIZE).min(records);
    let data: Vec<Value> = (start..end).map(customer).collect();
    Json(json!({"object": "list", "url": "/v1/customers", "has_more": end < records, "data": data}))
        .into_response()
}

async fn events() -> Json<Value> {
    Json(json!({"object": "list", "url": "/v1/events", "has_more": false, "data": []}))
}

async fn start_mock() -> anyhow::Result<String> {
    let app = Router::new()
        .route("/v1/customers", get(customers))
        .route("/v1/events", get(events))
        .with_state(());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("bench tenants: the mock provider stopped: {error}");
        }
    });
    Ok(format!("http://{address}"))
}

/// Builds Stripe clients against the mock.
struct MockFactory {
    base_url: String,
}

impl ProviderFactory for MockFactory {
    fn oauth(&self, kind: ProviderKind, _: &ConnectionConfig) -> Result<OAuthClient, EngineError> {
        Err(EngineError::InvalidInput(format!(
            "bench tenants: no OAuth for {kind}"
        )))
    }

    fn api(
        &self,
        kind: ProviderKind,
        config: &ConnectionConfig,
        _: &Value,
        access_token: SecretString,
    ) -> Result<ProviderClient, EngineError> {
        let spec = ProviderSpec::for_provider(kind)
            .with_api_base_url(&self.base_url)?
            .for_connection(config)?;
        let http = HttpCore::new(
            kind,
            RetryPolicy::default(),
            Arc::new(SystemClock),
            Arc::new(TokioSleeper),
        )?;
        Ok(ProviderClient::new(spec, http, access_token))
    }
}

/// One tenant of the run.
struct Tenant {
    workspace_id: Uuid,
    connection_id: Uuid,
    records: usize,
    big: bool,
}

async fn create_tenant(
    db: &DatabaseConnection,
    credentials: &CredentialStore,
    records: usize,
    big: bool,
) -> anyhow::Result<Tenant> {
    let tenant = Tenant {
        workspace_id: Uuid::new_v4(),
        connection_id: Uuid::new_v4(),
        records,
        big,
    };
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO workspaces (id, name) VALUES ($1, 'Bench tenant')",
        [tenant.workspace_id.into()],
    ))
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO integration_connections (id, workspace_id, integration_id, status, connection_status)
         SELECT $1, $2, id, 'ACTIVE', 'connected' FROM integration_definitions WHERE slug = 'stripe'",
        [tenant.connection_id.into(), tenant.workspace_id.into()],
    ))
    .await?;
    credentials
        .store(
            tenant.connection_id,
            CredentialKind::ApiKey,
            &TokenSet {
                access_token: SecretString::from(format!("sk_test_scale_{records}")),
                refresh_token: None,
                expires_at: None,
                scopes: Vec::new(),
                metadata: serde_json::Map::new(),
            },
        )
        .await?;
    Ok(tenant)
}

/// When each tenant's run finished, in seconds after `started` (UTC), from `sync_runs`.
async fn finished(
    db: &DatabaseConnection,
    started: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<HashMap<Uuid, f64>> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT connection_id, finished_at FROM sync_runs WHERE status = 'succeeded'",
        ))
        .await?;
    let mut done = HashMap::new();
    for row in rows {
        let connection_id: Uuid = row.try_get_by_index(0)?;
        let at: chrono::DateTime<chrono::FixedOffset> = row.try_get_by_index(1)?;
        #[allow(clippy::cast_precision_loss)]
        let seconds = (at.to_utc() - started).num_milliseconds() as f64 / 1_000.0;
        done.insert(connection_id, seconds);
    }
    Ok(done)
}

/// Seconds of CPU the PostgreSQL server's processes have used (user + system), from /proc.
pub fn postgres_cpu_seconds() -> f64 {
    let mut ticks = 0u64;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if comm.trim() != "postgres" {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(path.join("stat")) {
            ticks += stat_ticks(&stat);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let seconds = ticks as f64 / 100.0;
    seconds
}

/// This process's CPU seconds (user + system).
pub fn own_cpu_seconds() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .map(|stat| stat_ticks(&stat))
        .unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let seconds = ticks as f64 / 100.0;
    seconds
}

/// utime + stime of a /proc/<pid>/stat line (fields 14 and 15, after the command in parentheses).
fn stat_ticks(stat: &str) -> u64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After ") ": state is field 3, so utime (14) and stime (15) are at 11 and 12.
    field(11) + field(12)
}

pub async fn run(args: Args) -> anyhow::Result<String> {
    ensure!(args.workers > 0, "--workers must be positive");
    ensure!(
        args.small + args.big > 0,
        "--small and --big are both zero: no tenant to sync"
    );
    let db = migration::connect(&args.database_url, u32::try_from(args.workers)? + 4)
        .await
        .context("bench tenants: cannot connect to DATABASE_URL")?;
    let clock = Arc::new(SystemClock);
    let keyring = Arc::new(Keyring::parse(&SecretString::from(
        "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    ))?);
    let credentials = CredentialStore::new(db.clone(), clock.clone(), keyring);
    let mut tenants = Vec::new();
    for _ in 0..args.big {
        tenants.push(create_tenant(&db, &credentials, args.big_records, true).await?);
    }
    for _ in 0..args.small {
        tenants.push(create_tenant(&db, &credentials, args.small_records, false).await?);
    }
    let factory = Arc::new(MockFactory {
        base_url: start_mock().await?,
    });
    // Every sync due at the same moment, the big ones enqueued first.
    let queue = JobQueue::new(db.clone(), clock.clone(), "bench-enqueuer");
    let started = chrono::Utc::now();
    let due = (started - chrono::Duration::seconds(1)).fixed_offset();
    for tenant in &tenants {
        queue
            .enqueue(
                NewJob::new(Job::Sync {
                    connection_id: tenant.connection_id,
                    object_type: "customers".to_owned(),
                })
                .at(due),
            )
            .await?;
    }
    let (pg_cpu0, own_cpu0, wall0) = (postgres_cpu_seconds(), own_cpu_seconds(), Instant::now());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..args.workers {
        let worker = Worker::new(
            db.clone(),
            clock.clone(),
            credentials.clone(),
            factory.clone(),
            format!("bench-worker-{index}"),
        );
        let stop = stop_rx.clone();
        workers.spawn(async move {
            while !*stop.borrow() {
                match worker.run_once().await {
                    Ok(Some(integrations::JobOutcome::Failed { kind, error })) => {
                        return Err(anyhow::anyhow!("a {kind} job failed: {error}"));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(error) => return Err(anyhow::anyhow!("the worker failed: {error}")),
                }
            }
            Ok(())
        });
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let done = loop {
        if let Some(joined) = workers.try_join_next() {
            joined??;
            bail!("bench tenants: a worker stopped before every tenant was done");
        }
        let done = finished(&db, started).await?;
        if tenants
            .iter()
            .all(|tenant| done.contains_key(&tenant.connection_id))
        {
            break done;
        }
        ensure!(
            Instant::now() < deadline,
            "bench tenants: {} of {} tenants done after {} s",
            done.len(),
            tenants.len(),
            args.timeout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let wall = wall0.elapsed().as_secs_f64();
    let (pg_cpu, own_cpu) = (
        postgres_cpu_seconds() - pg_cpu0,
        own_cpu_seconds() - own_cpu0,
    );
    let _ = stop_tx.send(true);
    while let Some(joined) = workers.join_next().await {
        joined??;
    }
    for tenant in &tenants {
        let row = db
            .query_one_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "SELECT count(*) FROM entities WHERE workspace_id = $1",
                [tenant.workspace_id.into()],
            ))
            .await?
            .context("count returned no row")?;
        let entities: i64 = row.try_get_by_index(0)?;
        ensure!(
            entities == i64::try_from(tenant.records)?,
            "bench tenants: a tenant of {} records holds {entities} entities",
            tenant.records
        );
    }
    let times = |big: bool| {
        let mut times: Vec<f64> = tenants
            .iter()
            .filter(|tenant| tenant.big == big)
            .filter_map(|tenant| done.get(&tenant.connection_id).copied())
            .collect();
        times.sort_by(f64::total_cmp);
        times
    };
    let (small, big) = (times(false), times(true));
    let summary = |times: &[f64], records: usize| {
        if times.is_empty() {
            return Value::Null;
        }
        let last = times[times.len() - 1];
        #[allow(clippy::cast_precision_loss)]
        let rate = (times.len() * records) as f64 / last.max(0.001);
        json!({
            "tenants": times.len(),
            "records_each": records,
            "p50_done_s": round(quantile(times, 0.5), 2),
            "last_done_s": round(last, 2),
            "records_per_s": round(rate, 1),
        })
    };
    #[allow(clippy::cast_precision_loss)]
    let all_records = tenants.iter().map(|tenant| tenant.records).sum::<usize>() as f64;
    Ok(json!({
        "workload": "tenants",
        "scenario": args.scenario,
        "workers": args.workers,
        "small": summary(&small, args.small_records),
        "big": summary(&big, args.big_records),
        "all_done_s": round(wall, 2),
        "records_per_s": round(all_records / wall.max(0.001), 1),
        "cpu_s": {"postgres": round(pg_cpu, 1), "harness": round(own_cpu, 1)},
        "unit": "seconds from the moment every sync was due to its run's finished_at (sync_runs); records/s: the group's records over its last finish",
        "measured_by": "bench-harness tenants: loopback Stripe mock (each API key names its tenant's customer count) -> integrations::Worker x W (slices, claim order) -> PostgreSQL; harness CPU includes the mock's",
    })
    .to_string())
}
