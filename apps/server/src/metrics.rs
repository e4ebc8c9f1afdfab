//! Prometheus metrics: HTTP requests and their latency by route and status, webhook outcomes by
//! provider and result, sync pages and records, token refreshes, job runs by kind and outcome,
//! how long claimed jobs waited by kind, and, read at each scrape, the job queue's depth by kind
//! and state, the running syncs per workspace and the pool's connections;
//! `build_info` names the version. Every counter's label set that can be known at start is
//! present at zero from the first scrape. Each server has its own registry, so routers built side
//! by side (as in tests) do not share counters.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};
use providers::ProviderKind;
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, Statement};

use sha2::Digest as _;

use crate::AppState;

/// The results a webhook delivery is counted under.
const WEBHOOK_RESULTS: [&str; 10] = [
    "accepted",
    "duplicate",
    "unknown_account",
    "rejected",
    "not_found",
    "too_large",
    "bad_request",
    "unverifiable",
    "disconnected",
    "error",
];
/// The job queue's states.
const JOB_STATES: [&str; 5] = ["queued", "running", "succeeded", "failed", "cancelled"];

/// The server's metrics and the registry that exposes them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_request_duration: HistogramVec,
    webhooks: IntCounterVec,
    sync_pages: IntCounterVec,
    sync_records: IntCounterVec,
    token_refreshes: IntCounterVec,
    job_runs: IntCounterVec,
    job_queue_depth: IntGaugeVec,
    job_queue_wait: HistogramVec,
    syncs_running: IntGaugeVec,
    pool_connections: IntGaugeVec,
}

