//! The HTTP core against a local mock: retries what is transient, honours each provider's wait, and
//! classifies every failure, without ever really sleeping.

use std::sync::Arc;
use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{HttpCore, RetryPolicy};
use crate::test_support::{FixedClock, RecordingSleeper, fixed_now};
use crate::{ProviderError, ProviderKind};

fn core(provider: ProviderKind, policy: RetryPolicy) -> (HttpCore, Arc<RecordingSleeper>) {
    let sleeper = Arc::new(RecordingSleeper::default());
    let core = HttpCore::new(
        provider,
        policy,
        Arc::new(FixedClock(fixed_now())),
        sleeper.clone(),
    )
    .unwrap_or_else(|error| panic!("client builds: {error}"));
    (core, sleeper)
}

fn waits(sleeper: &RecordingSleeper) -> Vec<Duration> {
    sleeper
        .waits
        .lock()
        .map(|waits| waits.clone())
        .unwrap_or_default()
}

async fn get(core: &HttpCore, server: &MockServer) -> Result<super::Response, ProviderError> {
    let request = core
        .client()
        .get(format!("{}/resource", server.uri()))
        .build()
        .map_err(|error| ProviderError::Misconfigured {
            provider: core.provider(),
            reason: error.to_string(),
        })?;
    core.send(request).await
}

#[tokio::test]
async fn a_server_error_is_retried_with_backoff_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/resource"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/resource"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .expect(1)
        .mount(&server)
        .await;
    let (core, sleeper) = core(ProviderKind::Stripe, RetryPolicy::default());
    let response = get(&core, &server).await;
    assert_eq!(response.map(|response| response.status).ok(), Some(200));
    let waits = waits(&sleeper);
    assert_eq!(waits.len(), 2);
    assert!(
        waits.iter().all(|wait| *wait <= Duration::from_secs(30)),
        "{waits:?}"
    );
}

#[tokio::test]
async fn a_server_that_keeps_failing_is_unavailable_after_the_attempt_budget() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string("{\"message\":\"boom\"}"))
        .expect(4)
        .mount(&server)
        .await;
    let (core, sleeper) = core(ProviderKind::Zendesk, RetryPolicy::default());
    let error = get(&core, &server)
        .await
        .expect_err("500 forever is an error");
    assert!(
        matches!(&error, ProviderError::Unavailable { detail, .. } if detail.contains("500") && detail.contains("boom")),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(waits(&sleeper).len(), 3);
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (core, sleeper) = core(ProviderKind::Zendesk, RetryPolicy::default());
    assert!(get(&core, &server).await.is_ok());
    let waits = waits(&sleeper);
    assert_eq!(waits.len(), 1);
    assert!(waits[0] >= Duration::from_secs(7), "{waits:?}");
}

#[tokio::test]
async fn intercom_waits_until_its_rate_limit_window_resets() {
    let server = MockServer::start().await;
    let reset = fixed_now().timestamp() + 12;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("X-RateLimit-Reset", reset.to_string().as_str()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (core, sleeper) = core(ProviderKind::Intercom, RetryPolicy::default());
    assert!(get(&core, &server).await.is_ok());
    let waits = waits(&sleeper);
    assert!(waits[0] >= Duration::from_secs(12), "{waits:?}");
}

#[tokio::test]
async fn hubspot_waits_one_rolling_window_but_stops_at_the_daily_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429)
            .insert_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
            .set_body_string(r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}"#))
        .up_to_n_times(1).mount(&server).await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_string(r#"{"status":"error","message":"You have reached your daily limit.","errorType":"RATE_LIMIT","policyName":"DAILY"}"#))
        .mount(&server).await;
    let (core, sleeper) = core(ProviderKind::HubSpot, RetryPolicy::default());
    assert!(get(&core, &server).await.is_ok());
    assert!(waits(&sleeper)[0] >= Duration::from_secs(10));
    let error = get(&core, &server)
        .await
        .expect_err("the daily limit is an error");
    assert!(
        matches!(error, ProviderError::QuotaExhausted { .. }),
        "{error}"
    );
    assert_eq!(
        waits(&sleeper).len(),
        1,
        "a daily limit is not waited out in place"
    );
}

