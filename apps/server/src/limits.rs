//! Rate limits (governor's GCRA, keyed): per client IP on `/graphql`, per signed-in user inside
//! the GraphQL handler, and per endpoint on `/webhooks/*`. A refusal is 429 with `Retry-After`
//! and a JSON body coded `RATE_LIMITED`. The client IP is the socket's peer, or, behind a proxy,
//! the configured `CLIENT_IP_HEADER` only (for `X-Forwarded-For`, its last entry: the one the
//! trusted proxy appended). Defaults sit far above what a web app sends; `0` turns a limit off.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::graphql::http::Refusal;

/// Every this many checks, keys idle long enough to be full again are dropped.
const RETAIN_EVERY: u64 = 4_096;

/// One keyed limit.
#[derive(Debug)]
pub struct Limit {
    limiter: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl Limit {
    /// `per_second` sustained with a burst of twice that; `None` for 0 (off).
    pub fn per_second(per_second: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
        Some(Arc::new(Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            checks: AtomicU64::new(0),
        }))
    }

    /// Takes one request of `key`, or the seconds to wait (at least 1).
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
            })
    }
}

/// The server's limits.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    /// Requests to `/graphql` per client IP.
    pub per_ip: Option<Arc<Limit>>,
    /// GraphQL requests per signed-in user.
    pub per_user: Option<Arc<Limit>>,
    /// Deliveries per webhook endpoint (`/webhooks/{slug}[/{connection_id}]`).
    pub per_webhook_endpoint: Option<Arc<Limit>>,
    /// The header a trusted proxy puts the client's address in.
    pub client_ip_header: Option<HeaderName>,
}

/// The 429 of a limit, in JSON with `Retry-After`.
pub fn too_many(seconds: u64, what: &str) -> Refusal {
    let mut refusal = Refusal::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("too many requests {what}; retry in {seconds} s"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        refusal.headers.push((header::RETRY_AFTER, value));
    }
    refusal
}

impl RateLimits {
    /// The client's address: the trusted header's when configured, else the socket's peer.
    pub fn client_ip(&self, request: &Request) -> String {
        if let Some(name) = &self.client_ip_header {
            let value = request
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .next_back()
                .and_then(|value| value.rsplit(',').next())
                .map(str::trim)
                .filter(|value| !value.is_empty());
            if let Some(value) = value {
                return value.to_owned();
            }
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string())
    }
}

/// Middleware: the per-IP limit on the GraphQL routes.
pub async fn per_ip(State(limits): State<RateLimits>, request: Request, next: Next) -> Response {
    if let Some(limit) = &limits.per_ip
        && let Err(seconds) = limit.check(&limits.client_ip(&request))
    {
        return too_many(seconds, "from this address").into_response();
    }
    next.run(request).await
}

/// Middleware: the per-endpoint limit on the webhook routes.
pub async fn per_webhook_endpoint(
    State(limits): State<RateLimits>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limit) = &limits.per_webhook_endpoint {
        // The path names the endpoint (slug and connection): each tenant's has its own budget.
        if let Err(seconds) = limit.check(request.uri().path()) {
            return too_many(seconds, "to this webhook endpoint").into_response();
        }
    }
    next.run(request).await
}
