//! Unit tests of health grading and of the logged failure messages.

use std::time::Duration;

use providers::{ProviderError, ProviderKind};

use super::{HealthStatus, grade, log_message, logged_outage};

const THRESHOLD: Duration = Duration::from_millis(100);

fn unavailable() -> ProviderError {
    ProviderError::Unavailable {
        provider: ProviderKind::HubSpot,
        detail: "HTTP 503: down".to_owned(),
    }
}

fn check(result: Result<Duration, &ProviderError>, previous_outages: usize, expect: HealthStatus) {
    assert_eq!(
        grade(result, THRESHOLD, previous_outages, 3),
        expect,
        "{result:?} after {previous_outages} outages"
    );
}

#[test]
fn successes_are_graded_by_response_time() {
    check(Ok(Duration::from_millis(5)), 0, HealthStatus::Healthy);
    check(Ok(THRESHOLD), 0, HealthStatus::Healthy);
    check(Ok(Duration::from_millis(101)), 0, HealthStatus::Warning);
    // Earlier outages do not matter once the provider answers.
    check(Ok(Duration::from_millis(5)), 5, HealthStatus::Healthy);
}

#[test]
fn throttling_is_a_warning_however_often_it_happens() {
    let rate_limited = ProviderError::RateLimited {
        provider: ProviderKind::HubSpot,
        wait: Duration::from_secs(600),
    };
    let quota = ProviderError::QuotaExhausted {
        provider: ProviderKind::Salesforce,
        retry_after: None,
        detail: "REQUEST_LIMIT_EXCEEDED".to_owned(),
    };
    check(Err(&rate_limited), 0, HealthStatus::Warning);
    check(Err(&rate_limited), 10, HealthStatus::Warning);
    check(Err(&quota), 0, HealthStatus::Warning);
}

#[test]
fn outages_become_an_error_on_the_third_in_a_row() {
    let transport = ProviderError::Transport {
        provider: ProviderKind::Zendesk,
        detail: "connection refused".to_owned(),
    };
    check(Err(&unavailable()), 0, HealthStatus::Warning);
    check(Err(&unavailable()), 1, HealthStatus::Warning);
    check(Err(&unavailable()), 2, HealthStatus::Error);
    check(Err(&transport), 1, HealthStatus::Warning);
    check(Err(&transport), 2, HealthStatus::Error);
    assert_eq!(
        grade(Err(&unavailable()), THRESHOLD, 0, 1),
        HealthStatus::Error
    );
}

#[test]
fn auth_and_permanent_failures_are_errors_at_once() {
    let errors = [
        ProviderError::Reauthorize {
            provider: ProviderKind::HubSpot,
            reason: "invalid_grant".to_owned(),
        },
        ProviderError::Unauthorized {
            provider: ProviderKind::HubSpot,
        },
        ProviderError::Rejected {
            provider: ProviderKind::HubSpot,
            status: 403,
            message: "missing scope".to_owned(),
        },
        ProviderError::Misconfigured {
            provider: ProviderKind::Zendesk,
            reason: "no subdomain".to_owned(),
        },
        ProviderError::Decode {
            provider: ProviderKind::HubSpot,
            what: "GET /account-info/v3/details".to_owned(),
            reason: "no `portalId`".to_owned(),
        },
    ];
    for error in &errors {
        check(Err(error), 0, HealthStatus::Error);
    }
}

#[test]
fn logged_messages_carry_their_kind_and_are_short() {
    let message = log_message(&unavailable());
    assert!(message.starts_with("[unavailable] HubSpot"), "{message}");
    assert!(logged_outage(Some(&message)));

    let rejected = log_message(&ProviderError::Rejected {
        provider: ProviderKind::HubSpot,
        status: 400,
        message: "x".repeat(2_000),
    });
    assert!(rejected.starts_with("[rejected]"), "{rejected}");
    assert!(rejected.chars().count() < 600);
    assert!(!logged_outage(Some(&rejected)));
    assert!(!logged_outage(None));
}

#[test]
fn statuses_round_trip_through_their_stored_names() {
    for status in [
        HealthStatus::Healthy,
        HealthStatus::Warning,
        HealthStatus::Error,
        HealthStatus::Unknown,
    ] {
        assert_eq!(HealthStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(HealthStatus::parse("healthy"), None);
}