#[tokio::test]
async fn salesforce_request_limit_exceeded_is_a_quota_pause_not_an_auth_failure() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string(
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (core, _) = core(ProviderKind::Salesforce, RetryPolicy::default());
    let error = get(&core, &server).await.expect_err("403 is an error");
    assert!(
        matches!(&error, ProviderError::QuotaExhausted { detail, .. } if detail.contains("TotalRequests")),
        "{error}"
    );
}

#[tokio::test]
async fn a_wait_longer_than_the_in_place_limit_is_returned_to_the_caller() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let (core, sleeper) = core(ProviderKind::Zendesk, RetryPolicy::default());
    let error = get(&core, &server)
        .await
        .expect_err("an hour is not waited in place");
    assert_eq!(
        error,
        ProviderError::RateLimited {
            provider: ProviderKind::Zendesk,
            wait: Duration::from_secs(3600)
        }
    );
    assert!(waits(&sleeper).is_empty());
}

#[tokio::test]
async fn client_errors_are_classified_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/unauthorized"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/missing"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/bad"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            r#"{"error":{"message":"No such customer: 'cus_x'","type":"invalid_request_error"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (core, sleeper) = core(ProviderKind::Stripe, RetryPolicy::default());
    let send = |suffix: &str| {
        let request = core
            .client()
            .get(format!("{}{suffix}", server.uri()))
            .build();
        let core = core.clone();
        async move {
            core.send(request.map_err(|error| ProviderError::Misconfigured {
                provider: ProviderKind::Stripe,
                reason: error.to_string(),
            })?)
            .await
        }
    };
    assert_eq!(
        send("/unauthorized").await.err(),
        Some(ProviderError::Unauthorized {
            provider: ProviderKind::Stripe
        })
    );
    assert!(matches!(
        send("/missing").await,
        Err(ProviderError::NotFound { .. })
    ));
    let rejected = send("/bad").await.expect_err("400 is an error");
    assert_eq!(
        rejected,
        ProviderError::Rejected {
            provider: ProviderKind::Stripe,
            status: 400,
            message: "No such customer: 'cus_x'".to_owned()
        }
    );
    assert!(waits(&sleeper).is_empty());
}

#[tokio::test]
async fn a_timeout_is_retried_then_reported_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(2)
        .mount(&server)
        .await;
    let policy = RetryPolicy {
        max_attempts: 2,
        timeout: Duration::from_millis(200),
        ..RetryPolicy::default()
    };
    let (core, sleeper) = core(ProviderKind::Gmail, policy);
    let error = get(&core, &server)
        .await
        .expect_err("the server never answers in time");
    assert!(
        matches!(&error, ProviderError::Unavailable { detail, .. } if detail.contains("no answer")),
        "{error}"
    );
    assert_eq!(waits(&sleeper).len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    let (core, _) = core(
        ProviderKind::HubSpot,
        RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        },
    );
    let request = core
        .client()
        .get("http://127.0.0.1:9/resource?hapikey=secret")
        .build();
    let error = core
        .send(request.unwrap_or_else(|error| panic!("{error}")))
        .await
        .expect_err("nothing listens on port 9");
    assert!(matches!(&error, ProviderError::Transport { .. }), "{error}");
    assert!(
        !error.to_string().contains("secret"),
        "the URL leaked: {error}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_decode_error_naming_provider_and_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": "))
        .mount(&server)
        .await;
    let (core, _) = core(ProviderKind::Intercom, RetryPolicy::default());
    let request = core
        .client()
        .get(format!("{}/me", server.uri()))
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let error = core
        .send_json::<serde_json::Value>(request, "GET /me")
        .await
        .expect_err("truncated JSON");
    let message = error.to_string();
    assert!(
        message.starts_with("Intercom: unexpected response for GET /me"),
        "{message}"
    );
}

/// Jitter is random per process and per call: two clients retrying the same failure wait
/// different times, so retries across workers and replicas do not move in lockstep.
#[tokio::test]
async fn backoff_jitter_differs_between_clients() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let mut first_waits = Vec::new();
    for _ in 0..4 {
        let (core, sleeper) = core(ProviderKind::Zendesk, RetryPolicy::default());
        let _ = get(&core, &server).await;
        first_waits.push(waits(&sleeper).first().copied().unwrap_or_default());
    }
    first_waits.sort();
    first_waits.dedup();
    assert!(
        first_waits.len() > 1,
        "four clients waited exactly the same first backoff: {first_waits:?}"
    );
    // Jitter adds up to the first backoff to it: 0.5 s to 1.0 s by default.
    assert!(
        first_waits
            .iter()
            .all(|wait| (Duration::from_millis(500)..Duration::from_millis(1000)).contains(wait)),
        "{first_waits:?}"
    );
}

