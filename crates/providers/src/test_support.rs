//! Helpers shared by the adapters' tests: test data files and clients pointed at a local mock;
//! [`webhooks`] signs and builds webhook requests.

pub(crate) mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use secrecy::SecretString;

use crate::{Clock, Sleeper};
use crate::{
    ConnectionConfig, Cursor, HttpCore, Page, ProviderClient, ProviderError, ProviderKind,
    ProviderSpec, ReadOptions, RetryPolicy,
};

/// Records every wait and returns at once.
#[derive(Debug, Default)]
pub(crate) struct RecordingSleeper {
    pub(crate) waits: Mutex<Vec<Duration>>,
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        if let Ok(mut waits) = self.waits.lock() {
            waits.push(duration);
        }
        Box::pin(async {})
    }
}

/// Always the same instant.
#[derive(Debug)]
pub(crate) struct FixedClock(pub(crate) DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The instant the adapters' tests call now: 2026-11-22T12:00:00Z.
pub(crate) fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A file under `test_data/<provider>/`.
pub(crate) fn test_data(kind: ProviderKind, file: &str) -> String {
    let path = format!(
        "{}/test_data/{}/{file}",
        env!("CARGO_MANIFEST_DIR"),
        kind.slug()
    );
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// A client for `kind` whose API is the mock at `base_url`, calling with token `test-token`.
pub(crate) fn api_client(kind: ProviderKind, base_url: &str) -> ProviderClient {
    let config = ConnectionConfig {
        zendesk_subdomain: Some("acme".to_owned()),
        ..ConnectionConfig::default()
    };
    let spec = ProviderSpec::for_provider(kind)
        .with_api_base_url(base_url)
        .and_then(|spec| spec.for_connection(&config))
        .unwrap_or_else(|error| panic!("{error}"));
    let http = HttpCore::new(
        kind,
        RetryPolicy::default(),
        Arc::new(FixedClock(fixed_now())),
        Arc::new(RecordingSleeper::default()),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    ProviderClient::new(spec, http, SecretString::from("test-token"))
}

/// Every page of `object_type` from `cursor` until the reader is caught up, and the cursor to
/// store; a reader that has not finished after 10 pages fails the test.
pub(crate) async fn read_all(
    client: &ProviderClient,
    object_type: &str,
    mut cursor: Option<Cursor>,
) -> Result<(Vec<Page>, Cursor), ProviderError> {
    let mut pages = Vec::new();
    loop {
        let page = client
            .read_page(object_type, cursor.as_ref(), &ReadOptions::default())
            .await?;
        cursor = Some(page.cursor.clone());
        let has_more = page.has_more;
        pages.push(page);
        if !has_more {
            return Ok((pages, cursor.unwrap_or_default()));
        }
        assert!(pages.len() < 10, "the reader never finishes");
    }
}
