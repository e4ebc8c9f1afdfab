//! Prometheus metrics: HTTP requests and their latency by route and status, webhook outcomes by
//! provider and result, served as text at `/metrics`. Each server has its own registry, so routers
//! built side by side (as in tests) do not share counters.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::AppState;

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
        registry.register(Box::new(sync_pages.clone()))?;
        registry.register(Box::new(sync_records.clone()))?;
        registry.register(Box::new(token_refreshes.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_request_duration.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_request_duration,
            webhooks,
            sync_pages,
            sync_records,
            token_refreshes,
        })
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
        provider: providers::ProviderKind,
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

    fn token_refresh(&self, provider: providers::ProviderKind, outcome: &'static str) {
        self.token_refreshes
            .with_label_values(&[provider.slug(), outcome])
            .inc();
    }
}

/// Middleware recording every request's count and latency under its route template (never the raw
/// path, whose ids would explode the label set).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state.metrics.observe(
        &route,
        &method,
        response.status(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
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
