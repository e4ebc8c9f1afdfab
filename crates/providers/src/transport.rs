//! The HTTP core every adapter shares: a timeout per call; bounded retries with exponential backoff
//! and jitter on 429, 5xx and network errors; waits taken from `Retry-After` and the providers' own
//! rate-limit headers; and the classification of every failure into a [`ProviderError`] the caller
//! can act on. The clock and the sleeper are injected, so tests never really wait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::dispatch::dispatch;
use crate::{ProviderError, ProviderKind, RateLimits, WaitHeader};

/// Waits for a duration. Production uses [`TokioSleeper`]; tests inject one that records the wait
/// and returns at once.
pub trait Sleeper: Send + Sync + fmt::Debug {
    /// Waits `duration`.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Tells the time. Production uses [`SystemClock`]; tests inject a fixed one.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// How hard to try one call.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    /// The first backoff delay.
    pub min_delay: Duration,
    /// The largest backoff delay.
    pub max_delay: Duration,
    /// The longest wait a provider may ask for that is taken in place; a longer one is returned
    /// as [`ProviderError::RateLimited`] so the caller can reschedule instead of holding a worker.
    pub max_wait_in_place: Duration,
    /// The timeout of one attempt, connection to last byte.
    pub timeout: Duration,
}

impl RetryPolicy {
    /// The provider's defaults: [`RetryPolicy::default`] with its spec's first backoff
    /// ([`crate::RateLimits::first_backoff`]: Gmail 1 s, HubSpot 200 ms, the others 500 ms).
    pub fn for_provider(kind: ProviderKind) -> Self {
        Self {
            min_delay: crate::ProviderSpec::for_provider(kind)
                .rate_limits
                .first_backoff,
            ..Self::default()
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_wait_in_place: Duration::from_secs(60),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A provider's answer, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// What a throttled or refused answer means beyond its status, when only the body tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttle {
    /// A daily or org-wide quota is spent: pause the connection, do not retry now.
    Quota,
    /// A short-window rate limit (retried after the provider's wait).
    RateLimited,
}

/// One provider's HTTP client with its retry policy, clock and sleeper.
#[derive(Debug, Clone)]
pub struct HttpCore {
    provider: ProviderKind,
    client: reqwest::Client,
    policy: RetryPolicy,
    limits: RateLimits,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
}

/// What one attempt came to.
enum Attempt {
    Done(Response),
    /// Worth another attempt, after at least `wait` when the provider said so.
    Retry {
        error: ProviderError,
        wait: Option<Duration>,
    },
    Fail(ProviderError),
}

impl HttpCore {
    /// A client for `provider`. Installs ring as the process's rustls provider when none is set.
    pub fn new(
        provider: ProviderKind,
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
        sleeper: Arc<dyn Sleeper>,
    ) -> Result<Self, ProviderError> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Another thread may install one at the same moment; either is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("integration-platform/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ProviderError::Misconfigured {
                provider,
                reason: format!("cannot build the HTTP client: {error}"),
            })?;
        Ok(Self {
            provider,
            client,
            policy,
            limits: crate::ProviderSpec::for_provider(provider).rate_limits,
            clock,
            sleeper,
        })
    }

    /// The provider this client talks to.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }

    /// The underlying client, to build requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The injected clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Sends `request`, retrying what is worth retrying, and returns a 2xx response or the
    /// classified failure. The request's body must be cloneable (bytes, form or JSON).
    pub async fn send(&self, request: reqwest::Request) -> Result<Response, ProviderError> {
        self.send_accepting(request, |status| (200..300).contains(&status))
            .await
    }

