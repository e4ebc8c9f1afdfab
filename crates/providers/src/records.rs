//! What incremental readers yield: pages of normalized [`Record`]s and an opaque [`Cursor`] to
//! checkpoint after each page. Resuming from a checkpointed cursor continues exactly where the
//! reader stopped; a record on a page boundary may be read twice, which an upsert makes harmless.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

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

/// An opaque position in a provider's change stream, stored between syncs. Its text is JSON
/// private to the provider's reader; an empty cursor means "from the beginning".
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
