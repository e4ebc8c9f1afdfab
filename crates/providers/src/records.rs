//! What incremental readers yield: pages of normalized [`Record`]s and an opaque [`Cursor`] to
//! checkpoint after each page. Resuming from a checkpointed cursor continues exactly where the
//! reader stopped; a record on a page boundary may be read twice, which an upsert makes harmless.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::dispatch::dispatch;
use crate::{ProviderError, ProviderKind};

/// One provider record, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The provider's id of the record.
    pub external_id: String,
    /// The provider's object type (`contacts`, `Account`, `customers`, …).
    pub object_type: String,
    /// When the provider last changed it, if it says.
    pub updated_at: Option<DateTime<Utc>>,
    /// The record was deleted or archived at the provider.
    pub deleted: bool,
    /// External field name → value, as the provider sent them; nulls are kept.
    pub fields: Map<String, Value>,
    /// A link to the record in the provider's app, when one can be built.
    pub source_url: Option<String>,
}

/// A position in a provider's change stream, stored between syncs. Its text is JSON private to the
/// provider's reader (store it, never edit it); an empty cursor means "from the beginning".
///
/// To start elsewhere, build one: [`Cursor::since`] for a time (every provider but Gmail), or
/// [`Cursor::gmail_history`] for a Gmail history id. [`Cursor::watermark`] reads the time a stored
/// cursor continues from. A cursor of one provider given to another is a
/// [`ProviderError::Decode`], never a silent restart.
///
/// ```
/// use providers::{Cursor, ProviderKind};
///
/// let since = chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")?.to_utc();
/// let cursor = Cursor::since(ProviderKind::HubSpot, "contacts", since)?;
/// assert_eq!(cursor.watermark(ProviderKind::HubSpot)?, Some(since));
/// assert!(Cursor::since(ProviderKind::Gmail, "messages", since).is_err());
/// assert!(cursor.watermark(ProviderKind::Stripe).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(String);

impl Cursor {
    /// A cursor read back from storage.
    pub fn from_stored(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A cursor that reads `object_type` of `provider` from `since` on: records changed at or
    /// after it (HubSpot, Salesforce, Zendesk), or after it (Stripe events, Intercom). Gmail
    /// positions are history ids, not times: use [`Cursor::gmail_history`].
    pub fn since(
        provider: ProviderKind,
        object_type: &str,
        since: DateTime<Utc>,
    ) -> Result<Self, ProviderError> {
        if !crate::objects(provider).contains(&object_type) {
            return Err(ProviderError::Misconfigured {
                provider,
                reason: format!(
                    "no object type `{object_type}`; this provider syncs {}",
                    crate::objects(provider).join(", ")
                ),
            });
        }
        dispatch!(provider, adapter => adapter.cursor_since(since))
    }

    /// The time this cursor of `provider` continues from, when it has one (`None` for a cursor
    /// from the beginning, for Gmail, and for a Zendesk export resumed from its own cursor). A
    /// cursor that is not `provider`'s is a [`ProviderError::Decode`].
    pub fn watermark(
        &self,
        provider: ProviderKind,
    ) -> Result<Option<DateTime<Utc>>, ProviderError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        dispatch!(provider, adapter => adapter.watermark(self))
    }

    /// The reader's state, or its default for an empty cursor.
    pub(crate) fn state<T: DeserializeOwned + Default>(
        cursor: Option<&Self>,
        provider: ProviderKind,
    ) -> Result<T, ProviderError> {
        match cursor {
            None => Ok(T::default()),
            Some(cursor) if cursor.0.is_empty() => Ok(T::default()),
            Some(cursor) => {
                serde_json::from_str(&cursor.0).map_err(|error| ProviderError::Decode {
                    provider,
                    what: "stored sync cursor".to_owned(),
                    reason: error.to_string(),
                })
            }
        }
    }

    /// Encodes a reader's state.
    pub(crate) fn encode<T: Serialize>(state: &T) -> Self {
        Self(serde_json::to_string(state).unwrap_or_default())
    }
}

/// One page of a read.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The records of this page (possibly none, e.g. when a window restarts).
    pub records: Vec<Record>,
    /// The cursor to checkpoint together with this page's writes.
    pub cursor: Cursor,
    /// Whether another page follows now; `false` means caught up until the next sync.
    pub has_more: bool,
    /// This page begins a full re-read because the saved position expired (Gmail's history id
    /// too old). A caller bounds how often that may happen in one run: a provider that keeps
    /// expiring the position would otherwise be read in full again and again.
    pub restarted: bool,
}

/// What the caller wants read beyond the provider's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Records per page (capped at the provider's maximum).
    pub page_size: Option<u32>,
    /// External fields to read in addition to the default ones (custom property mappings).
    pub extra_fields: Vec<String>,
}

/// Reads a JSON timestamp that may be RFC 3339 text, epoch seconds or epoch milliseconds.
pub(crate) fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
            .map(|time| time.with_timezone(&Utc))
            .or_else(|| text.parse::<i64>().ok().and_then(epoch)),
        Value::Number(number) => number.as_i64().and_then(epoch),
        _ => None,
    }
}

/// Epoch seconds or milliseconds (values past year 2286 in seconds are taken as milliseconds).
fn epoch(value: i64) -> Option<DateTime<Utc>> {
    if value.abs() >= 10_000_000_000 {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    }
}

#[cfg(test)]
mod tests;
