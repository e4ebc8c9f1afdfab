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

use crate::{ProviderError, ProviderKind};

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

/// One provider's HTTP client with its retry policy, clock and sleeper.
#[derive(Debug, Clone)]
pub struct HttpCore {
    provider: ProviderKind,
    client: reqwest::Client,
    policy: RetryPolicy,
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
            match self.attempt(this_try, accept).await {
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

    async fn attempt(&self, request: reqwest::Request, accept: fn(u16) -> bool) -> Attempt {
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
        classify(provider, response, self.clock.now())
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

/// Decides what a response means for `provider`.
fn classify(provider: ProviderKind, response: Response, now: DateTime<Utc>) -> Attempt {
    let status = response.status;
    let message = || ProviderError::short(&error_message(&response.body));
    match status {
        200..=299 => Attempt::Done(response),
        401 => Attempt::Fail(ProviderError::Unauthorized { provider }),
        404 => Attempt::Fail(ProviderError::NotFound {
            provider,
            what: message(),
        }),
        403 if provider == ProviderKind::Salesforce
            && body_contains(&response.body, "REQUEST_LIMIT_EXCEEDED") =>
        {
            Attempt::Fail(ProviderError::QuotaExhausted {
                provider,
                retry_after: None,
                detail: message(),
            })
        }
        403 if provider == ProviderKind::Gmail
            && body_contains(&response.body, "RateLimitExceeded") =>
        {
            rate_limited(provider, &response, now)
        }
        429 if provider == ProviderKind::HubSpot && body_contains(&response.body, "\"DAILY\"") => {
            Attempt::Fail(ProviderError::QuotaExhausted {
                provider,
                retry_after: None,
                detail: message(),
            })
        }
        429 => rate_limited(provider, &response, now),
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

fn rate_limited(provider: ProviderKind, response: &Response, now: DateTime<Utc>) -> Attempt {
    let wait = provider_wait(provider, &response.headers, now);
    Attempt::Retry {
        error: ProviderError::RateLimited {
            provider,
            wait: wait.unwrap_or(Duration::from_secs(1)),
        },
        wait,
    }
}

/// The wait a provider asks for: `Retry-After` (seconds or HTTP date) first, then the provider's
/// own headers.
pub(crate) fn provider_wait(
    provider: ProviderKind,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Option<Duration> {
    if let Some(wait) = retry_after(headers, now) {
        return Some(wait);
    }
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    match provider {
        // X-RateLimit-Reset is the UNIX time the window resets.
        ProviderKind::Intercom => {
            let reset: i64 = header("x-ratelimit-reset")?.trim().parse().ok()?;
            let wait = reset - now.timestamp();
            Some(Duration::from_secs(u64::try_from(wait.max(1)).ok()?))
        }
        // The rolling window's length; waiting one window frees it.
        ProviderKind::HubSpot => {
            let interval_ms: u64 = header("x-hubspot-ratelimit-interval-milliseconds")?
                .trim()
                .parse()
                .ok()?;
            Some(Duration::from_millis(interval_ms))
        }
        // Zendesk also sends `ratelimit-reset` in seconds.
        ProviderKind::Zendesk => {
            let reset: u64 = header("ratelimit-reset")?.trim().parse().ok()?;
            Some(Duration::from_secs(reset))
        }
        _ => None,
    }
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

fn body_contains(body: &[u8], needle: &str) -> bool {
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
pub(crate) mod tests;
