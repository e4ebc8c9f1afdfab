//! Gmail: profile, mailbox listing, then history (`reader.rs`); Pub/Sub push with a Google OIDC
//! token (`webhook.rs`). Header names are free-form, so there are no field checks; a 403 naming a
//! rate limit is retried with Google's hinted wait. Cursors are history ids, not times.

mod reader;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::adapter::Adapter;
use crate::client::ProviderClient;
use crate::records::{Cursor, Page, ReadOptions};
use crate::spec::{AuthMode, RateLimits, WaitHeader, strings};
use crate::transport::Throttle;
use crate::transport::body_contains;
use crate::validation::Probe;
use crate::{ProviderError, ProviderKind, ProviderSpec};

/// Gmail's [`Adapter`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gmail;

impl Adapter for Gmail {
    const KIND: ProviderKind = ProviderKind::Gmail;

    fn spec(self) -> ProviderSpec {
        ProviderSpec {
            kind: Self::KIND,
            auth_modes: vec![AuthMode::OAuth2],
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
            token_url: "https://oauth2.googleapis.com/token".to_owned(),
            revoke_url: Some("https://oauth2.googleapis.com/revoke".to_owned()),
            api_base_url: "https://gmail.googleapis.com".to_owned(),
            scopes: strings(&["https://www.googleapis.com/auth/gmail.readonly"]),
            pkce: true,
            extra_authorize_params: vec![
                ("access_type".to_owned(), "offline".to_owned()),
                ("prompt".to_owned(), "consent".to_owned()),
                ("include_granted_scopes".to_owned(), "true".to_owned()),
            ],
            default_token_lifetime: Some(Duration::from_secs(60 * 60)),
            // Google: truncated exponential backoff from 1–2 s, or the hinted time.
            rate_limits: RateLimits {
                wait_headers: vec![WaitHeader::RetryAfter],
                body_waits: Vec::new(),
                retry_after_in_message: true,
                first_backoff: Duration::from_secs(1),
            },
        }
    }

    fn objects(self) -> &'static [&'static str] {
        &["messages"]
    }

    fn probe(self) -> Probe {
        Probe {
            path: "/gmail/v1/users/me/profile",
            account_id: "/emailAddress",
            display_name: &["/emailAddress"],
            details: &[
                ("history_id", "/historyId"),
                ("messages_total", "/messagesTotal"),
            ],
        }
    }

    async fn read_page(
        self,
        client: &ProviderClient,
        object_type: &str,
        cursor: Option<&Cursor>,
        options: &ReadOptions,
    ) -> Result<Page, ProviderError> {
        reader::read_page(client, object_type, cursor, options).await
    }

    /// Gmail reads from a history id ([`Cursor::gmail_history`]), not from a time.
    fn cursor_since(self, _since: DateTime<Utc>) -> Result<Cursor, ProviderError> {
        Err(ProviderError::Misconfigured {
            provider: Self::KIND,
            reason: "Gmail reads from a history id, not a time: use Cursor::gmail_history"
                .to_owned(),
        })
    }

    /// Never a time: a Gmail cursor holds a history id ([`Cursor::gmail_history_id`]).
    fn watermark(self, cursor: &Cursor) -> Result<Option<DateTime<Utc>>, ProviderError> {
        reader::history_id(cursor).map(|_| None)
    }

    /// Google sends per-user rate limits as 403 `rateLimitExceeded` / `userRateLimitExceeded`.
    fn throttle(self, status: u16, body: &[u8]) -> Option<Throttle> {
        (status == 403 && body_contains(body, "ateLimitExceeded")).then_some(Throttle::RateLimited)
    }
}

/// Gmail's own cursor constructors: its positions are history ids.
impl Cursor {
    /// A Gmail cursor that reads the mailbox's changes after `history_id` (digits).
    pub fn gmail_history(history_id: &str) -> Result<Self, ProviderError> {
        reader::cursor_after_history(history_id)
    }

    /// The Gmail history id this cursor continues from, if it has one yet.
    pub fn gmail_history_id(&self) -> Result<Option<String>, ProviderError> {
        if self.as_str().is_empty() {
            return Ok(None);
        }
        reader::history_id(self)
    }
}