/// Each provider's first backoff when it gives no wait, from its spec: Gmail 1–2 s, Stripe and
/// the others 0.5–1.0 s, HubSpot's 5xx 0.2–0.4 s.
#[tokio::test]
async fn first_backoffs_follow_each_providers_spec() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    for (kind, low_ms) in [
        (ProviderKind::Gmail, 1_000),
        (ProviderKind::Stripe, 500),
        (ProviderKind::Salesforce, 500),
        (ProviderKind::Zendesk, 500),
        (ProviderKind::Intercom, 500),
        (ProviderKind::HubSpot, 200),
    ] {
        for _ in 0..3 {
            let (core, sleeper) = core(kind, RetryPolicy::for_provider(kind));
            let _ = get(&core, &server).await;
            let first = waits(&sleeper).first().copied().unwrap_or_default();
            let range = Duration::from_millis(low_ms)..Duration::from_millis(2 * low_ms);
            assert!(range.contains(&first), "{kind}: {first:?} not in {range:?}");
        }
    }
}

/// HubSpot's search "secondly limit" sends no header: 1 s × attempt, as its SDK does.
#[tokio::test]
async fn hubspots_secondly_search_limit_waits_a_second_per_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_string(
            r#"{"status":"error","message":"You have reached your secondly limit.","errorType":"RATE_LIMIT","correlationId":"4e1c","policyName":"SECONDLY"}"#,
        ))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (core, sleeper) = core(
        ProviderKind::HubSpot,
        RetryPolicy::for_provider(ProviderKind::HubSpot),
    );
    assert!(get(&core, &server).await.is_ok());
    let waits = waits(&sleeper);
    assert_eq!(waits.len(), 2, "{waits:?}");
    assert!(
        (Duration::from_secs(1)..Duration::from_millis(1_500)).contains(&waits[0]),
        "{waits:?}"
    );
    assert!(
        (Duration::from_secs(2)..Duration::from_millis(2_500)).contains(&waits[1]),
        "{waits:?}"
    );
}

/// Gmail's rate limits (429, or 403 `rateLimitExceeded`/`userRateLimitExceeded`) are waits, not
/// refusals, and a `Retry after <time>` in the message is honoured.
#[tokio::test]
async fn gmail_rate_limits_are_retried_and_honour_the_hinted_time() {
    let server = MockServer::start().await;
    let hinted = r#"{"error":{"code":429,"message":"User-rate limit exceeded.  Retry after 2026-11-22T12:00:07.250Z","errors":[{"domain":"usageLimits","reason":"userRateLimitExceeded","message":"User-rate limit exceeded.  Retry after 2026-11-22T12:00:07.250Z"}],"status":"RESOURCE_EXHAUSTED"}}"#;
    let project = r#"{"error":{"code":403,"message":"Quota exceeded for quota metric 'Queries'.","errors":[{"domain":"usageLimits","reason":"rateLimitExceeded","message":"Quota exceeded."}],"status":"PERMISSION_DENIED"}}"#;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).set_body_string(hinted))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_string(project))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (core, sleeper) = core(
        ProviderKind::Gmail,
        RetryPolicy::for_provider(ProviderKind::Gmail),
    );
    assert!(get(&core, &server).await.is_ok());
    let waits = waits(&sleeper);
    assert_eq!(waits.len(), 2, "{waits:?}");
    // The hint is 7.25 s away; the backoff (1–2 s) is shorter, so the hint wins.
    assert_eq!(waits[0], Duration::from_millis(7_250), "{waits:?}");
    // No hint: the second backoff, 2–4 s.
    assert!(
        (Duration::from_secs(2)..Duration::from_secs(4)).contains(&waits[1]),
        "{waits:?}"
    );
}

#[test]
fn an_exhausted_quota_is_not_transient() {
    let quota = ProviderError::QuotaExhausted {
        provider: ProviderKind::Salesforce,
        retry_after: None,
        detail: "REQUEST_LIMIT_EXCEEDED".to_owned(),
    };
    assert!(!quota.is_transient());
    assert!(
        ProviderError::RateLimited {
            provider: ProviderKind::HubSpot,
            wait: Duration::from_secs(1),
        }
        .is_transient()
    );
}