impl Metrics {
    /// A fresh registry with the server's metrics registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let webhooks = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook outcomes by provider and result",
            ),
            &["provider", "result"],
        )?;
        let sync_pages = IntCounterVec::new(
            Opts::new(
                "sync_pages_total",
                "Sync pages committed by this process, by provider and object type",
            ),
            &["provider", "object_type"],
        )?;
        let sync_records = IntCounterVec::new(
            Opts::new(
                "sync_records_total",
                "Synced records by provider and outcome (created, updated, deleted, unchanged, conflict)",
            ),
            &["provider", "outcome"],
        )?;
        let token_refreshes = IntCounterVec::new(
            Opts::new(
                "token_refreshes_total",
                "Access-token refreshes by provider and outcome (refreshed, revoked, failed)",
            ),
            &["provider", "outcome"],
        )?;
        let job_runs = IntCounterVec::new(
            Opts::new(
                "job_runs_total",
                "Jobs this process ran, by kind and outcome (succeeded, deferred, failed)",
            ),
            &["kind", "outcome"],
        )?;
        let job_queue_depth = IntGaugeVec::new(
            Opts::new(
                "job_queue_depth",
                "Jobs in the queue (all processes), by kind and state, read at each scrape",
            ),
            &["kind", "state"],
        )?;
        let job_queue_wait = HistogramVec::new(
            HistogramOpts::new(
                "job_queue_wait_seconds",
                "How long jobs this process claimed had been due, by kind (a sync's next slice: since the last one yielded)",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            &["kind"],
        )?;
        let syncs_running = IntGaugeVec::new(
            Opts::new(
                "syncs_running",
                "Syncs holding a live lease (all processes), by workspace, read at each scrape",
            ),
            &["workspace_id"],
        )?;
        let pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "This process's database pool connections, by state (in_use, idle)",
            ),
            &["state"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "build_info",
                "The server's build: always 1, labelled by version",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(job_runs.clone()))?;
        registry.register(Box::new(job_queue_depth.clone()))?;
        registry.register(Box::new(job_queue_wait.clone()))?;
        registry.register(Box::new(syncs_running.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(build_info))?;
        registry.register(Box::new(sync_pages.clone()))?;
        registry.register(Box::new(sync_records.clone()))?;
        registry.register(Box::new(token_refreshes.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_request_duration.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        // Every label set known at start, at zero, so a dashboard or an alert on `rate()` sees
        // the series before its first event.
        for kind in ProviderKind::ALL {
            let provider = kind.slug();
            for result in WEBHOOK_RESULTS {
                webhooks.with_label_values(&[provider, result]);
            }
            for outcome in ["created", "updated", "deleted", "unchanged", "conflict"] {
                sync_records.with_label_values(&[provider, outcome]);
            }
            for outcome in ["refreshed", "revoked", "failed"] {
                token_refreshes.with_label_values(&[provider, outcome]);
            }
        }
        for kind in integrations::JOB_KINDS {
            for outcome in ["succeeded", "deferred", "yielded", "failed"] {
                job_runs.with_label_values(&[kind, outcome]);
            }
            job_queue_wait.with_label_values(&[kind]);
            for state in JOB_STATES {
                job_queue_depth.with_label_values(&[kind, state]);
            }
        }
        for state in ["in_use", "idle"] {
            pool_connections.with_label_values(&[state]);
        }
        for (route, method) in [
            ("/graphql", "POST"),
            ("/graphql", "GET"),
            ("/healthz", "GET"),
            ("/readyz", "GET"),
            ("/oauth/callback", "GET"),
            ("/webhooks/{slug}", "POST"),
            ("/webhooks/{slug}/{connection_id}", "POST"),
        ] {
            http_requests.with_label_values(&[route, method, "200"]);
        }
        Ok(Self {
            registry,
            http_requests,
            http_request_duration,
            webhooks,
            sync_pages,
            sync_records,
            token_refreshes,
            job_runs,
            job_queue_depth,
            job_queue_wait,
            syncs_running,
            pool_connections,
        })
    }

    /// Counts one job this process ran, by kind and outcome (`succeeded`, `deferred`, `yielded`,
    /// `failed`).
    pub fn job_run(&self, kind: &str, outcome: &str) {
        self.job_runs.with_label_values(&[kind, outcome]).inc();
    }

    /// Reads the gauges that live in the database and the pool: the queue's depth by kind and
    /// state (one grouped count) and the pool's connections.
    async fn refresh_gauges(&self, db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        let (size, idle) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let size = i64::from(size);
        self.pool_connections.with_label_values(&["idle"]).set(idle);
        self.pool_connections
            .with_label_values(&["in_use"])
            .set((size - idle).max(0));
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT kind, status, count(*) AS n FROM job_queue GROUP BY kind, status",
            ))
            .await?;
        // States that emptied since the last scrape read zero, not their old value.
        for kind in integrations::JOB_KINDS {
            for state in JOB_STATES {
                self.job_queue_depth
                    .with_label_values(&[kind, state])
                    .set(0);
            }
        }
        for row in rows {
            let kind: String = row.try_get("", "kind")?;
            let state: String = row.try_get("", "status")?;
            let n: i64 = row.try_get("", "n")?;
            self.job_queue_depth
                .with_label_values(&[kind.as_str(), state.as_str()])
                .set(n);
        }
        // Only workspaces with a running sync have a series: one that finished since the last
        // scrape disappears instead of reading an old count.
        let running = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                match db.get_database_backend() {
                    DbBackend::Postgres => {
                        "SELECT c.workspace_id AS workspace_id, count(*) AS n
                         FROM integration_sync_states s
                         JOIN integration_connections c ON c.id = s.connection_id
                         WHERE s.sync_status = 'syncing' AND s.lease_expires_at >= $1
                         GROUP BY c.workspace_id"
                    }
                    _ => {
                        "SELECT c.workspace_id AS workspace_id, count(*) AS n
                         FROM integration_sync_states s
                         JOIN integration_connections c ON c.id = s.connection_id
                         WHERE s.sync_status = 'syncing' AND s.lease_expires_at >= ?
                         GROUP BY c.workspace_id"
                    }
                },
                [chrono::Utc::now().fixed_offset().into()],
            ))
            .await?;
        self.syncs_running.reset();
        for row in running {
            let workspace_id: uuid::Uuid = row.try_get("", "workspace_id")?;
            let n: i64 = row.try_get("", "n")?;
            self.syncs_running
                .with_label_values(&[workspace_id.to_string().as_str()])
                .set(n);
        }
        Ok(())
    }

    /// Counts one webhook delivery of `provider` with `result` (`accepted`, `duplicate`,
    /// `unknown_account`, `rejected`, `not_found`, `too_large`, `error`).
    pub fn webhook(&self, provider: &str, result: &str) {
        self.webhooks.with_label_values(&[provider, result]).inc();
    }

    fn observe(&self, route: &str, method: &str, status: StatusCode, seconds: f64) {
        let status = status.as_u16().to_string();
        let labels = [route, method, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_request_duration
            .with_label_values(&labels)
            .observe(seconds);
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

impl integrations::EngineObserver for Metrics {
    fn sync_page(
        &self,
        provider: ProviderKind,
        object_type: &str,
        counts: &integrations::PageCounts,
    ) {
        let provider = provider.slug();
        self.sync_pages
            .with_label_values(&[provider, object_type])
            .inc();
        for (outcome, n) in [
            ("created", counts.created),
            ("updated", counts.updated),
            ("deleted", counts.deleted),
            ("unchanged", counts.unchanged),
            ("conflict", counts.conflicts),
        ] {
            self.sync_records
                .with_label_values(&[provider, outcome])
                .inc_by(u64::from(n));
        }
    }

    fn job_claimed(&self, kind: &str, waited: std::time::Duration) {
        self.job_queue_wait
            .with_label_values(&[kind])
            .observe(waited.as_secs_f64());
    }

    fn token_refresh(&self, provider: ProviderKind, outcome: &'static str) {
        self.token_refreshes
            .with_label_values(&[provider.slug(), outcome])
            .inc();
    }
}

/// Middleware recording every request's count and latency under its route template (never the raw
/// path, whose ids would explode the label set, nor the query string, which carries OAuth codes),
/// and writing one access-log line at info: method, route, status, duration and request id.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    state
        .metrics
        .observe(&route, &method, response.status(), elapsed.as_secs_f64());
    tracing::info!(
        target: "access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        duration_ms = elapsed.as_secs_f64() * 1_000.0,
        request_id = %request_id,
        "request"
    );
    response
}

/// `GET /metrics`; with `METRICS_TOKEN`, only for `Authorization: Bearer <token>` (compared in
/// constant time), else 401.
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics_token {
        use providers::secrecy::ExposeSecret as _;
        let given = crate::graphql::auth::bearer(
            headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok()),
        )
        .unwrap_or_default();
        let (given, expected) = (
            sha2::Sha256::digest(given.as_bytes()),
            sha2::Sha256::digest(expected.expose_secret().as_bytes()),
        );
        let same = given
            .iter()
            .zip(expected.iter())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
        if !same {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(serde_json::json!({"error": {"code": "UNAUTHENTICATED", "message": "send METRICS_TOKEN as a bearer token"}})),
            )
                .into_response();
        }
    }
    if let Err(error) = state.metrics.refresh_gauges(&state.db).await {
        // The counters still answer; the database gauges keep their last reading.
        tracing::warn!(%error, "reading the job queue for /metrics");
    }
    match state.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