    /// Like [`HttpCore::send`], but also returns (rather than classifies) responses whose status
    /// `accept` allows: an OAuth token endpoint's 400 carries an error body the caller parses.
    /// 429 and 5xx are still retried.
    pub async fn send_accepting(
        &self,
        request: reqwest::Request,
        accept: fn(u16) -> bool,
    ) -> Result<Response, ProviderError> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(self.policy.max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        let mut attempt = 1;
        loop {
            let Some(this_try) = request.try_clone() else {
                return Err(ProviderError::Misconfigured {
                    provider: self.provider,
                    reason: "a streaming request body cannot be retried".to_owned(),
                });
            };
            match self.attempt(this_try, accept, attempt).await {
                Attempt::Done(response) => return Ok(response),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, wait } => {
                    if attempt >= self.policy.max_attempts {
                        return Err(match (error, wait) {
                            (ProviderError::RateLimited { provider, .. }, Some(wait)) => {
                                ProviderError::RateLimited { provider, wait }
                            }
                            (error, _) => error,
                        });
                    }
                    let backoff_delay = backoff.next().unwrap_or(self.policy.max_delay);
                    let delay = wait.map_or(backoff_delay, |wait| wait.max(backoff_delay));
                    if delay > self.policy.max_wait_in_place {
                        return Err(ProviderError::RateLimited {
                            provider: self.provider,
                            wait: delay,
                        });
                    }
                    self.sleeper.sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Sends `request` and decodes the 2xx JSON body; `what` names the call in errors.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        request: reqwest::Request,
        what: &str,
    ) -> Result<T, ProviderError> {
        let response = self.send(request).await?;
        self.decode(&response.body, what)
    }

    /// Decodes a JSON body, naming the provider and the call when it does not fit.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8], what: &str) -> Result<T, ProviderError> {
        serde_json::from_slice(body).map_err(|error| ProviderError::Decode {
            provider: self.provider,
            what: what.to_owned(),
            reason: error.to_string(),
        })
    }

    async fn attempt(
        &self,
        request: reqwest::Request,
        accept: fn(u16) -> bool,
        attempt: usize,
    ) -> Attempt {
        let provider = self.provider;
        let outcome = self.client.execute(request).await;
        let response = match outcome {
            Ok(response) => response,
            Err(error) if error.is_timeout() => {
                return Attempt::Retry {
                    error: ProviderError::Unavailable {
                        provider,
                        detail: format!("no answer within {:?}", self.policy.timeout),
                    },
                    wait: None,
                };
            }
            Err(error) if error.is_builder() => {
                return Attempt::Fail(ProviderError::Misconfigured {
                    provider,
                    reason: format!("invalid request: {error}"),
                });
            }
            Err(error) => {
                return Attempt::Retry {
                    error: ProviderError::Transport {
                        provider,
                        detail: transport_detail(error),
                    },
                    wait: None,
                };
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(error) => {
                return Attempt::Retry {
                    error: ProviderError::Transport {
                        provider,
                        detail: format!("reading the body: {}", transport_detail(error)),
                    },
                    wait: None,
                };
            }
        };
        let response = Response {
            status,
            headers,
            body,
        };
        if accept(status) && status != 429 && status < 500 {
            return Attempt::Done(response);
        }
        classify(&self.limits, provider, response, self.clock.now(), attempt)
    }
}

/// The error text without the URL (which may carry an API key in its query).
fn transport_detail(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

/// Decides what a response means for `provider`, on the `attempt`-th try.
fn classify(
    limits: &RateLimits,
    provider: ProviderKind,
    response: Response,
    now: DateTime<Utc>,
    attempt: usize,
) -> Attempt {
    let status = response.status;
    let message = || ProviderError::short(&error_message(&response.body));
    let throttle = (status >= 400)
        .then(|| dispatch!(provider, adapter => adapter.throttle(status, &response.body)))
        .flatten();
    match status {
        200..=299 => Attempt::Done(response),
        401 => Attempt::Fail(ProviderError::Unauthorized { provider }),
        404 => Attempt::Fail(ProviderError::NotFound {
            provider,
            what: message(),
        }),
        _ if throttle == Some(Throttle::Quota) => Attempt::Fail(ProviderError::QuotaExhausted {
            provider,
            retry_after: None,
            detail: message(),
        }),
        _ if throttle == Some(Throttle::RateLimited) => {
            rate_limited(limits, provider, &response, now, attempt)
        }
        429 => rate_limited(limits, provider, &response, now, attempt),
        500..=599 => Attempt::Retry {
            error: ProviderError::Unavailable {
                provider,
                detail: format!("HTTP {status}: {}", message()),
            },
            wait: retry_after(&response.headers, now),
        },
        _ => Attempt::Fail(ProviderError::Rejected {
            provider,
            status,
            message: message(),
        }),
    }
}

fn rate_limited(
    limits: &RateLimits,
    provider: ProviderKind,
    response: &Response,
    now: DateTime<Utc>,
    attempt: usize,
) -> Attempt {
    let wait =
        dispatch!(provider, adapter => adapter.rate_limit_wait(limits, response, now, attempt));
    Attempt::Retry {
        error: ProviderError::RateLimited {
            provider,
            wait: wait.unwrap_or(Duration::from_secs(1)),
        },
        wait,
    }
}

/// The wait a throttled answer asks for, by the provider's [`RateLimits`]: `Retry-After`, a body
/// naming its limit (its wait times `attempt`), a `Retry after <time>` in the message, then the
/// other wait headers in order.
pub(crate) fn provider_wait(
    limits: &RateLimits,
    response: &Response,
    now: DateTime<Utc>,
    attempt: usize,
) -> Option<Duration> {
    // An explicit `Retry-After` is the provider's own answer for this call: it wins.
    if limits.wait_headers.contains(&WaitHeader::RetryAfter)
        && let Some(wait) = retry_after(&response.headers, now)
    {
        return Some(wait);
    }
    if let Some(rule) = limits
        .body_waits
        .iter()
        .find(|rule| body_contains(&response.body, rule.contains))
    {
        return Some(rule.per_attempt * u32::try_from(attempt.max(1)).unwrap_or(u32::MAX));
    }
    if limits.retry_after_in_message
        && let Some(wait) = hinted_wait(&error_message(&response.body), now)
    {
        return Some(wait);
    }
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    limits.wait_headers.iter().find_map(|rule| match *rule {
        WaitHeader::RetryAfter => retry_after(&response.headers, now),
        WaitHeader::ResetAt(name) => {
            let reset: i64 = header(name)?.parse().ok()?;
            Some(Duration::from_secs(
                u64::try_from((reset - now.timestamp()).max(1)).ok()?,
            ))
        }
        WaitHeader::ResetIn(name) => Some(Duration::from_secs(header(name)?.parse().ok()?)),
        WaitHeader::WindowMillis(name) => Some(Duration::from_millis(header(name)?.parse().ok()?)),
    })
}

/// Google's hint in an error message, `… Retry after 2026-11-22T12:00:05.123Z`: the wait until
/// then (at least a millisecond when it has passed).
fn hinted_wait(message: &str, now: DateTime<Utc>) -> Option<Duration> {
    let (_, after) = message.split_once("Retry after ")?;
    let time = after
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',']);
    let at = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::from_millis(1)))
}

/// `Retry-After` as delta seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Whether `body` holds `needle`'s bytes.
pub(crate) fn body_contains(body: &[u8], needle: &str) -> bool {
    body.windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The provider's own error message when the body has one of the usual shapes, else the body.
fn error_message(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::from_utf8_lossy(body).into_owned();
    };
    let candidates = [
        json.pointer("/message"),
        json.pointer("/error/message"),
        json.pointer("/error_description"),
        json.pointer("/errors/0/message"),
        json.pointer("/0/message"),
        json.pointer("/description"),
        json.pointer("/error"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| json.to_string())
}

#[cfg(test)]
mod tests;
